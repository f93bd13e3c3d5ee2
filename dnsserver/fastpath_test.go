package dnsserver

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// generalOnly returns a server with the test policy whose fast path is switched off: its
// state carries no fast-path data, so Handle always takes the general path.
func generalOnly(tb testing.TB) *Server {
	tb.Helper()
	s := New(Config{Logger: testLogger(), CookieSecrets: testCookieSecrets})
	s.SetSnapshot(loadSnapshot(tb))
	st := *s.state.Load()
	st.fast = nil
	s.state.Store(&st)
	return s
}

// fastOnly is handle without the general path: the fast path's reply to req, ok = false
// when it declines.
func (s *Server) fastOnly(req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) ([]byte, bool) {
	fs := fastPool.Get().(*fastScratch)
	defer func() { fs.release(); fastPool.Put(fs) }()
	var q query
	s.begin(&q, req, fs, src, tcp, sh)
	return s.fastPath(s.state.Load(), &q, fs, req, src, tcp, out, sh)
}

func fastServer(tb testing.TB) *Server {
	tb.Helper()
	s := New(Config{Logger: testLogger(), CookieSecrets: testCookieSecrets})
	s.SetSnapshot(loadSnapshot(tb))
	return s
}

// ednsCase is an EDNS variant of the byte-identity tests' queries.
type ednsCase struct {
	name string
	edns bool
	do   bool
	ecs  string
	size uint16
	// cookie: "client" sends a client cookie, "valid" one with the server cookie minted
	// for the source, "bad" one with a server cookie of another secret.
	cookie string
}

// query is the query for qn and qt, RD as rd, with the case's OPT for a query from src.
func (ec ednsCase) query(t *testing.T, qn string, qt uint16, rd bool, src netip.AddrPort) *dns.Msg {
	m := newQuery(qn, qt)
	m.RecursionDesired = rd
	if ec.edns || ec.ecs != "" {
		m.SetEdns0(ec.size, ec.do)
	}
	if ec.ecs != "" {
		m = withECS(m, ec.ecs) // into the OPT just made
	}
	if ec.cookie != "" {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: testCookie(t, ec.cookie, src)})
	}
	return m
}

// letterCase is name as asked in case ci: 0 as it is, 1 in upper case, 2 mixed.
func letterCase(name string, ci int) string {
	switch ci {
	case 1:
		return strings.ToUpper(name)
	case 2:
		return mixCase(name)
	}
	return name
}

// mixCase returns name with every other letter in upper case ("gLb.ExAmPlE.").
func mixCase(name string) string {
	b := []byte(name)
	up := false
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			if up {
				b[i] = c - ('a' - 'A')
			}
			up = !up
		}
	}
	return string(b)
}

