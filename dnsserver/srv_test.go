package dnsserver

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

const srvPolicy = "testdata/srv.hcl"

// srvServer is a server with testdata/srv.hcl, in process, members down as hs says (all
// up when hs is nil).
func srvServer(tb testing.TB, hs HealthSource) *Server {
	tb.Helper()
	snap, diags := policy.LoadPath(srvPolicy)
	if diags.HasErrors() {
		tb.Fatalf("load %s: %s", srvPolicy, diags.Error())
	}
	s := New(Config{Logger: testLogger()})
	if hs != nil {
		s.SetHealthSource(hs)
	}
	s.SetSnapshot(snap)
	return s
}

// ask sends m to s in process, as from 198.51.100.7, and unpacks the reply.
func ask(t *testing.T, s *Server, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	out := s.Handle(packed(t, m), netip.MustParseAddrPort("198.51.100.7:5353"), tcp, nil)
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatalf("%s: unpack reply: %v", m.Question[0].String(), err)
	}
	return r
}

// srvLines renders an SRV answer as sorted "priority weight port target" lines.
func srvLines(t *testing.T, rrs []dns.RR) []string {
	t.Helper()
	var out []string
	for _, rr := range rrs {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			t.Fatalf("not an SRV record: %v", rr)
		}
		out = append(out, fmt.Sprintf("%d %d %d %s", srv.Priority, srv.Weight, srv.Port, srv.Target))
	}
	sort.Strings(out)
	return out
}

// addrLines renders an additional section (OPT left out) as sorted "owner address" lines.
func addrLines(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.Hdr.Name+" "+v.A.String())
		case *dns.AAAA:
			out = append(out, v.Hdr.Name+" "+v.AAAA.String())
		case *dns.OPT:
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestSRVAnswers(t *testing.T) {
	const plain = "_http._tcp.plain.srv.example."
	tplain := func(m string) string { return m + ".a." + plain }
	cases := []struct {
		name  string
		qname string
		down  downHealth
		rcode int
		srv   []string // sorted "priority weight port target"
		extra []string // sorted "owner address"
	}{
		{name: "plain: every usable member, weight 0 left out", qname: plain,
			srv:   []string{"0 1 8080 " + tplain("a1"), "0 2 9090 " + tplain("a3"), "0 3 8080 " + tplain("a2")},
			extra: []string{tplain("a1") + " 192.0.2.1", tplain("a2") + " 192.0.2.2", tplain("a3") + " 2001:db8::3"}},
		{name: "plain: a down member leaves", qname: plain, down: downHealth{"a2": true},
			srv:   []string{"0 1 8080 " + tplain("a1"), "0 2 9090 " + tplain("a3")},
			extra: []string{tplain("a1") + " 192.0.2.1", tplain("a3") + " 2001:db8::3"}},
		{name: "failover: priority from the pool order", qname: "fo.srv.example.",
			srv: []string{"0 1 8080 a1.a.fo.srv.example.", "0 2 9090 a3.a.fo.srv.example.", "0 3 8080 a2.a.fo.srv.example.",
				"1 1 8081 b1.b.fo.srv.example.", "1 1 8081 b2.b.fo.srv.example."}},
		{name: "failover: a pool down is left out", qname: "fo.srv.example.", down: downHealth{"a1": true, "a2": true, "a3": true},
			srv: []string{"0 1 8081 b1.b.fo.srv.example.", "0 1 8081 b2.b.fo.srv.example."}},
		{name: "failover, answers 1: one per pool", qname: "one.srv.example.", down: downHealth{"b2": true, "a2": true, "a3": true},
			srv: []string{"0 1 8081 b1.b.one.srv.example.", "1 1 8080 a1.a.one.srv.example."}},
		{name: "when_all_down all: fail open at priority 0", qname: "fo.srv.example.",
			down: downHealth{"a1": true, "a2": true, "a3": true, "b1": true, "b2": true},
			srv:  []string{"0 1 8080 a1.a.fo.srv.example.", "0 2 9090 a3.a.fo.srv.example.", "0 3 8080 a2.a.fo.srv.example."}},
		{name: "when_all_down servfail", qname: "down.srv.example.", down: downHealth{"b1": true, "b2": true}, rcode: dns.RcodeServerFailure},
		{name: "host-name member: the host is the target, no additional", qname: "cdn.srv.example.",
			srv: []string{"0 1 443 eu.cdn.example.net."}},
		{name: "no port: NODATA", qname: "noport.srv.example."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := srvServer(t, &healthSource{down: tc.down})
			m := newQuery(tc.qname, dns.TypeSRV)
			m.SetEdns0(1232, false)
			r := ask(t, s, m, false)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if tc.rcode != dns.RcodeSuccess {
				return
			}
			if !r.Authoritative || r.Truncated {
				t.Errorf("AA %v TC %v, want AA and no TC", r.Authoritative, r.Truncated)
			}
			if got := srvLines(t, r.Answer); !slices.Equal(got, tc.srv) {
				t.Errorf("SRV\n got %q\nwant %q", got, tc.srv)
			}
			if tc.srv == nil && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
				t.Errorf("NODATA without the SOA: %v", r.Ns)
			}
			if tc.extra != nil {
				if got := addrLines(r.Extra); !slices.Equal(got, tc.extra) {
					t.Errorf("additional\n got %q\nwant %q", got, tc.extra)
				}
			} else if got := addrLines(r.Extra); tc.qname == "cdn.srv.example." && len(got) != 0 {
				t.Errorf("additional %q, want none", got)
			}
		})
	}
}

