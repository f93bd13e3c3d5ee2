package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

const testPolicy = "testdata/policy.hcl"

func loadSnapshot(tb testing.TB) *policy.Snapshot {
	tb.Helper()
	snap, diags := policy.LoadPath(testPolicy)
	if diags.HasErrors() {
		tb.Fatalf("load %s: %s", testPolicy, diags.Error())
	}
	return snap
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a server on 127.0.0.1:0 with the test policy and stops it at cleanup.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logger = testLogger()
	if cfg.UDPWorkers == 0 {
		cfg.UDPWorkers = 2
	}
	s := New(cfg)
	s.SetSnapshot(loadSnapshot(t))
	return serve(t, s)
}

// serve starts s and stops it at cleanup, where it also fails the test on a recovered
// panic.
func serve(t *testing.T, s *Server) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Start(ctx) }()
	<-s.Ready()
	if !s.Addr().IsValid() {
		cancel()
		t.Fatalf("start: %v", <-errc)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("start returned %v", err)
		}
		if p := s.Panics(); p != 0 {
			t.Errorf("%d panics recovered", p)
		}
	})
	return s
}

func exchange(t *testing.T, s *Server, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatalf("exchange %s over %s: %v", m.Question[0].String(), proto, err)
	}
	return r
}

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

// norm parses zone-file lines and returns them in miekg's canonical text form, sorted.
func norm(t *testing.T, lines []string) []string {
	t.Helper()
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad expected RR %q: %v", l, err)
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func ecsOf(r *dns.Msg) *dns.EDNS0_SUBNET {
	opt := r.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			return e
		}
	}
	return nil
}

func withECS(m *dns.Msg, cidr string) *dns.Msg {
	p := netip.MustParsePrefix(cidr)
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(1232, false)
		opt = m.IsEdns0()
	}
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{
		Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(p.Bits()),
		Address: net.IP(p.Masked().Addr().AsSlice()),
	})
	return m
}

const soaLine = "glb.example.com. 60 IN SOA ns1.glb.example.com. hostmaster.example.com. 2026112501 3600 600 604800 60"