// TestFastPathIdenticalBytes runs a corpus of queries through the fast path and through
// the general path (on a second server with its own snapshot, so that round-robin cursors
// advance alike) and requires identical replies, byte for byte. Weighted services draw at
// random, so for them only the header, the length and the shape are compared.
func TestFastPathIdenticalBytes(t *testing.T) {
	fast, gen := fastServer(t), generalOnly(t)
	names := []string{
		"glb.example.com.", "ns1.glb.example.com.", "ns2.glb.example.com.", "static.glb.example.com.",
		"mail.glb.example.com.", "x.wild.glb.example.com.", "wild.glb.example.com.", "alias.glb.example.com.",
		"alias2.glb.example.com.", "out.glb.example.com.", "dangling.glb.example.com.",
		"manymx.glb.example.com.", "_sip._udp.glb.example.com.", "svcb.glb.example.com.", "_443._tcp.static.glb.example.com.",
		"sub.glb.example.com.", "ns.sub.glb.example.com.", "x.sub.glb.example.com.", "big.glb.example.com.",
		"www.glb.example.com.", "v4only.glb.example.com.", "rr.glb.example.com.", "hash.glb.example.com.",
		"cdn.glb.example.com.", "inner.glb.example.com.", "nothere.glb.example.com.",
		"a.b.nothere.glb.example.com.", "example.org.", "com.", "multi.glb.example.com.",
	}
	// alias and alias2 chase to www, a weighted service.
	weighted := map[string]bool{"www.glb.example.com.": true, "v4only.glb.example.com.": true, "alias.glb.example.com.": true, "alias2.glb.example.com.": true}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeCNAME, dns.TypeSRV, dns.TypeHTTPS, dns.TypeDS}
	ednsCases := []ednsCase{
		{name: "none"},
		{name: "edns", edns: true, size: 1232},
		{name: "edns-do-small", edns: true, do: true, size: 100},
		{name: "ecs4-24", edns: true, size: 4096, ecs: "203.0.113.0/24"},
		{name: "ecs4-20", edns: true, size: 1232, ecs: "203.0.112.0/20"},
		{name: "ecs4-0", edns: true, size: 1232, ecs: "0.0.0.0/0"},
		{name: "ecs6-56", edns: true, do: true, size: 1400, ecs: "2001:db8:1234:5600::/56"},
		{name: "cookie-client", edns: true, size: 1232, cookie: "client"},
		{name: "cookie-valid", edns: true, size: 1232, ecs: "203.0.113.0/24", cookie: "valid"},
		{name: "cookie-bad", edns: true, do: true, size: 1232, cookie: "bad"},
	}
	srcs := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:5353"), netip.MustParseAddrPort("[2001:db8::7]:5353")}
	fastHits := map[string]int{}
	total := 0
	outF := make([]byte, 0, ednsUDPSize)
	outG := make([]byte, 0, ednsUDPSize)
	for _, name := range names {
		for _, qt := range qtypes {
			for _, ec := range ednsCases {
				for ci, cs := range []string{"lower", "upper", "mixed"} {
					for _, rd := range []bool{false, true} {
						for _, tcp := range []bool{false, true} {
							qn := letterCase(name, ci)
							src := srcs[total%len(srcs)]
							req := packed(t, ec.query(t, qn, qt, rd, src))
							label := fmt.Sprintf("%s/%s/%s/%s/rd=%v/tcp=%v", qn, dns.TypeToString[qt], ec.name, cs, rd, tcp)
							total++
							f, ok := fast.fastOnly(req, src, tcp, outF, 0)
							if !ok {
								f = fast.Handle(req, src, tcp, outF)
							} else {
								fastHits[dns.TypeToString[qt]+"/"+name]++
							}
							g := gen.Handle(req, src, tcp, outG)
							if f == nil || g == nil {
								t.Fatalf("%s: no reply (fast %v, general %v)", label, f != nil, g != nil)
							}
							if weighted[name] && (qt == dns.TypeA || qt == dns.TypeAAAA || qt == dns.TypeANY || strings.HasPrefix(name, "alias")) {
								if len(f) != len(g) || !bytes.Equal(f[:12], g[:12]) {
									t.Errorf("%s: weighted reply shape differs:\nfast    %x\ngeneral %x", label, f, g)
								}
								continue
							}
							if ec.cookie != "" && ec.cookie != "valid" {
								// A fresh server cookie, last in the reply, is stamped
								// with the second: the two replies may straddle one.
								f, g = maskServerCookie(t, f), maskServerCookie(t, g)
							}
							if !bytes.Equal(f, g) {
								t.Errorf("%s (fast=%v): replies differ:\nfast    %x\ngeneral %x", label, ok, f, g)
							}
						}
					}
				}
			}
		}
	}
	// The fast path must have taken the queries it is meant for.
	for _, want := range []string{
		"A/static.glb.example.com.", "AAAA/static.glb.example.com.", "A/multi.glb.example.com.",
		"AAAA/multi.glb.example.com.", "A/rr.glb.example.com.",
		"A/hash.glb.example.com.", "A/www.glb.example.com.", "AAAA/www.glb.example.com.",
		"A/nothere.glb.example.com.", "MX/rr.glb.example.com.", "AAAA/v4only.glb.example.com.",
		"AAAA/ns1.glb.example.com.", "TXT/mail.glb.example.com.",
	} {
		if fastHits[want] == 0 {
			t.Errorf("%s never took the fast path", want)
		}
	}
	// ... and left the others to the general path.
	for _, not := range []string{"ANY/static.glb.example.com.", "A/alias.glb.example.com.", "A/x.sub.glb.example.com.",
		"A/x.wild.glb.example.com.", "A/cdn.glb.example.com.", "MX/static.glb.example.com.", "SOA/glb.example.com.",
		"A/example.org."} {
		if fastHits[not] != 0 {
			t.Errorf("%s took the fast path %d times", not, fastHits[not])
		}
	}
	n := 0
	for _, v := range fastHits {
		n += v
	}
	t.Logf("%d queries, %d answered by the fast path", total, n)
}

// TestFastPathFallsBack covers messages the fast path must leave alone: the reply comes
// from the general path and is the one the general-only server sends.
func TestFastPathFallsBack(t *testing.T) {
	fast, gen := fastServer(t), generalOnly(t)
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	base := func() *dns.Msg { return newQuery("static.glb.example.com.", dns.TypeA) }
	cases := []struct {
		name string
		req  func(t *testing.T) []byte
	}{
		{"response", func(t *testing.T) []byte { m := base(); m.Response = true; return packed(t, m) }},
		{"notify", func(t *testing.T) []byte { m := base(); m.Opcode = dns.OpcodeNotify; return packed(t, m) }},
		{"edns-version-1", func(t *testing.T) []byte {
			m := base()
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return packed(t, m)
		}},
		{"bad-server-cookie", func(t *testing.T) []byte { // BADCOOKIE
			return withOption(t, dns.EDNS0COOKIE, testCookieBytes("bad", src))
		}},
		{"class-chaos", func(t *testing.T) []byte {
			m := base()
			m.Question[0].Qclass = dns.ClassCHAOS
			return packed(t, m)
		}},
		{"trailing-garbage", func(t *testing.T) []byte { return append(packed(t, base()), 0, 0) }},
		{"escaped-label", func(t *testing.T) []byte { return packed(t, newQuery(`st\.atic.glb.example.com.`, dns.TypeA)) }},
		{"bad-ecs", func(t *testing.T) []byte {
			return withOption(t, dns.EDNS0SUBNET, []byte{0, 1, 24, 0, 203, 0, 113, 1})
		}},
		{"truncated-txt", func(t *testing.T) []byte { return packed(t, newQuery("big.glb.example.com.", dns.TypeTXT)) }},
		{"more-labels-than-the-compressor-holds", func(t *testing.T) []byte {
			return packed(t, newQuery(strings.Repeat("a.", maxCompEntries)+"glb.example.com.", dns.TypeA))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req(t)
			if _, ok := fast.fastOnly(req, src, false, nil, 0); ok {
				t.Fatalf("fast path took %x", req)
			}
			f := fast.Handle(req, src, false, nil)
			g := gen.Handle(req, src, false, nil)
			if !bytes.Equal(f, g) {
				t.Fatalf("replies differ:\nfast    %x\ngeneral %x", f, g)
			}
		})
	}
}