func TestSRVTargets(t *testing.T) {
	// Targets answer health-independent: a1 is down and still resolves.
	s := srvServer(t, &healthSource{down: downHealth{"a1": true}})
	cases := []struct {
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"a1.a._http._tcp.plain.srv.example.", dns.TypeA, dns.RcodeSuccess, []string{"a1.a._http._tcp.plain.srv.example. 192.0.2.1"}},
		{"A1.A._HTTP._TCP.Plain.SRV.example.", dns.TypeA, dns.RcodeSuccess, []string{"A1.A._HTTP._TCP.Plain.SRV.example. 192.0.2.1"}},
		{"a1.a._http._tcp.plain.srv.example.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"a3.a._http._tcp.plain.srv.example.", dns.TypeAAAA, dns.RcodeSuccess, []string{"a3.a._http._tcp.plain.srv.example. 2001:db8::3"}},
		{"a3.a._http._tcp.plain.srv.example.", dns.TypeMX, dns.RcodeSuccess, nil},
		{"b1.b.fo.srv.example.", dns.TypeA, dns.RcodeSuccess, []string{"b1.b.fo.srv.example. 192.0.2.11"}},
		{"b1.a.fo.srv.example.", dns.TypeA, dns.RcodeNameError, nil},
		{"x.a1.a._http._tcp.plain.srv.example.", dns.TypeA, dns.RcodeNameError, nil},
		{"n1.noport.noport.srv.example.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tc := range cases {
		for _, tcp := range []bool{false, true} {
			r := ask(t, s, newQuery(tc.qname, tc.qtype), tcp)
			if r.Rcode != tc.rcode {
				t.Errorf("%s %s: rcode %s, want %s", tc.qname, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				continue
			}
			if got := addrLines(r.Answer); !slices.Equal(got, tc.want) {
				t.Errorf("%s %s: answer %q, want %q", tc.qname, dns.TypeToString[tc.qtype], got, tc.want)
			}
			if len(tc.want) == 0 && len(r.Ns) != 1 {
				t.Errorf("%s %s: negative answer without the SOA", tc.qname, dns.TypeToString[tc.qtype])
			}
		}
	}
}

func TestSRVAdditionalDroppedBeforeTruncation(t *testing.T) {
	s := srvServer(t, nil)
	// 24 SRV records and 24 target addresses do not fit 1232 bytes; the records alone do,
	// with some of the addresses: the others are dropped, a whole RRset at a time from the
	// last, and the reply is not truncated.
	m := newQuery("mid.srv.example.", dns.TypeSRV)
	m.SetEdns0(1232, false)
	r := ask(t, s, m, false)
	if extra := addrLines(r.Extra); r.Truncated || len(r.Answer) != 24 || len(extra) >= 24 || !slices.Equal(extra, addrLines(ask(t, s, m, true).Extra)[:len(extra)]) {
		t.Errorf("UDP 1232: TC %v, %d answers, additional %q; want 24 answers, the first addresses that fit, no TC", r.Truncated, len(r.Answer), extra)
	}
	r = ask(t, s, m, true)
	if r.Truncated || len(r.Answer) != 24 || len(addrLines(r.Extra)) != 24 {
		t.Errorf("TCP: TC %v, %d answers, %d additional; want 24 and 24", r.Truncated, len(r.Answer), len(addrLines(r.Extra)))
	}
	// 30 SRV records do not fit 1232 bytes (targets are never compressed, RFC 2782), nor
	// 24 in 512 without EDNS: TC, no records.
	for _, m := range []*dns.Msg{newQuery("mid.srv.example.", dns.TypeSRV), newQuery("all.srv.example.", dns.TypeSRV).SetEdns0(1232, false)} {
		if r = ask(t, s, m, false); !r.Truncated || len(r.Answer)+len(r.Extra) > 1 {
			t.Errorf("%s: TC %v with %d answers, want TC and none", m.Question[0].String(), r.Truncated, len(r.Answer))
		}
	}
	// answers = 0 for A: every member, 30 A records; TC at 512 bytes, as before.
	m = newQuery("all.srv.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	if r = ask(t, s, m, false); r.Truncated || len(r.Answer) != 30 {
		t.Errorf("A with EDNS: TC %v, %d answers; want all 30", r.Truncated, len(r.Answer))
	}
	if r = ask(t, s, newQuery("all.srv.example.", dns.TypeA), false); !r.Truncated {
		t.Errorf("A without EDNS: %d answers without TC, want TC", len(r.Answer))
	}
}

func TestSRVScope(t *testing.T) {
	s := srvServer(t, nil)
	r := ask(t, s, withECS(newQuery("hw.srv.example.", dns.TypeSRV), "203.0.113.0/24"), false)
	if e := ecsOf(r); e == nil || e.SourceScope != 24 || len(r.Answer) != 2 {
		t.Errorf("hash SRV: ECS %v, %d answers; want scope 24 and 2 records", e, len(r.Answer))
	}
	r = ask(t, s, withECS(newQuery("fo.srv.example.", dns.TypeSRV), "203.0.113.0/24"), false)
	if e := ecsOf(r); e == nil || e.SourceScope != 0 {
		t.Errorf("failover SRV: ECS %v, want scope 0", e)
	}
}

// TestSRVFastPathIdenticalBytes compares the fast and the general path over the SRV
// policy with a member down: target names, answers = 0 services and SRV answers on the
// fast path (TestFastPathIdenticalBytesSRV covers SRV in every variant).
func TestSRVFastPathIdenticalBytes(t *testing.T) {
	fast := srvServer(t, &healthSource{down: downHealth{"a2": true}})
	gen := srvServer(t, &healthSource{down: downHealth{"a2": true}})
	st := *gen.state.Load()
	st.fast = nil
	gen.state.Store(&st)
	names := []string{"a1.a._http._tcp.plain.srv.example.", "a3.a._http._tcp.plain.srv.example.", "b2.b.fo.srv.example.",
		"m07.big.all.srv.example.", "x.a.fo.srv.example.", "all.srv.example.", "fo.srv.example.", "hw.srv.example.",
		"one.srv.example.", "cdn.srv.example.", "noport.srv.example.", "eu.edge.cdn.srv.example."}
	hits := map[string]int{}
	for _, name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeMX} {
			for _, ecs := range []string{"", "-", "203.0.113.0/24"} {
				for _, qn := range []string{name, strings.ToUpper(name), mixCase(name)} {
					m := newQuery(qn, qt)
					if ecs != "" {
						m.SetEdns0(1232, false)
						if ecs != "-" {
							m = withECS(m, ecs)
						}
					}
					req := packed(t, m)
					src := netip.MustParseAddrPort("198.51.100.7:53")
					f, ok := fast.fastOnly(req, src, false, nil, 0)
					if ok {
						hits[dns.TypeToString[qt]+"/"+name]++
					} else {
						f = fast.Handle(req, src, false, nil)
					}
					g := gen.Handle(req, src, false, nil)
					if !bytes.Equal(f, g) {
						t.Errorf("%s %s ecs=%q (fast=%v): replies differ:\nfast    %x\ngeneral %x", qn, dns.TypeToString[qt], ecs, ok, f, g)
					}
				}
			}
		}
	}
	for _, want := range []string{"A/a1.a._http._tcp.plain.srv.example.", "AAAA/a3.a._http._tcp.plain.srv.example.",
		"A/all.srv.example.", "A/hw.srv.example.", "A/fo.srv.example.", "MX/b2.b.fo.srv.example."} {
		if hits[want] == 0 {
			t.Errorf("%s never took the fast path", want)
		}
	}
	if hits["SRV/fo.srv.example."] == 0 || hits["SRV/all.srv.example."] == 0 {
		t.Errorf("SRV never took the fast path")
	}
}