func TestStaticAnswers(t *testing.T) {
	s := startServer(t, Config{})
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
	}{
		{name: "A", qname: "static.glb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"static.glb.example.com. 300 IN A 192.0.2.1"}},
		{name: "AAAA", qname: "static.glb.example.com.", qtype: dns.TypeAAAA, aa: true,
			answer: []string{"static.glb.example.com. 300 IN AAAA 2001:db8::1"}},
		{name: "MX with its target's address in additional", qname: "static.glb.example.com.", qtype: dns.TypeMX, aa: true,
			answer: []string{"static.glb.example.com. 300 IN MX 10 mail.glb.example.com."},
			extra:  []string{"mail.glb.example.com. 300 IN A 192.0.2.25"}},
		{name: "SRV with the in-zone target's address in additional", qname: "_sip._udp.glb.example.com.", qtype: dns.TypeSRV, aa: true,
			answer: []string{"_sip._udp.glb.example.com. 300 IN SRV 10 5 5060 sip.glb.example.com.", "_sip._udp.glb.example.com. 300 IN SRV 20 5 5060 sip.example.net."},
			extra:  []string{"sip.glb.example.com. 300 IN AAAA 2001:db8::5060"}},
		{name: "NS at the apex with the servers' addresses", qname: "glb.example.com.", qtype: dns.TypeNS, aa: true,
			answer: []string{"glb.example.com. 300 IN NS ns1.glb.example.com.", "glb.example.com. 300 IN NS ns2.glb.example.com."},
			extra:  []string{"ns1.glb.example.com. 300 IN A 192.0.2.53", "ns2.glb.example.com. 300 IN A 192.0.2.54"}},
		{name: "HTTPS", qname: "svcb.glb.example.com.", qtype: dns.TypeHTTPS, aa: true,
			answer: []string{`svcb.glb.example.com. 300 IN HTTPS 1 . alpn="h2,h3" ipv4hint="192.0.2.1"`}},
		{name: "TLSA", qname: "_443._tcp.static.glb.example.com.", qtype: dns.TypeTLSA, aa: true,
			answer: []string{"_443._tcp.static.glb.example.com. 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{name: "DS at a cut answered by the parent side", qname: "sub.glb.example.com.", qtype: dns.TypeDS, aa: true,
			answer: []string{"sub.glb.example.com. 300 IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{name: "TXT", qname: "static.glb.example.com.", qtype: dns.TypeTXT, aa: true,
			answer: []string{`static.glb.example.com. 300 IN TXT "hello world"`}},
		{name: "NXDOMAIN with SOA at negative TTL", qname: "nope.glb.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine}},
		{name: "NODATA with SOA at negative TTL", qname: "static.glb.example.com.", qtype: dns.TypeSRV,
			aa: true, ns: []string{soaLine}},
		{name: "outside every zone is REFUSED", qname: "www.example.org.", qtype: dns.TypeA,
			rcode: dns.RcodeRefused},
		{name: "referral with glue", qname: "host.sub.glb.example.com.", qtype: dns.TypeA,
			ns:    []string{"sub.glb.example.com. 300 IN NS ns.sub.glb.example.com."},
			extra: []string{"ns.sub.glb.example.com. 300 IN A 192.0.2.200"}},
		{name: "wildcard", qname: "foo.wild.glb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"foo.wild.glb.example.com. 300 IN A 192.0.2.99"}},
		{name: "CNAME leaving our zones stops", qname: "out.glb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"out.glb.example.com. 300 IN CNAME www.example.net."}},
		{name: "CNAME to a missing name takes its rcode", qname: "dangling.glb.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true,
			answer: []string{"dangling.glb.example.com. 300 IN CNAME nothere.glb.example.com."},
			ns:     []string{soaLine}},
		{name: "CNAME qtype is not chased", qname: "alias.glb.example.com.", qtype: dns.TypeCNAME, aa: true,
			answer: []string{"alias.glb.example.com. 300 IN CNAME alias2.glb.example.com."}},
		{name: "host-name service is a CNAME", qname: "cdn.glb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"cdn.glb.example.com. 30 IN CNAME edge.cdn.example.net."}},
		{name: "host-name service chased into our zone", qname: "inner.glb.example.com.", qtype: dns.TypeA, aa: true,
			answer: []string{"inner.glb.example.com. 30 IN CNAME static.glb.example.com.", "static.glb.example.com. 300 IN A 192.0.2.1"}},
		{name: "v4-only service AAAA is NODATA", qname: "v4only.glb.example.com.", qtype: dns.TypeAAAA, aa: true,
			ns: []string{soaLine}},
		{name: "MX at an address service is NODATA", qname: "www.glb.example.com.", qtype: dns.TypeMX, aa: true,
			ns: []string{soaLine}},
		{name: "ANY at a static name is one RRset", qname: "static.glb.example.com.", qtype: dns.TypeANY, aa: true,
			answer: []string{"static.glb.example.com. 300 IN A 192.0.2.1"}},
		{name: "ANY at a single-RRset name", qname: "mail.glb.example.com.", qtype: dns.TypeANY, aa: true,
			answer: []string{"mail.glb.example.com. 300 IN A 192.0.2.25"}},
		{name: "AXFR refused", qname: "glb.example.com.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
		{name: "IXFR refused", qname: "glb.example.com.", qtype: dns.TypeIXFR, rcode: dns.RcodeRefused},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				r := exchange(t, s, proto, newQuery(tc.qname, tc.qtype))
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if r.Authoritative != tc.aa {
					t.Errorf("AA = %v, want %v", r.Authoritative, tc.aa)
				}
				if r.RecursionAvailable || r.Truncated {
					t.Errorf("RA = %v, TC = %v, want false", r.RecursionAvailable, r.Truncated)
				}
				for _, sec := range []struct {
					name      string
					got, want []string
				}{{"answer", rrStrings(r.Answer), norm(t, tc.answer)}, {"authority", rrStrings(r.Ns), norm(t, tc.ns)}, {"additional", rrStrings(r.Extra), norm(t, tc.extra)}} {
					if strings.Join(sec.got, "\n") != strings.Join(sec.want, "\n") {
						t.Errorf("%s:\n%s\nwant:\n%s", sec.name, strings.Join(sec.got, "\n"), strings.Join(sec.want, "\n"))
					}
				}
			})
		}
	}
}

// Additional data is dropped, a whole RRset at a time from the end, before an answer is
// truncated (RFC 2181 Section 9): an answer that fits without it has TC=0.
func TestAdditionalDroppedFirst(t *testing.T) {
	s := startServer(t, Config{})
	for _, tc := range []struct {
		name  string
		proto string
		edns  bool
		extra int // AAAA records in additional: three per target mx1..mx4
	}{
		{"udp 512: the last target's addresses dropped", "udp", false, 9},
		{"udp with EDNS: all", "udp", true, 12},
		{"tcp: all", "tcp", false, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newQuery("manymx.glb.example.com.", dns.TypeMX)
			if tc.edns {
				m.SetEdns0(1232, false)
			}
			r := exchange(t, s, tc.proto, m)
			if r.Truncated || len(r.Answer) != 8 {
				t.Fatalf("TC = %v, %d answers, want TC=0 and 8", r.Truncated, len(r.Answer))
			}
			if got := len(rrStrings(r.Extra)); got != tc.extra {
				t.Errorf("%d additional records, want %d: %v", got, tc.extra, r.Extra)
			}
			for _, rr := range r.Extra {
				if h := rr.Header(); h.Rrtype == dns.TypeAAAA && h.Name == "mx4.glb.example.com." && tc.extra < 12 {
					t.Errorf("mx4 kept, an earlier RRset dropped: %v", r.Extra)
				}
			}
		})
	}
}

func TestQuestionCaseEchoed(t *testing.T) {
	s := startServer(t, Config{})
	for _, name := range []string{"StAtIc.GLB.example.COM.", "WwW.Glb.Example.Com."} {
		t.Run(name, func(t *testing.T) {
			m := newQuery(name, dns.TypeA)
			m.RecursionDesired = true
			r := exchange(t, s, "udp", m)
			if r.Question[0].Name != name {
				t.Errorf("question = %q, want %q", r.Question[0].Name, name)
			}
			if !r.RecursionDesired || r.RecursionAvailable {
				t.Errorf("RD = %v (want copied true), RA = %v (want false)", r.RecursionDesired, r.RecursionAvailable)
			}
			if len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("answer %v rcode %d", r.Answer, r.Rcode)
			}
		})
	}
}

func TestCNAMEChains(t *testing.T) {
	s := startServer(t, Config{})
	t.Run("into a service", func(t *testing.T) {
		r := exchange(t, s, "udp", newQuery("alias.glb.example.com.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 3 {
			t.Fatalf("rcode %d AA %v answer %v", r.Rcode, r.Authoritative, r.Answer)
		}
		c1, ok1 := r.Answer[0].(*dns.CNAME)
		c2, ok2 := r.Answer[1].(*dns.CNAME)
		a, ok3 := r.Answer[2].(*dns.A)
		if !ok1 || !ok2 || !ok3 || c1.Target != "alias2.glb.example.com." || c2.Target != "www.glb.example.com." {
			t.Fatalf("chain = %v", r.Answer)
		}
		if a.Hdr.Name != "www.glb.example.com." || a.Hdr.Ttl != 30 || (a.A.String() != "192.0.2.10" && a.A.String() != "192.0.2.11") {
			t.Errorf("final A = %v", a)
		}
	})
}

func TestServices(t *testing.T) {
	s := startServer(t, Config{})
	t.Run("weighted A converges to the weights", func(t *testing.T) {
		seen := map[string]int{}
		for range 200 {
			r := exchange(t, s, "udp", newQuery("www.glb.example.com.", dns.TypeA))
			if len(r.Answer) != 1 || !r.Authoritative {
				t.Fatalf("answer %v AA %v", r.Answer, r.Authoritative)
			}
			a := r.Answer[0].(*dns.A)
			if a.Hdr.Ttl != 30 || a.Hdr.Name != "www.glb.example.com." {
				t.Fatalf("A = %v", a)
			}
			seen[a.A.String()]++
		}
		// Weights 3:1 over 200 draws: b (expected 50) below a (expected 150), both seen.
		if seen["192.0.2.10"] <= seen["192.0.2.11"] || seen["192.0.2.11"] == 0 || len(seen) != 2 {
			t.Errorf("distribution %v, want about 3:1 between 192.0.2.10 and 192.0.2.11", seen)
		}
	})
	t.Run("AAAA from the v6 pool", func(t *testing.T) {
		r := exchange(t, s, "udp", newQuery("www.glb.example.com.", dns.TypeAAAA))
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		if a, ok := r.Answer[0].(*dns.AAAA); !ok || !strings.HasPrefix(a.AAAA.String(), "2001:db8::1") {
			t.Errorf("AAAA = %v", r.Answer[0])
		}
	})
	t.Run("round robin rotates", func(t *testing.T) {
		seen := map[string]bool{}
		for range 6 {
			r := exchange(t, s, "udp", newQuery("rr.glb.example.com.", dns.TypeA))
			if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 20 {
				t.Fatalf("answer %v", r.Answer)
			}
			seen[r.Answer[0].(*dns.A).A.String()] = true
		}
		if len(seen) != 3 {
			t.Errorf("6 round-robin answers covered %v, want all 3 members", seen)
		}
	})
	t.Run("ANY at a service is the A selection", func(t *testing.T) {
		r := exchange(t, s, "tcp", newQuery("www.glb.example.com.", dns.TypeANY))
		if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeA {
			t.Errorf("answer %v", r.Answer)
		}
	})
}

func TestECS(t *testing.T) {
	s := startServer(t, Config{})
	t.Run("hash scope is the hash prefix and the answer is stable", func(t *testing.T) {
		var first string
		for i := range 5 {
			r := exchange(t, s, "udp", withECS(newQuery("hash.glb.example.com.", dns.TypeA), "203.0.113.0/24"))
			e := ecsOf(r)
			if e == nil {
				t.Fatal("no ECS option in the reply")
			}
			if e.Family != 1 || e.SourceNetmask != 24 || e.SourceScope != 24 || e.Address.String() != "203.0.113.0" {
				t.Errorf("ECS echoed as %v, want 203.0.113.0/24/24", e)
			}
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v", r.Answer)
			}
			got := r.Answer[0].(*dns.A).A.String()
			if i == 0 {
				first = got
			} else if got != first {
				t.Errorf("hash answer changed: %s then %s", first, got)
			}
		}
	})
	t.Run("different subnets spread", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 64 {
			r := exchange(t, s, "udp", withECS(newQuery("hash.glb.example.com.", dns.TypeA), netip.AddrFrom4([4]byte{10, byte(i), byte(i * 7), 0}).String()+"/24"))
			seen[r.Answer[0].(*dns.A).A.String()] = true
		}
		if len(seen) < 2 {
			t.Errorf("64 subnets all hashed to %v", seen)
		}
	})
	t.Run("static answer has scope 0", func(t *testing.T) {
		r := exchange(t, s, "udp", withECS(newQuery("static.glb.example.com.", dns.TypeA), "2001:db8:1234::/48"))
		e := ecsOf(r)
		if e == nil || e.Family != 2 || e.SourceNetmask != 48 || e.SourceScope != 0 || e.Address.String() != "2001:db8:1234::" {
			t.Errorf("ECS echoed as %v, want 2001:db8:1234::/48/0", e)
		}
	})
	t.Run("source /0 gets scope 0", func(t *testing.T) {
		r := exchange(t, s, "udp", withECS(newQuery("hash.glb.example.com.", dns.TypeA), "0.0.0.0/0"))
		e := ecsOf(r)
		if e == nil || e.SourceNetmask != 0 || e.SourceScope != 0 {
			t.Errorf("ECS echoed as %v, want 0.0.0.0/0/0", e)
		}
		if len(r.Answer) != 1 {
			t.Errorf("answer %v", r.Answer)
		}
	})
	t.Run("NXDOMAIN has scope 0", func(t *testing.T) {
		r := exchange(t, s, "udp", withECS(newQuery("nope.glb.example.com.", dns.TypeA), "203.0.113.0/24"))
		if e := ecsOf(r); r.Rcode != dns.RcodeNameError || e == nil || e.SourceScope != 0 {
			t.Errorf("rcode %d ECS %v", r.Rcode, e)
		}
	})
}

func TestEDNS(t *testing.T) {
	s := startServer(t, Config{})
	t.Run("OPT echoed with our size and DO copied", func(t *testing.T) {
		m := newQuery("static.glb.example.com.", dns.TypeA)
		m.SetEdns0(4096, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2}})
		r := exchange(t, s, "udp", m)
		opt := r.IsEdns0()
		if opt == nil {
			t.Fatal("no OPT in the reply")
		}
		if opt.UDPSize() != ednsUDPSize || !opt.Do() || opt.Version() != 0 || len(opt.Option) != 0 {
			t.Errorf("OPT = %v, want size 1232, DO, version 0, no options", opt)
		}
	})
	t.Run("no OPT without EDNS", func(t *testing.T) {
		if r := exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA)); r.IsEdns0() != nil {
			t.Errorf("OPT in reply to a non-EDNS query")
		}
	})
	t.Run("BADVERS", func(t *testing.T) {
		m := newQuery("static.glb.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		r := exchange(t, s, "udp", m)
		if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 || len(r.Answer) != 0 {
			t.Errorf("rcode %s OPT %v answer %v, want BADVERS, version-0 OPT, no answer", dns.RcodeToString[r.Rcode], r.IsEdns0(), r.Answer)
		}
	})
	big := func(edns uint16) *dns.Msg {
		m := newQuery("big.glb.example.com.", dns.TypeTXT)
		if edns > 0 {
			m.SetEdns0(edns, false)
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		proto string
		msg   *dns.Msg
		tc    bool
	}{
		{"big TXT truncated over UDP without EDNS", "udp", big(0), true},
		{"big TXT truncated over UDP beyond our 1232 cap", "udp", big(4096), true},
		{"big TXT whole over TCP", "tcp", big(0), false},
		{"big TXT whole over TCP with EDNS", "tcp", big(512), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, s, tc.proto, tc.msg)
			if r.Truncated != tc.tc {
				t.Fatalf("TC = %v, want %v", r.Truncated, tc.tc)
			}
			if tc.tc && (len(r.Answer) != 0 || len(r.Ns) != 0 || len(r.Question) != 1) {
				t.Errorf("truncated reply has %d answers, %d ns, %d questions", len(r.Answer), len(r.Ns), len(r.Question))
			}
			if !tc.tc && len(r.Answer) != 12 {
				t.Errorf("got %d TXT records, want 12", len(r.Answer))
			}
		})
	}
	t.Run("small TXT fits with EDNS 512", func(t *testing.T) {
		m := newQuery("static.glb.example.com.", dns.TypeTXT)
		m.SetEdns0(100, false) // below 512 counts as 512 (RFC 6891 6.2.5)
		if r := exchange(t, s, "udp", m); r.Truncated || len(r.Answer) != 1 {
			t.Errorf("TC %v answer %v", r.Truncated, r.Answer)
		}
	})
}