// TestFastPathMetrics checks that fast-path replies are counted as general-path replies
// are: one request per reply and one answer per member.
func TestFastPathMetrics(t *testing.T) {
	s := fastServer(t)
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	req := packed(t, newQuery("rr.glb.example.com.", dns.TypeA))
	for range 3 {
		if _, ok := s.fastOnly(req, src, false, nil, 0); !ok {
			t.Fatal("fast path did not answer rr A")
		}
	}
	var sum uint64
	for _, m := range []string{"r1", "r2", "r3"} {
		v, ok := s.AnswerCounts().Get("rr.glb.example.com.", "rr", m)
		if !ok {
			t.Fatalf("no answer counter for rr/%s", m)
		}
		sum += v
	}
	if sum != 3 {
		t.Fatalf("answer counters sum to %d after 3 fast-path answers, want 3", sum)
	}
}

// deadPool is a health view with the members of pool "dead" down.
type deadPool struct{}

func (deadPool) Up(m *policy.Member) bool { return m.Pool != "dead" }

type deadSource struct{}

func (deadSource) For(*policy.Snapshot) policy.Health { return deadPool{} }

// TestFastPathIdenticalBytesShapes is the byte-identity test on testdata/fastpath.hcl:
// nested zones, SOA names compressing against each other and the question, multi-record
// RRsets, multi-member answers of both families, and SERVFAIL from when_all_down.
func TestFastPathIdenticalBytesShapes(t *testing.T) {
	load := func() *Server {
		snap, diags := policy.LoadPath("testdata/fastpath.hcl")
		if diags.HasErrors() {
			t.Fatalf("load: %s", diags.Error())
		}
		s := New(Config{Logger: testLogger()})
		s.SetHealthSource(deadSource{})
		s.SetSnapshot(snap)
		return s
	}
	fast, gen := load(), load()
	st := *gen.state.Load()
	st.fast = nil
	gen.state.Store(&st)

	names := []string{"fp.example.", "ns.fp.example.", "a.b.c.fp.example.", "b.c.fp.example.", "x.fp.example.",
		"ns.x.fp.example.", "sub.fp.example.", "www.sub.fp.example.", "nx.sub.fp.example.", "rr3.fp.example.",
		"h.sub.fp.example.", "down.fp.example.", "ns.fp.example.sub.fp.example.",
		"tm.example.", "nx.tm.example.", "ns1.tm.example.", "x.ns1.tm.example.", "hostmaster.tm.example.",
		"a.hostmaster.tm.example.", "xns1.tm.example.", "a.b.c.tm.example.", "ap.example.", "www.ap.example.",
		"y.ap.example.", "x.y.ap.example.", "z.x.y.ap.example.", "sh.example.", "b.sh.example.", "a.b.sh.example."}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSOA, dns.TypeCNAME}
	srcs := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:53"), netip.MustParseAddrPort("[2001:db8:77::7]:53")}
	hits, total := 0, 0
	for _, name := range names {
		for _, qt := range qtypes {
			for _, ecs := range []string{"", "-", "203.0.113.0/24", "2001:db8:99::/48"} {
				for _, qn := range []string{name, strings.ToUpper(name), mixCase(name)} {
					m := newQuery(qn, qt)
					if ecs != "" {
						m.SetEdns0(1232, true)
						if ecs != "-" {
							m = withECS(m, ecs)
						}
					}
					req := packed(t, m)
					src := srcs[total%2]
					total++
					f, ok := fast.fastOnly(req, src, false, nil, 0)
					if ok {
						hits++
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
	if hits < total/3 {
		t.Errorf("fast path answered %d of %d queries, want at least a third", hits, total)
	}
	// SERVFAIL from when_all_down comes from the fast path too.
	r, ok := fast.fastOnly(packed(t, newQuery("down.fp.example.", dns.TypeA)), srcs[0], false, nil, 0)
	var msg dns.Msg
	if !ok || msg.Unpack(r) != nil || msg.Rcode != dns.RcodeServerFailure {
		t.Errorf("down.fp.example A: fast=%v reply %v, want a fast SERVFAIL", ok, &msg)
	}
	t.Logf("%d queries, %d answered by the fast path", total, hits)
}
