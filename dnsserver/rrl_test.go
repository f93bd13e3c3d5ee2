package dnsserver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestRRLBucket walks one bucket through its seconds: Rate replies pass, the next is
// limited, a second later it is full again, and a bucket tops up by Rate a second, never
// beyond it. A key that lands on a bucket another key holds takes it over, full.
func TestRRLBucket(t *testing.T) {
	r := newRRL(RRLConfig{Rate: 5, TableSize: 8})
	const key = 0xABCD_EF00_0000_0003
	limited := func(now uint32, n int) (out int) {
		for range n {
			if r.take(key, now) {
				out++
			}
		}
		return out
	}
	if got := limited(1000, 7); got != 2 {
		t.Fatalf("7 replies in the first second: %d limited, want 2", got)
	}
	if got := limited(1001, 5); got != 0 {
		t.Fatalf("5 replies in the next second: %d limited, want 0 (refilled)", got)
	}
	limited(1002, 3)                       // 2 tokens left
	if got := limited(1004, 6); got != 1 { // 2 + 5*2, capped at 5
		t.Fatalf("6 replies after two idle seconds: %d limited, want 1 (the bucket holds 5 at most)", got)
	}
	if !r.take(key, 1004) {
		t.Fatal("the bucket is empty, yet a reply passed")
	}
	// Another key on the same bucket (the table has 8): it is not limited for the first's
	// replies, and takes the bucket over.
	other := uint64(0x1234_5600_0000_0003)
	for i := range 5 {
		if r.take(other, 1004) {
			t.Fatalf("the colliding key was limited at its reply %d", i+1)
		}
	}
	if !r.take(other, 1004) {
		t.Fatal("the colliding key's sixth reply passed")
	}
	// 256 seconds later the 8-bit second is the same again: the bucket is as it was,
	// empty, for at most that second.
	if !r.take(other, 1004+256) || r.take(other, 1005+256) {
		t.Fatal("the bucket did not keep its second modulo 256")
	}
}

// rrlServer is a server on the test policy with response-rate limiting at rate replies a
// second, every second limited reply slipped.
func rrlServer(t *testing.T, rate int, exempt ...netip.Prefix) *Server {
	s := New(Config{Logger: testLogger(), RRL: RRLConfig{Rate: rate, Slip: 2, Exempt: exempt}, CookieSecrets: testCookieSecrets})
	s.SetSnapshot(loadSnapshot(t))
	return s
}

// tally sends n copies of the query made by mk from src and counts the replies: full
// ones, slipped ones (TC=1, no records) and none.
type tally struct{ full, slipped, dropped int }

func send(t *testing.T, s *Server, src netip.AddrPort, tcp bool, n int, mk func(i int) *dns.Msg) tally {
	t.Helper()
	var c tally
	for i := range n {
		m := mk(i)
		r := s.Handle(packed(t, m), src, tcp, nil)
		if r == nil {
			c.dropped++
			continue
		}
		var rm dns.Msg
		if err := rm.Unpack(r); err != nil {
			t.Fatal(err)
		}
		switch {
		case rm.Truncated:
			if len(rm.Answer)+len(rm.Ns) != 0 || len(rm.Question) != 1 || rm.Question[0].Name != m.Question[0].Name {
				t.Fatalf("a slipped reply carries records or lost its question: %v", &rm)
			}
			if (m.IsEdns0() != nil) != (rm.IsEdns0() != nil) {
				t.Fatalf("a slipped reply to an EDNS query %v has OPT %v", m.IsEdns0() != nil, rm.IsEdns0() != nil)
			}
			c.slipped++
		default:
			c.full++
		}
	}
	return c
}

// within checks that a tally of n replies limited at rate has rate full answers (twice
// that if the clock turned a second during the run), and the rest slipped and dropped
// half and half.
func within(t *testing.T, what string, c tally, n, rate int) {
	t.Helper()
	if c.full < rate || c.full > 2*rate || c.full+c.slipped+c.dropped != n {
		t.Errorf("%s: %+v of %d, want %d full answers (or up to %d across a second)", what, c, n, rate, 2*rate)
		return
	}
	if lim := n - c.full; c.slipped < lim/2-1 || c.slipped > lim/2+1 {
		t.Errorf("%s: %d of %d limited replies slipped, want half", what, c.slipped, lim)
	}
}

