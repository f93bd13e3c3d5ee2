package dnsserver

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/policy"
)

// srvCookieServer is srvServer with cookie secrets, health from h.
func srvCookieServer(tb testing.TB, h *switchHealth) *Server {
	tb.Helper()
	snap, diags := policy.LoadPath(srvPolicy)
	if diags.HasErrors() {
		tb.Fatalf("load %s: %s", srvPolicy, diags.Error())
	}
	s := New(Config{Logger: testLogger(), CookieSecrets: testCookieSecrets})
	s.SetHealthSource(h)
	s.SetSnapshot(snap)
	return s
}

// TestFastPathIdenticalBytesSRV is the byte-identity test for SRV answers
// (testdata/srv.hcl): every SRV service, with and without EDNS, ECS, DO and cookies,
// three letter cases, RD on and off, UDP and TCP, under health views that spill a
// failover, reach SERVFAIL and fail open; UDP sizes that drop some of the additional
// records (mid: 24 records, some of their addresses) and that truncate (all: 30 records;
// mid without EDNS). Both servers' metrics must match, and the fast path must take the
// SRV queries it is meant for, the dropping and truncating ones included.
func TestFastPathIdenticalBytesSRV(t *testing.T) {
	hf, hg := &switchHealth{}, &switchHealth{}
	fast, gen := srvCookieServer(t, hf), srvCookieServer(t, hg)
	stripFast(gen)
	regF, regG := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	regF.MustRegister(fast.Collector())
	regG.MustRegister(gen.Collector())

	names := []string{"_http._tcp.plain.srv.example.", "fo.srv.example.", "one.srv.example.", "down.srv.example.",
		"all.srv.example.", "mid.srv.example.", "hw.srv.example.", "cdn.srv.example.", "noport.srv.example.",
		"nx.srv.example.", "a1.a.fo.srv.example."}
	// The weighted service's answers = 0 draws its order at random: only the shape and
	// the records are compared.
	weighted := map[string]bool{"_http._tcp.plain.srv.example.": true}
	ednsCases := []ednsCase{
		{name: "none"},
		{name: "edns", edns: true, size: 1232},
		{name: "edns-do-small", edns: true, do: true, size: 100},
		// mid, all up: 33 bytes of header and question, 24 SRV records of 43 bytes, an OPT
		// of 11, and 16 bytes per address.
		{name: "edns-1100", edns: true, size: 1100}, // mid: 1 address fits
		{name: "edns-1092", edns: true, size: 1092}, // mid: exactly 1 address
		{name: "edns-1091", edns: true, size: 1091}, // mid: one byte short of 1 address
		{name: "edns-1076", edns: true, size: 1076}, // mid: exactly the records, no address
		{name: "edns-1075", edns: true, size: 1075}, // mid: one byte short, TC
		{name: "ecs4-24", edns: true, size: 4096, ecs: "203.0.113.0/24"},
		{name: "ecs4-0", edns: true, size: 1232, ecs: "0.0.0.0/0"},
		{name: "ecs6-56", edns: true, do: true, size: 1150, ecs: "2001:db8:1234:5600::/56"},
		{name: "cookie-client", edns: true, size: 1232, cookie: "client"},
		{name: "cookie-valid", edns: true, size: 1232, ecs: "203.0.113.0/24", cookie: "valid"},
	}
	scenarios := []struct {
		name string
		down memberDown
	}{
		{name: "up"},
		{name: "a2-down", down: func(m *policy.Member) bool { return m.Name == "a2" }},
		{name: "a-down", down: func(m *policy.Member) bool { return m.Pool == "a" }},         // fo spills to b
		{name: "b-down", down: func(m *policy.Member) bool { return m.Pool == "b" }},         // down: SERVFAIL
		{name: "some-mid-down", down: func(m *policy.Member) bool { return m.Name < "m12" }}, // fewer records
		{name: "all-down", down: func(*policy.Member) bool { return true }},                  // fail open
	}
	srcs := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:5353"), netip.MustParseAddrPort("[2001:db8::7]:5353")}
	outF := make([]byte, 0, ednsUDPSize)
	outG := make([]byte, 0, ednsUDPSize)
	hits := map[string]int{}
	truncated, dropped := 0, 0
	total := 0
	for _, sc := range scenarios {
		hf.down, hg.down = sc.down, sc.down
		fast.HealthChanged()
		gen.HealthChanged()
		stripFast(gen)
		for _, name := range names {
			for _, qt := range []uint16{dns.TypeSRV, dns.TypeA} {
				for _, ec := range ednsCases {
					for ci := range 3 {
						for _, rd := range []bool{false, true} {
							for _, tcp := range []bool{false, true} {
								qn := letterCase(name, ci)
								src := srcs[total%len(srcs)]
								m := ec.query(t, qn, qt, rd, src)
								req := packed(t, m)
								total++
								label := fmt.Sprintf("%s/%s/%s/%s/case=%d/rd=%v/tcp=%v", sc.name, qn, dns.TypeToString[qt], ec.name, ci, rd, tcp)
								f, ok := fast.fastOnly(req, src, tcp, outF, 0)
								if ok {
									hits[dns.TypeToString[qt]+"/"+name]++
								} else {
									f = fast.Handle(req, src, tcp, outF)
								}
								g := gen.Handle(req, src, tcp, outG)
								if f == nil || g == nil {
									t.Fatalf("%s: no reply (fast %v, general %v)", label, f != nil, g != nil)
								}
								if ec.cookie == "client" {
									f, g = maskServerCookie(t, f), maskServerCookie(t, g)
								}
								if weighted[name] {
									if len(f) != len(g) || !bytes.Equal(f[:12], g[:12]) || !slices.Equal(srvRecords(t, f), srvRecords(t, g)) {
										t.Errorf("%s (fast=%v): weighted reply differs:\nfast    %x\ngeneral %x", label, ok, f, g)
									}
									continue
								}
								if !bytes.Equal(f, g) {
									t.Errorf("%s (fast=%v): replies differ:\nfast    %x\ngeneral %x", label, ok, f, g)
									continue
								}
								if qt == dns.TypeSRV && ok {
									var r dns.Msg
									if err := r.Unpack(f); err != nil {
										t.Fatalf("%s: %v", label, err)
									}
									switch {
									case r.Truncated:
										truncated++
									case len(r.Answer) > 0 && len(addrLines(r.Extra)) < len(r.Answer):
										dropped++
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d queries; fast-path SRV replies: %d truncated, %d with additional records dropped", total, truncated, dropped)
	if truncated == 0 || dropped == 0 {
		t.Errorf("the fast path truncated %d SRV replies and dropped additional records from %d, want both", truncated, dropped)
	}
	for _, want := range []string{"SRV/_http._tcp.plain.srv.example.", "SRV/fo.srv.example.", "SRV/one.srv.example.",
		"SRV/down.srv.example.", "SRV/all.srv.example.", "SRV/mid.srv.example.", "SRV/hw.srv.example.", "SRV/noport.srv.example.",
		"A/fo.srv.example.", "SRV/a1.a.fo.srv.example."} {
		if hits[want] == 0 {
			t.Errorf("%s never took the fast path", want)
		}
	}
	if hits["SRV/cdn.srv.example."] != 0 {
		t.Errorf("SRV at a host-name service took the fast path")
	}
	// A query the fast path declines has its cookie judged twice here (by fastOnly, then
	// by Handle), so the cookie counters are left out.
	mf, mg := gather(t, regF), gather(t, regG)
	for k := range mf {
		if strings.HasPrefix(k, "glbdns_dns_cookies_total") {
			delete(mf, k)
			delete(mg, k)
		}
	}
	for k, v := range mg {
		if mf[k] != v {
			t.Errorf("metric %s: fast server %v, general server %v", k, mf[k], v)
		}
	}
	for k, v := range mf {
		if _, ok := mg[k]; !ok {
			t.Errorf("metric %s: fast server %v, absent from the general server", k, v)
		}
	}
}

// srvRecords is the answer and additional sections of reply msg, each record as text,
// sorted.
func srvRecords(t *testing.T, msg []byte) []string {
	t.Helper()
	var r dns.Msg
	if err := r.Unpack(msg); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range append(r.Answer, r.Extra...) {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// TestFastPathSRVNoAlloc: SRV answers (weighted, failover spilling to the next pool,
// client_subnet_hash with ECS, every member of 24 with additional records dropped, a
// truncated one) allocate nothing on the fast path.
func TestFastPathSRVNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops scratches, which are then allocated again")
	}
	s := srvServer(t, &healthSource{down: downHealth{"a1": true, "a2": true, "a3": true}})
	out := make([]byte, 0, ednsUDPSize)
	for _, c := range []struct{ name, ecs string }{
		{"_http._tcp.plain.srv.example.", ""}, {"fo.srv.example.", ""}, {"hw.srv.example.", "203.0.113.0/24"},
		{"mid.srv.example.", ""}, {"all.srv.example.", ""},
	} {
		m := newQuery(c.name, dns.TypeSRV)
		if c.ecs != "" {
			m = withECS(m, c.ecs)
		} else {
			m.SetEdns0(1232, false)
		}
		req := packed(t, m)
		src := netip.MustParseAddrPort("198.51.100.7:53")
		if _, ok := s.fastOnly(req, src, false, out, 0); !ok {
			t.Fatalf("%s: the fast path declined", c.name)
		}
		if n := testing.AllocsPerRun(200, func() { out = s.Handle(req, src, false, out) }); n != 0 {
			t.Errorf("%s ecs %q: %v allocs per query, want 0", c.name, c.ecs, n)
		}
	}
}

// BenchmarkFastPathSRV is BenchmarkSRVAnswer's query on the fast path: 3 SRV records of a
// weighted service (answers = 0) and their targets' addresses, with EDNS.
func BenchmarkFastPathSRV(b *testing.B) {
	m := newQuery("_http._tcp.plain.srv.example.", dns.TypeSRV)
	m.SetEdns0(1232, false)
	benchFastOn(b, srvServer(b, nil), m, "198.51.100.7:5353", dns.RcodeSuccess)
}
