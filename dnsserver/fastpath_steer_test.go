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
	"github.com/glbdns/glbdns/policy/geoip"
)

// memberDown is a health view: the members for which it returns true are down.
type memberDown func(*policy.Member) bool

func (f memberDown) Up(m *policy.Member) bool { return f == nil || !f(m) }

// switchHealth is a HealthSource whose view a test changes (then calls HealthChanged).
type switchHealth struct{ down memberDown }

func (h *switchHealth) For(*policy.Snapshot) policy.Health { return h.down }

// steerServer serves testdata/steer.hcl (failover, geo and nearest services) with the
// GeoIP2 City and GeoLite2 ASN test databases open and the health view of h.
func steerServer(tb testing.TB, h *switchHealth) *Server {
	tb.Helper()
	snap, diags := policy.LoadPath("testdata/steer.hcl")
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	city, asn := snap.GeoIPPaths()
	w, err := geoip.NewWatcher(city, asn, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s := New(Config{Logger: testLogger()})
	if h != nil {
		s.SetHealthSource(h)
	}
	s.SetSnapshot(snap)
	s.SetGeo(w.Current())
	return s
}

// stripFast takes the fast-path data out of s's current state, so that Handle answers
// on the general path. A health change compiles it again: call it after every one.
func stripFast(s *Server) {
	st := *s.state.Load()
	st.fast = nil
	s.state.Store(&st)
}

// steerClient is who asks: an ECS subnet (ecs), or no ECS (with or without EDNS), from
// src.
type steerClient struct {
	name string
	ecs  string // "" for none
	edns bool   // an OPT without ECS (ignored when ecs is set)
	src  string
}

var steerClients = []steerClient{
	{name: "gb", ecs: "81.2.69.142/32", src: "198.51.100.7:53"},
	{name: "gb-24", ecs: "81.2.69.0/24", src: "[2001:db8::7]:53"},       // no City data; scope widened by the /27 rule
	{name: "gb-net", ecs: "81.2.69.160/27", src: "198.51.100.7:53"},     // geo network rule
	{name: "se-asn", ecs: "89.160.20.0/24", src: "198.51.100.7:53"},     // geo ASN rule (AS29518)
	{name: "us", ecs: "216.160.83.56/29", src: "198.51.100.7:53"},       // continent NA (near Seattle)
	{name: "cn", ecs: "175.16.199.0/24", src: "[2001:db8::7]:53"},       // continent AS
	{name: "ph", ecs: "202.196.224.0/24", src: "198.51.100.7:53"},       // continent AS
	{name: "bt", ecs: "67.43.156.0/24", src: "198.51.100.7:53"},         // continent AS
	{name: "noloc", ecs: "214.1.1.0/24", src: "198.51.100.7:53"},        // a record without location
	{name: "nodata", ecs: "10.0.0.0/8", src: "198.51.100.7:53"},         // in no database
	{name: "net10", ecs: "10.1.2.0/24", src: "198.51.100.7:53"},         // geo network rule, no GeoIP data
	{name: "jp6", ecs: "2001:218::/32", src: "198.51.100.7:53"},         // IPv6 ECS, continent AS
	{name: "jp6-net", ecs: "2001:218:1:2::/64", src: "198.51.100.7:53"}, // IPv6 network rule
	{name: "de6", ecs: "2a02:d180:1::/48", src: "[2001:db8::7]:53"},     // IPv6 ECS, DE
	{name: "optout", ecs: "0.0.0.0/0", src: "81.2.69.142:53"},           // /0: the source address is used
	{name: "edns-gb", edns: true, src: "81.2.69.142:53"},
	{name: "edns-jp6", edns: true, src: "[2001:218::1]:53"},
	{name: "plain-us", src: "216.160.83.56:53"},
	{name: "plain-local", src: "127.0.0.1:53"},
}

// steerScenarios are the health views (and GeoIP availability) the corpus runs under.
var steerScenarios = []struct {
	name  string
	down  memberDown
	noGeo bool
}{
	{name: "up"},
	{name: "up-nogeo", noGeo: true},
	// eu and two of quorum's IPv4 members down: failover and geo spill to the next pool.
	{name: "eu-down", down: func(m *policy.Member) bool {
		return m.Pool == "eu" || m.Name == "q1" || m.Name == "q2" || m.Name == "x1"
	}},
	// Only IPv6 members of eu and us down: AAAA spills where A does not.
	{name: "v6-down", down: func(m *policy.Member) bool { return m.Pool == "eu" && m.Addr.Is6() || m.Name == "nyc-6" }},
	// Everything but the fallback pool: when_all_down decides, fallback finds it up.
	{name: "steering-down", down: func(m *policy.Member) bool { return m.Pool != "backup" }},
	// Everything: fallback answers with all of its members.
	{name: "all-down", down: func(*policy.Member) bool { return true }},
}

// TestFastPathIdenticalBytesSteering is the byte-identity test for failover, geo and
// nearest services (testdata/steer.hcl, with the real GeoIP2 test databases): ECS from
// several countries and networks, IPv6 ECS, /0 ECS, no ECS, no EDNS; A, AAAA (and the
// NODATA of a family a service lacks), other types; health views that make the pool
// order spill and that reach every when_all_down mode; GeoIP off. Every query must take
// the fast path, give the general path's bytes, and leave both servers' metrics equal.
// A few answers are also checked for meaning, so that the scenarios do reach the
// branches they are meant for.
func TestFastPathIdenticalBytesSteering(t *testing.T) {
	hf, hg := &switchHealth{}, &switchHealth{}
	fast, gen := steerServer(t, hf), steerServer(t, hg)
	stripFast(gen)
	regF, regG := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	regF.MustRegister(fast.Collector())
	regG.MustRegister(gen.Collector())
	geoF, geoG := fast.state.Load().geo, gen.state.Load().geo

	names := []string{
		"fo.steer.test.", "fo-quorum.steer.test.", "fo-hash.steer.test.", "fo-sf.steer.test.", "fo-fb.steer.test.",
		"geo.steer.test.", "geo-sf.steer.test.", "geo-fb.steer.test.", "geo-hash.steer.test.", "geo4.steer.test.",
		"near.steer.test.", "near-bias.steer.test.", "near-sf.steer.test.", "near-fb.steer.test.", "near-hash.steer.test.",
		"ns.steer.test.", "nx.steer.test.",
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeCNAME}
	// replies holds the fast reply to each lower-case query, for the checks below.
	replies := map[string]*dns.Msg{}
	outF := make([]byte, 0, ednsUDPSize)
	outG := make([]byte, 0, ednsUDPSize)
	total, declined := 0, 0
	for _, sc := range steerScenarios {
		hf.down, hg.down = sc.down, sc.down
		fast.HealthChanged()
		gen.HealthChanged()
		if sc.noGeo {
			fast.SetGeo(nil)
			gen.SetGeo(nil)
		} else {
			fast.SetGeo(geoF)
			gen.SetGeo(geoG)
		}
		stripFast(gen)
		for _, name := range names {
			for _, qt := range qtypes {
				for _, cl := range steerClients {
					for _, mixed := range []bool{false, true} {
						qn := name
						if mixed {
							qn = mixCase(name)
						}
						m := newQuery(qn, qt)
						switch {
						case cl.ecs != "":
							m = withECS(m, cl.ecs)
						case cl.edns:
							m.SetEdns0(1232, true)
						}
						req := packed(t, m)
						src := netip.MustParseAddrPort(cl.src)
						tcp := total/2%2 == 1
						total++
						label := fmt.Sprintf("%s/%s/%s/%s/mixed=%v/tcp=%v", sc.name, qn, dns.TypeToString[qt], cl.name, mixed, tcp)
						f, ok := fast.fastOnly(req, src, tcp, outF, 0)
						if !ok {
							declined++
							t.Errorf("%s: the fast path declined", label)
							f = fast.Handle(req, src, tcp, outF)
						}
						g := gen.Handle(req, src, tcp, outG)
						if f == nil || g == nil {
							t.Fatalf("%s: no reply (fast %v, general %v)", label, f != nil, g != nil)
						}
						if !bytes.Equal(f, g) {
							t.Errorf("%s: replies differ:\nfast    %x\ngeneral %x", label, f, g)
						}
						if !mixed {
							r := new(dns.Msg)
							if err := r.Unpack(f); err != nil {
								t.Fatalf("%s: %v", label, err)
							}
							replies[sc.name+"/"+name+"/"+dns.TypeToString[qt]+"/"+cl.name] = r
						}
					}
				}
			}
		}
	}
	t.Logf("%d queries, %d declined by the fast path", total, declined)

	// Both servers counted the same: requests by zone/qtype/rcode/proto, sizes, ECS,
	// answers by service/pool/member, usable members.
	mf, mg := gather(t, regF), gather(t, regG)
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
	if k := `glbdns_policy_answers_total{member="b1",pool="backup",service="fo-fb.steer.test."}`; mf[k] == 0 {
		t.Errorf("%s = 0: the fallback pool never answered", k)
	}

	eu4, eu6 := []string{"192.0.2.1", "192.0.2.2"}, []string{"2001:db8:e::1"}
	us4, us6 := []string{"198.51.100.1", "198.51.100.2"}, []string{"2001:db8:a::1", "2001:db8:a::2"}
	asia4 := []string{"203.0.113.1", "203.0.113.2"}
	hashed4 := []string{"192.0.2.31", "192.0.2.32", "192.0.2.33"}
	backup4 := []string{"192.0.2.99"}
	const anyScope = -1
	for _, c := range []struct {
		key   string // scenario/name/qtype/client
		rcode int
		addrs []string // every answer is one of these; nil: no answer
		scope int      // ECS scope, anyScope: not checked
	}{
		{"up/geo.steer.test./A/gb", dns.RcodeSuccess, eu4, anyScope},
		{"up/geo.steer.test./A/gb-net", dns.RcodeSuccess, us4, 27},
		{"up/geo.steer.test./A/se-asn", dns.RcodeSuccess, asia4, anyScope},
		{"up/geo.steer.test./A/us", dns.RcodeSuccess, us4, anyScope},
		{"up/geo.steer.test./A/cn", dns.RcodeSuccess, asia4, anyScope},
		{"up/geo.steer.test./A/net10", dns.RcodeSuccess, us4, 16},
		{"up/geo.steer.test./AAAA/jp6-net", dns.RcodeSuccess, us6, 48},
		{"up/geo.steer.test./AAAA/de6", dns.RcodeSuccess, eu6, anyScope},
		{"up/geo.steer.test./A/optout", dns.RcodeSuccess, eu4, 0},
		{"up/geo.steer.test./A/edns-gb", dns.RcodeSuccess, eu4, anyScope},
		{"up-nogeo/geo.steer.test./A/gb", dns.RcodeSuccess, us4, anyScope},
		{"up/geo-hash.steer.test./A/gb", dns.RcodeSuccess, hashed4, anyScope},
		{"up/fo-hash.steer.test./A/gb-24", dns.RcodeSuccess, hashed4, 20},
		{"up/geo4.steer.test./AAAA/cn", dns.RcodeSuccess, nil, 0},
		{"up/near.steer.test./A/gb", dns.RcodeSuccess, eu4, anyScope},
		{"up/near.steer.test./A/us", dns.RcodeSuccess, us4, anyScope},
		{"up/near.steer.test./A/cn", dns.RcodeSuccess, asia4, anyScope},
		{"up/near.steer.test./A/noloc", dns.RcodeSuccess, asia4, anyScope},
		{"up/near-bias.steer.test./A/gb", dns.RcodeSuccess, []string{"198.51.100.9"}, anyScope},
		{"up/fo.steer.test./A/gb", dns.RcodeSuccess, eu4, 0},
		{"eu-down/fo.steer.test./A/gb", dns.RcodeSuccess, us4, 0},
		{"eu-down/fo-quorum.steer.test./A/gb", dns.RcodeSuccess, us4, 0},
		{"eu-down/geo.steer.test./A/gb", dns.RcodeSuccess, us4, anyScope},
		{"eu-down/near.steer.test./A/gb", dns.RcodeSuccess, us4, anyScope},
		{"v6-down/fo.steer.test./A/gb", dns.RcodeSuccess, eu4, 0},
		{"v6-down/fo.steer.test./AAAA/gb", dns.RcodeSuccess, []string{"2001:db8:a::2"}, 0},
		{"steering-down/fo.steer.test./A/gb", dns.RcodeSuccess, eu4, 0},
		{"steering-down/fo-sf.steer.test./A/gb", dns.RcodeServerFailure, nil, 0},
		{"steering-down/geo-sf.steer.test./A/gb", dns.RcodeServerFailure, nil, 0},
		{"steering-down/near-sf.steer.test./AAAA/jp6", dns.RcodeServerFailure, nil, 0},
		{"steering-down/fo-fb.steer.test./A/gb", dns.RcodeSuccess, backup4, 0},
		{"steering-down/geo-fb.steer.test./A/gb", dns.RcodeSuccess, backup4, anyScope},
		{"steering-down/near-fb.steer.test./A/us", dns.RcodeSuccess, backup4, anyScope},
		{"all-down/fo-fb.steer.test./A/gb", dns.RcodeSuccess, backup4, 0},
		{"all-down/near.steer.test./A/gb", dns.RcodeSuccess, eu4, anyScope},
	} {
		r := replies[c.key]
		if r == nil {
			t.Errorf("%s: no such query in the corpus", c.key)
			continue
		}
		var got []string
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				got = append(got, v.A.String())
			case *dns.AAAA:
				got = append(got, v.AAAA.String())
			}
		}
		bad := r.Rcode != c.rcode || (c.addrs == nil) != (len(got) == 0)
		for _, a := range got {
			bad = bad || !slices.Contains(c.addrs, a)
		}
		if sc := ecsScopeOf(r); c.scope != anyScope && sc != c.scope && !(sc == -1 && c.scope == 0) {
			bad = true
		}
		if bad {
			t.Errorf("%s: rcode %s answer %v scope %d, want rcode %s answer in %v scope %d",
				c.key, dns.RcodeToString[r.Rcode], got, ecsScopeOf(r), dns.RcodeToString[c.rcode], c.addrs, c.scope)
		}
	}
	if t.Failed() && testing.Verbose() {
		keys := make([]string, 0, len(replies))
		for k := range replies {
			if strings.HasPrefix(k, "up/") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			t.Logf("%s: %v scope %d", k, replies[k].Answer, ecsScopeOf(replies[k]))
		}
	}
}

// TestFastPathSteeringNoAlloc: a geo answer with ECS (GeoIP City and ASN lookups, rule
// match, pool walk, member pick, scope), a nearest answer and a failover spill allocate
// nothing on the fast path.
func TestFastPathSteeringNoAlloc(t *testing.T) {
	h := &switchHealth{down: func(m *policy.Member) bool { return m.Pool == "eu" }}
	s := steerServer(t, h)
	out := make([]byte, 0, ednsUDPSize)
	for _, c := range []struct{ name, ecs string }{
		{"geo.steer.test.", "81.2.69.0/24"}, {"near.steer.test.", "216.160.83.56/29"},
		{"fo.steer.test.", ""}, {"geo-hash.steer.test.", "2a02:d180:1::/48"},
	} {
		m := newQuery(c.name, dns.TypeA)
		if c.ecs != "" {
			m = withECS(m, c.ecs)
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