// startSRV runs a server with the SRV policy on 127.0.0.1:0.
func startSRV(t *testing.T, hs HealthSource) *Server {
	t.Helper()
	snap, diags := policy.LoadPath(srvPolicy)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	s := New(Config{Addr: "127.0.0.1:0", Logger: testLogger(), UDPWorkers: 1})
	s.SetHealthSource(hs)
	s.SetSnapshot(snap)
	return serve(t, s)
}

// goResolver is Go's own stub resolver, sending every query to s.
func goResolver(s *Server) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr().String())
	}}
}

// TestSRVGoClient is what a Go client balancing by itself sees: net.Resolver.LookupSRV
// gets the healthy members, a member marked down leaves at once, and the targets resolve.
func TestSRVGoClient(t *testing.T) {
	hs := &healthSource{down: downHealth{}}
	s := startSRV(t, hs)
	res := goResolver(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lookup := func() []string {
		t.Helper()
		_, addrs, err := res.LookupSRV(ctx, "http", "tcp", "plain.srv.example.")
		if err != nil {
			t.Fatalf("LookupSRV: %v", err)
		}
		var got []string
		for _, a := range addrs {
			got = append(got, fmt.Sprintf("%s:%d", a.Target, a.Port))
		}
		sort.Strings(got)
		return got
	}
	const base = "._http._tcp.plain.srv.example."
	want := []string{"a1.a" + base + ":8080", "a2.a" + base + ":8080", "a3.a" + base + ":9090"}
	if got := lookup(); !slices.Equal(got, want) {
		t.Fatalf("all up: %q, want %q", got, want)
	}
	hs.down = downHealth{"a2": true}
	s.HealthChanged()
	if got := lookup(); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Fatalf("a2 down: %q, want %q", got, []string{want[0], want[2]})
	}
	addrs, err := res.LookupHost(ctx, "a3.a"+base)
	if err != nil || !slices.Equal(addrs, []string{"2001:db8::3"}) {
		t.Errorf("LookupHost(a3 target) = %v, %v; want 2001:db8::3", addrs, err)
	}
	addrs, err = res.LookupHost(ctx, "a2.a"+base) // down, and still resolving
	if err != nil || !slices.Equal(addrs, []string{"192.0.2.2"}) {
		t.Errorf("LookupHost(a2 target) = %v, %v; want 192.0.2.2", addrs, err)
	}
}