func TestOpcodesAndClasses(t *testing.T) {
	s := startServer(t, Config{})
	for _, tc := range []struct {
		name  string
		build func() *dns.Msg
		rcode int
	}{
		{"NOTIFY refused", func() *dns.Msg {
			m := newQuery("glb.example.com.", dns.TypeSOA)
			m.Opcode = dns.OpcodeNotify
			return m
		}, dns.RcodeRefused},
		{"UPDATE refused", func() *dns.Msg {
			m := newQuery("glb.example.com.", dns.TypeSOA)
			m.Opcode = dns.OpcodeUpdate
			return m
		}, dns.RcodeRefused},
		{"STATUS not implemented", func() *dns.Msg {
			m := newQuery("glb.example.com.", dns.TypeSOA)
			m.Opcode = dns.OpcodeStatus
			return m
		}, dns.RcodeNotImplemented},
		{"CHAOS refused", func() *dns.Msg {
			m := newQuery("version.bind.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}, dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.build()
			r := exchange(t, s, "udp", m)
			if r.Rcode != tc.rcode || r.Opcode != m.Opcode || r.Authoritative || len(r.Answer) != 0 {
				t.Errorf("rcode %s opcode %d AA %v, want %s", dns.RcodeToString[r.Rcode], r.Opcode, r.Authoritative, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

// frame prefixes a message with its 2-byte TCP length (RFC 1035 Section 4.2.2).
func frame(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func readFrame(c net.Conn) (*dns.Msg, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(b)
}

func dialTCP(t *testing.T, s *Server) net.Conn {
	t.Helper()
	return dialTCPFrom(t, s, "")
}

// dialTCPFrom connects to s from the loopback address from ("" for any).
func dialTCPFrom(t *testing.T, s *Server, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 3 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTCP(t *testing.T) {
	t.Run("pipelined queries answered in order", func(t *testing.T) {
		s := startServer(t, Config{})
		c := dialTCP(t, s)
		var batch []byte
		names := []string{"static.glb.example.com.", "www.glb.example.com.", "nope.glb.example.com."}
		for i, n := range names {
			m := newQuery(n, dns.TypeA)
			m.Id = uint16(100 + i)
			batch = append(batch, frame(t, m)...)
		}
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			r, err := readFrame(c)
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			if r.Id != uint16(100+i) || r.Question[0].Name != n {
				t.Errorf("answer %d is id %d for %s", i, r.Id, r.Question[0].Name)
			}
		}
	})
	t.Run("short and response frames skipped, connection kept", func(t *testing.T) {
		s := startServer(t, Config{})
		c := dialTCP(t, s)
		resp := newQuery("static.glb.example.com.", dns.TypeA)
		resp.Response = true
		batch := append([]byte{0, 3, 1, 2, 3}, frame(t, resp)...)
		batch = append(batch, frame(t, newQuery("static.glb.example.com.", dns.TypeA))...)
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		r, err := readFrame(c)
		if err != nil || r.Response != true || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("answer after skipped frames: %v, %v", err, r)
		}
	})
	t.Run("idle connection closed", func(t *testing.T) {
		s := startServer(t, Config{TCPIdleTimeout: 100 * time.Millisecond})
		c := dialTCP(t, s)
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read on idle connection: %v, want EOF from the server closing it", err)
		}
	})
	t.Run("a connection beyond the limit closes the longest idle one", func(t *testing.T) {
		s := startServer(t, Config{MaxTCPConns: 2, MaxTCPConnsPerPrefix: 2})
		c1, c2 := dialTCP(t, s), dialTCP(t, s)
		for _, c := range []net.Conn{c1, c2} {
			if _, err := exchangeTCP(t, c); err != nil {
				t.Fatal(err)
			}
			waitIdle(t, s, c)
		}
		c3 := dialTCP(t, s)
		if _, err := exchangeTCP(t, c3); err != nil {
			t.Fatalf("the new connection: %v", err)
		}
		if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("the longest idle connection: %v, want EOF", err)
		}
		if _, err := exchangeTCP(t, c2); err != nil {
			t.Errorf("the other idle connection: %v", err)
		}
		if st := s.TCPStats(); st.Evicted != 1 || st.Refused != 0 || st.Open != 2 {
			t.Errorf("stats %+v, want one evicted, none refused, two open", st)
		}
	})
	t.Run("a connection beyond the limit of busy ones is refused", func(t *testing.T) {
		s := startServer(t, Config{MaxTCPConns: 1})
		c1 := dialTCP(t, s)
		if _, err := c1.Write([]byte{0, 40, 1}); err != nil { // a query on its way
			t.Fatal(err)
		}
		waitBusy(t, s, 1)
		c2 := dialTCP(t, s)
		if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("second connection read: %v, want EOF", err)
		}
		if st := s.TCPStats(); st.Refused != 1 {
			t.Errorf("stats %+v, want one refused", st)
		}
	})
	t.Run("one prefix holds its share, not the others'", func(t *testing.T) {
		s := startServer(t, Config{MaxTCPConns: 100, MaxTCPConnsPerPrefix: 2})
		for range 2 {
			c := dialTCP(t, s)
			if _, err := c.Write([]byte{0, 40, 1}); err != nil { // busy
				t.Fatal(err)
			}
		}
		waitBusy(t, s, 2)
		third := dialTCP(t, s)
		if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("a third connection from 127.0.0.0/24: %v, want EOF", err)
		}
		other := dialTCPFrom(t, s, "127.0.1.1")
		if _, err := exchangeTCP(t, other); err != nil {
			t.Errorf("a connection from 127.0.1.0/24: %v", err)
		}
	})
	t.Run("queries per connection bounded", func(t *testing.T) {
		s := startServer(t, Config{MaxTCPQueriesPerConn: 2})
		c := dialTCP(t, s)
		for i := range 2 {
			if _, err := c.Write(frame(t, newQuery("static.glb.example.com.", dns.TypeA))); err != nil {
				t.Fatal(err)
			}
			if _, err := readFrame(c); err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after the limit: %v, want EOF", err)
		}
	})
}

// downHealth marks members down by name.
type downHealth map[string]bool

func (d downHealth) Up(m *policy.Member) bool { return !d[m.Name] }

type healthSource struct{ down downHealth }

func (h *healthSource) For(*policy.Snapshot) policy.Health { return h.down }

func TestHealth(t *testing.T) {
	s := startServer(t, Config{})
	hs := &healthSource{down: downHealth{"a": true}}
	s.SetHealthSource(hs)
	for range 20 {
		r := exchange(t, s, "udp", newQuery("www.glb.example.com.", dns.TypeA))
		if got := r.Answer[0].(*dns.A).A.String(); got != "192.0.2.11" {
			t.Fatalf("member a is down but got %s", got)
		}
	}
	hs.down = downHealth{"b": true}
	s.HealthChanged()
	for range 20 {
		r := exchange(t, s, "udp", newQuery("www.glb.example.com.", dns.TypeA))
		if got := r.Answer[0].(*dns.A).A.String(); got != "192.0.2.10" {
			t.Fatalf("member b is down but got %s", got)
		}
	}
}

func TestNoSnapshotServFail(t *testing.T) {
	s := New(Config{Logger: testLogger()})
	b, _ := newQuery("static.glb.example.com.", dns.TypeA).Pack()
	r := new(dns.Msg)
	if err := r.Unpack(s.Handle(b, netip.MustParseAddrPort("192.0.2.1:53"), false, nil)); err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL before any snapshot", dns.RcodeToString[r.Rcode])
	}
}

// startUntilShutdown runs a server on 127.0.0.1:0 with the test policy until the test
// calls shutdown with the returned channel.
func startUntilShutdown(t *testing.T, cfg Config) (*Server, chan error) {
	t.Helper()
	cfg.Addr, cfg.Logger = "127.0.0.1:0", testLogger()
	s := New(cfg)
	s.SetSnapshot(loadSnapshot(t))
	errc := make(chan error, 1)
	go func() { errc <- s.Start(context.Background()) }()
	<-s.Ready()
	if !s.Addr().IsValid() {
		t.Fatalf("start: %v", <-errc)
	}
	return s, errc
}

// shutdown stops s within 5 s and checks that Start returned nil.
func shutdown(t *testing.T, s *Server, errc chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Start returned %v", err)
	}
}

func TestShutdown(t *testing.T) {
	s, errc := startUntilShutdown(t, Config{UDPWorkers: 2})
	c := dialTCP(t, s) // an open connection must not block shutdown
	shutdown(t, s, errc)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after shutdown")
	}
}