// TestRRL floods one name from one source: the configured rate of full answers, the rest
// slipped or dropped; and checks what is counted apart: another network, other names,
// NXDOMAIN for any name of the zone as one, TCP, a valid server cookie and the exempt.
func TestRRL(t *testing.T) {
	const rate, n = 10, 200
	srcA := netip.MustParseAddrPort("198.51.100.7:5353")
	a := func(name string) func(int) *dns.Msg {
		return func(int) *dns.Msg { return newQuery(name, dns.TypeA) }
	}
	edns := func(name string, cookie []byte) func(int) *dns.Msg {
		return func(int) *dns.Msg {
			m := newQuery(name, dns.TypeA)
			m.SetEdns0(1232, false)
			if cookie != nil {
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: cookie})
			}
			return m
		}
	}

	s := rrlServer(t, rate)
	within(t, "static A, fast path", send(t, s, srcA, false, n, a("static.glb.example.com.")), n, rate)
	// The same /24 shares the bucket: nothing left for it this second or the next.
	if c := send(t, s, netip.MustParseAddrPort("198.51.100.8:5353"), false, n, a("static.glb.example.com.")); c.full > rate {
		t.Errorf("another address of the flooding /24: %+v, want it limited with the flood", c)
	}
	within(t, "another /24", send(t, s, netip.MustParseAddrPort("198.51.101.7:5353"), false, n, a("static.glb.example.com.")), n, rate)
	within(t, "MX, general path", send(t, s, srcA, false, n, func(int) *dns.Msg { return newQuery("mail.glb.example.com.", dns.TypeMX) }), n, rate)
	within(t, "service A", send(t, s, srcA, false, n, a("rr.glb.example.com.")), n, rate)
	within(t, "with EDNS and a client cookie", send(t, s, srcA, false, n, edns("multi.glb.example.com.", testClientCookie)), n, rate)
	within(t, "NXDOMAIN, a new name each time", send(t, s, srcA, false, n, func(i int) *dns.Msg {
		return newQuery(fmt.Sprintf("x%d.nothere.glb.example.com.", i), dns.TypeA)
	}), n, rate)
	within(t, "REFUSED, a new zone each time", send(t, s, srcA, false, n, func(i int) *dns.Msg {
		return newQuery(fmt.Sprintf("x%d.example.org.", i), dns.TypeA)
	}), n, rate)

	// Not limited: TCP, a valid server cookie, an exempt client, and as many names as the
	// rate each.
	if c := send(t, s, srcA, true, n, a("static.glb.example.com.")); c.full != n {
		t.Errorf("TCP: %+v, want all %d answered", c, n)
	}
	valid := testCookieBytes("valid", srcA)
	if c := send(t, s, srcA, false, n, edns("static.glb.example.com.", valid)); c.full != n {
		t.Errorf("a valid server cookie: %+v, want all %d answered", c, n)
	}
	within(t, "a wildcard, a new name each time", send(t, s, srcA, false, n, func(i int) *dns.Msg {
		return newQuery(fmt.Sprintf("x%d.wild.glb.example.com.", i), dns.TypeA)
	}), n, rate)
	srcB := netip.MustParseAddrPort("203.0.113.9:5353")
	names := []string{"static", "multi", "rr", "hash", "www", "ns1", "ns2", "mail"}
	if c := send(t, s, srcB, false, len(names)*rate/2, func(i int) *dns.Msg {
		return newQuery(names[i%len(names)]+".glb.example.com.", dns.TypeA)
	}); c.full != len(names)*rate/2 {
		t.Errorf("%d names, half the rate each: %+v, want all answered", len(names), c)
	}
	ex := rrlServer(t, rate, netip.MustParsePrefix("198.51.100.0/24"))
	if c := send(t, ex, srcA, false, n, a("static.glb.example.com.")); c.full != n {
		t.Errorf("an exempt client: %+v, want all %d answered", c, n)
	}
	if got := s.metrics.shards; len(got) == 0 {
		t.Fatal("no metrics shards")
	}
	var drop, slip uint64
	for i := range s.metrics.shards {
		drop += s.metrics.shards[i].limited[rrlDrop].Load()
		slip += s.metrics.shards[i].limited[rrlSlip].Load()
	}
	if drop == 0 || slip == 0 || drop+1 < slip || slip+1 < drop {
		t.Errorf("rrl metrics: %d dropped, %d slipped, want about as many", drop, slip)
	}
}

// BenchmarkRRLCheck is what rate limiting adds to a reply it lets through: the key (the
// network, the class, the name's hash), the exempt list, and the bucket's compare-and-swap,
// for replies from 4,096 networks in turn over the default table.
func BenchmarkRRLCheck(b *testing.B) {
	r := newRRL(RRLConfig{Rate: maxRRLRate, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	var nb nameBuf
	req, err := newQuery("static.glb.example.com.", dns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	var q query
	q.act = parse(req, &q, &nb)
	q.name = &nb
	reply := append([]byte(nil), req...)
	reply[2] |= 0x84 // QR, AA
	reply[7] = 1     // ANCOUNT
	srcs := make([]netip.Addr, 4096)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7})
	}
	now := clock.seconds()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r.check(&q, srcs[i&4095], 1, dns.RcodeSuccess, reply, now) != rrlPass {
			b.Fatal("limited")
		}
		i++
	}
}

// BenchmarkCookieJudge is what a valid server cookie costs a query: one SipHash to check
// it (and none to mint, as it is echoed).
func BenchmarkCookieJudge(b *testing.B) {
	ck := newCookieKeys(testCookieSecrets)
	addr := netip.MustParseAddr("198.51.100.7")
	data := testCookieBytes("valid", netip.AddrPortFrom(addr, 53))
	b.ReportAllocs()
	for b.Loop() {
		q := query{cookieLen: uint8(len(data))}
		ck.judge(&q, data, addr, clock.seconds())
		if q.cookie != cookieValid {
			b.Fatal("not valid")
		}
	}
}
