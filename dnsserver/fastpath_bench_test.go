package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// benchFast measures handle as UDP worker 0 calls it, wire in and wire out, on a query
// the fast path answers (it fails when the fast path declines the query), on the test
// policy.
func benchFast(b *testing.B, m *dns.Msg, wantRcode int) {
	benchFastOn(b, fastServer(b), m, "198.51.100.7:5353", wantRcode)
}

// benchFastOn is benchFast on server s, for a query from src.
func benchFastOn(b *testing.B, s *Server, m *dns.Msg, src string, wantRcode int) {
	b.Helper()
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort(src)
	out := make([]byte, 0, ednsUDPSize)
	if _, ok := s.fastOnly(req, from, false, out, 0); !ok {
		b.Fatal("the fast path declined the query")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = s.handle(req, from, false, out, 0) // as UDP worker 0 does
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || r.Rcode != wantRcode {
		b.Fatalf("last reply: %v %v", err, r)
	}
}

// noMetrics switches s's metric recording off (see metrics.off) and returns s.
func noMetrics(s *Server) *Server {
	s.metrics.off = true
	return s
}

func BenchmarkFastPathStatic(b *testing.B) {
	benchFast(b, newQuery("static.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

// BenchmarkFastPathStaticNoMetrics is BenchmarkFastPathStatic without recording metrics:
// the difference is what the metrics cost a static answer.
func BenchmarkFastPathStaticNoMetrics(b *testing.B) {
	benchFastOn(b, noMetrics(fastServer(b)), newQuery("static.glb.example.com.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}

func BenchmarkFastPathWeighted(b *testing.B) {
	benchFast(b, newQuery("www.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

// BenchmarkFastPathWeightedNoMetrics is BenchmarkFastPathWeighted without recording
// metrics (the request counters and the per-member answer counter).
func BenchmarkFastPathWeightedNoMetrics(b *testing.B) {
	benchFastOn(b, noMetrics(fastServer(b)), newQuery("www.glb.example.com.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}

func BenchmarkFastPathRoundRobin(b *testing.B) {
	benchFast(b, newQuery("rr.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathHashECS(b *testing.B) {
	benchFast(b, withECS(newQuery("hash.glb.example.com.", dns.TypeA), "203.0.113.0/24"), dns.RcodeSuccess)
}

func BenchmarkFastPathNXDOMAIN(b *testing.B) {
	benchFast(b, newQuery("nothere.glb.example.com.", dns.TypeA), dns.RcodeNameError)
}

func BenchmarkFastPathStaticMixedCase(b *testing.B) {
	benchFast(b, newQuery("StAtIc.GlB.example.com.", dns.TypeA), dns.RcodeSuccess)
}

// BenchmarkFastPathFailover is a failover service (testdata/steer.hcl) answering from
// its first pool, without ECS: pool walk and round robin inside the pool.
func BenchmarkFastPathFailover(b *testing.B) {
	benchFastOn(b, steerServer(b, nil), newQuery("fo.steer.test.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}

// BenchmarkFastPathGeoECS is a geo service with six rules over the GeoIP2 City and
// GeoLite2 ASN test databases, for a GB client by ECS: both lookups, the rule match, the
// scope, the pool walk and the member pick.
func BenchmarkFastPathGeoECS(b *testing.B) {
	benchFastOn(b, steerServer(b, nil), withECS(newQuery("geo.steer.test.", dns.TypeA), "81.2.69.142/32"),
		"198.51.100.7:5353", dns.RcodeSuccess)
}

// BenchmarkFastPathNearestECS is a nearest service of three located pools for a US
// client by ECS: the lookups, three distances, the sort and the pick.
func BenchmarkFastPathNearestECS(b *testing.B) {
	benchFastOn(b, steerServer(b, nil), withECS(newQuery("near.steer.test.", dns.TypeA), "216.160.83.56/29"),
		"198.51.100.7:5353", dns.RcodeSuccess)
}

// benchGeneral measures Handle on server s with its fast path off: the general path, from
// the same parse, with miekg/dns packing the reply, for comparison in the same run.
func benchGeneral(b *testing.B, s *Server, m *dns.Msg) {
	b.Helper()
	stripFast(s)
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, ednsUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		out = s.Handle(req, src, false, out)
	}
	if len(out) == 0 {
		b.Fatal("no reply")
	}
}

// BenchmarkGeneralPathStatic is BenchmarkFastPathStatic with the fast path off.
func BenchmarkGeneralPathStatic(b *testing.B) {
	benchGeneral(b, fastServer(b), newQuery("static.glb.example.com.", dns.TypeA))
}

// BenchmarkGeneralPathStaticNoMetrics is BenchmarkGeneralPathStatic without recording
// metrics.
func BenchmarkGeneralPathStaticNoMetrics(b *testing.B) {
	benchGeneral(b, noMetrics(fastServer(b)), newQuery("static.glb.example.com.", dns.TypeA))
}

// BenchmarkGeneralPathGeoECS is BenchmarkFastPathGeoECS with the fast path off.
func BenchmarkGeneralPathGeoECS(b *testing.B) {
	benchGeneral(b, steerServer(b, nil), withECS(newQuery("geo.steer.test.", dns.TypeA), "81.2.69.142/32"))
}

// rrlBenchServer is fastServer with response-rate limiting on, at its highest rate.
func rrlBenchServer(b *testing.B) *Server {
	s := New(Config{Logger: testLogger(), RRL: RRLConfig{Rate: maxRRLRate, Slip: 2}, CookieSecrets: testCookieSecrets})
	s.SetSnapshot(loadSnapshot(b))
	return s
}

// benchRRL is benchFastOn on rrlBenchServer for queries from 4,096 networks in turn: no
// bucket reaches the rate, so every reply pays RRL (the key, the bucket's compare-and-swap
// on a table bigger than the caches close to the core, the clock) and none is limited.
// BenchmarkFastPathStaticRRL minus BenchmarkFastPathStaticManySources is what RRL costs
// a reply.
func benchRRL(b *testing.B, s *Server, m *dns.Msg, wantRcode int) {
	b.Helper()
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	srcs := make([]netip.AddrPort, 4096)
	for i := range srcs {
		srcs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7}), 5353)
	}
	out := make([]byte, 0, ednsUDPSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if out = s.handle(req, srcs[i&4095], false, out, 0); out == nil {
			b.Fatal("a reply was limited")
		}
		i++
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || r.Rcode != wantRcode || r.Truncated {
		b.Fatalf("last reply: %v %v", err, r)
	}
}

func BenchmarkFastPathStaticManySources(b *testing.B) {
	benchRRL(b, fastServer(b), newQuery("static.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathStaticRRL(b *testing.B) {
	benchRRL(b, rrlBenchServer(b), newQuery("static.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathWeightedManySources(b *testing.B) {
	benchRRL(b, fastServer(b), newQuery("www.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathWeightedRRL(b *testing.B) {
	benchRRL(b, rrlBenchServer(b), newQuery("www.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathNXDOMAINRRL(b *testing.B) {
	benchRRL(b, rrlBenchServer(b), newQuery("nothere.glb.example.com.", dns.TypeA), dns.RcodeNameError)
}

// cookieQuery is a query for name with EDNS and a COOKIE option of kind (testCookieBytes)
// from src.
func cookieQuery(name, kind string, src netip.AddrPort) *dns.Msg {
	m := newQuery(name, dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: testCookieBytes(kind, src)})
	return m
}

// BenchmarkFastPathStaticEDNS is the static answer to an EDNS query without a cookie,
// for the cookie benchmarks to be read against.
func BenchmarkFastPathStaticEDNS(b *testing.B) {
	m := newQuery("static.glb.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	benchFast(b, m, dns.RcodeSuccess)
}

// BenchmarkFastPathStaticClientCookie is a client cookie alone: a server cookie minted
// (one SipHash) and returned.
func BenchmarkFastPathStaticClientCookie(b *testing.B) {
	src := "198.51.100.7:5353"
	benchFast(b, cookieQuery("static.glb.example.com.", "client", netip.MustParseAddrPort(src)), dns.RcodeSuccess)
}

// BenchmarkFastPathStaticValidCookieRRL is a valid server cookie (one SipHash to check
// it, echoed) on a server with RRL on, which the cookie exempts.
func BenchmarkFastPathStaticValidCookieRRL(b *testing.B) {
	src := "198.51.100.7:5353"
	benchFastOn(b, rrlBenchServer(b), cookieQuery("static.glb.example.com.", "valid", netip.MustParseAddrPort(src)), src, dns.RcodeSuccess)
}