// panicHealth panics on every lookup, standing in for a bug reached by one query.
type panicHealth struct{}

func (panicHealth) Up(*policy.Member) bool { panic("health view bug") }

type panicSource struct{}

func (panicSource) For(*policy.Snapshot) policy.Health { return panicHealth{} }

func TestPanicRecovered(t *testing.T) {
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(loadSnapshot(t))
	s.SetHealthSource(panicSource{})
	src := netip.MustParseAddrPort("192.0.2.1:53")
	b, _ := newQuery("www.glb.example.com.", dns.TypeA).Pack()
	if out := s.Handle(b, src, false, nil); out != nil {
		t.Errorf("reply after a panic: % x", out)
	}
	if s.Panics() != 1 {
		t.Errorf("Panics() = %d, want 1", s.Panics())
	}
	// Static data does not touch the health view and is still answered.
	b, _ = newQuery("static.glb.example.com.", dns.TypeA).Pack()
	r := new(dns.Msg)
	if err := r.Unpack(s.Handle(b, src, false, nil)); err != nil || len(r.Answer) != 1 {
		t.Errorf("after a panic: %v %v", err, r)
	}
}

func TestUDPSockets(t *testing.T) {
	s := startServer(t, Config{UDPWorkers: 3})
	want := 3
	if !haveReusePort {
		want = 1
	}
	s.lmu.Lock()
	n := len(s.udp)
	s.lmu.Unlock()
	if n != want {
		t.Errorf("%d UDP sockets, want %d", n, want)
	}
	// Queries from many source ports (spread by the kernel across the sockets) are all
	// answered, each from the port the client sent to.
	for i := range 20 {
		r := exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA))
		if len(r.Answer) != 1 {
			t.Fatalf("query %d: %v", i, r)
		}
	}
}

// exchangeTCP sends one query on c and reads its answer.
func exchangeTCP(t *testing.T, c net.Conn) (*dns.Msg, error) {
	t.Helper()
	if _, err := c.Write(frame(t, newQuery("static.glb.example.com.", dns.TypeA))); err != nil {
		return nil, err
	}
	return readFrame(c)
}

// waitIdle waits until the server counts the connection c (its client side) as idle.
func waitIdle(t *testing.T, s *Server, c net.Conn) {
	t.Helper()
	for range 1000 {
		s.tcpConns.mu.Lock()
		found := false
		for tc := s.tcpConns.idle.head; tc != nil; tc = tc.next {
			found = found || tc.c.RemoteAddr().String() == c.LocalAddr().String()
		}
		s.tcpConns.mu.Unlock()
		if found {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connection %s not idle within 5s", c.LocalAddr())
}

// waitBusy waits until the server has n connections open, none of them idle.
func waitBusy(t *testing.T, s *Server, n int) {
	t.Helper()
	for range 1000 {
		s.tcpConns.mu.Lock()
		ok := s.tcpConns.n == n && s.tcpConns.idle.head == nil
		s.tcpConns.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not %d busy connections within 5s", n)
}