// rfc2782Pick is the selection RFC 2782 tells a client to make ("Usage rules"), as Go's
// resolver makes it (net/dnsclient.go, byPriorityWeight.shuffleByWeight): the lowest
// priority first; within it, a number drawn from [0, sum of weights), and the first
// record whose running sum of weights exceeds it. (The RFC's text draws from [0, sum]
// and takes a running sum "greater than or equal", which gives the first record one
// chance in sum+1 more than its weight; Go's form is the unbiased one.)
func rfc2782Pick(r *rand.Rand, srvs []*dns.SRV) *dns.SRV {
	best := srvs[0].Priority
	for _, s := range srvs {
		best = min(best, s.Priority)
	}
	var level []*dns.SRV
	sum := 0
	for _, s := range srvs {
		if s.Priority == best {
			level = append(level, s)
			sum += int(s.Weight)
		}
	}
	if sum == 0 {
		return level[r.IntN(len(level))]
	}
	x, run := r.IntN(sum), 0
	for _, s := range level {
		if run += int(s.Weight); run > x {
			return s
		}
	}
	return level[len(level)-1]
}

// TestSRVClientShares checks the records' weights against what clients make of them:
// 10,000 RFC 2782 picks from the answer give each member its weight's share within 3
// points, and Go's resolver orders its first record by the same rule.
func TestSRVClientShares(t *testing.T) {
	s := srvServer(t, nil)
	m := newQuery("_http._tcp.plain.srv.example.", dns.TypeSRV)
	r := ask(t, s, m, true)
	var srvs []*dns.SRV
	for _, rr := range r.Answer {
		srvs = append(srvs, rr.(*dns.SRV))
	}
	const picks = 10000
	rng := rand.New(rand.NewPCG(1, 2))
	got := map[string]int{}
	for range picks {
		got[rfc2782Pick(rng, srvs).Target]++
	}
	total := 0
	for _, s := range srvs {
		total += int(s.Weight)
	}
	for _, srv := range srvs {
		share, want := float64(got[srv.Target])/picks, float64(srv.Weight)/float64(total)
		t.Logf("%s weight %d: %.2f%% of picks (want %.2f%%)", srv.Target, srv.Weight, 100*share, 100*want)
		if share < want-0.03 || share > want+0.03 {
			t.Errorf("%s: share %.4f, want %.4f ± 0.03", srv.Target, share, want)
		}
	}
}

// BenchmarkSRVAnswer is an SRV answer of 3 records with their target addresses, on the
// general path (BenchmarkFastPathSRV is the same query on the fast path).
func BenchmarkSRVAnswer(b *testing.B) {
	s := srvServer(b, nil)
	stripFast(s)
	m := newQuery("_http._tcp.plain.srv.example.", dns.TypeSRV)
	m.SetEdns0(1232, false)
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, ednsUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		out = s.handle(req, from, false, out, 0)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || len(r.Answer) != 3 || len(r.Extra) != 4 {
		b.Fatalf("last reply: %v %v", err, r)
	}
}

func BenchmarkFastPathSRVTarget(b *testing.B) {
	benchFastOn(b, srvServer(b, nil), newQuery("a1.a._http._tcp.plain.srv.example.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}

// BenchmarkFastPathAnswersAll is an A answer of every member (answers = 0), 30 records.
func BenchmarkFastPathAnswersAll(b *testing.B) {
	m := newQuery("all.srv.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	benchFastOn(b, srvServer(b, nil), m, "198.51.100.7:5353", dns.RcodeSuccess)
}

// BenchmarkFastPathWeightedHash is client_subnet_hash over members of weights 1, 3, 2
// (weighted rendezvous hashing), 2 answers, with ECS.
func BenchmarkFastPathWeightedHash(b *testing.B) {
	benchFastOn(b, srvServer(b, nil), withECS(newQuery("hw.srv.example.", dns.TypeA), "203.0.113.0/24"), "198.51.100.7:5353", dns.RcodeSuccess)
}
