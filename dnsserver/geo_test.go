package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/geoip"
)

// geoServer serves testdata/geo.hcl with the GeoIP2 City test database opened.
func geoServer(tb testing.TB) *Server {
	tb.Helper()
	snap, diags := policy.LoadPath("testdata/geo.hcl")
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	city, _ := snap.GeoIPPaths()
	w, err := geoip.NewWatcher(city, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(snap)
	s.SetGeo(w.Current())
	return s
}

// TestGeoAnswer: a GB client (by ECS) gets eu with the ECS scope of its GeoIP network;
// without a GeoIP database the default order (us) answers.
func TestGeoAnswer(t *testing.T) {
	s := geoServer(t)
	src := netip.MustParseAddrPort("127.0.0.1:5353")
	ask := func() *dns.Msg {
		req, err := withECS(newQuery("geo.glb.test.", dns.TypeA), "81.2.69.142/32").Pack()
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(s.Handle(req, src, false, nil)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := ask()
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" && r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Fatalf("GB client: %v", r.Answer)
	}
	if sc := ecsScopeOf(r); sc != 31 { // 81.2.69.142/31 in the test database
		t.Fatalf("scope %d, want 31", sc)
	}
	s.SetGeo(nil)
	r = ask()
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "198.51.100.1" {
		t.Fatalf("without geoip: %v", r.Answer)
	}
}

func ecsScopeOf(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if s, ok := e.(*dns.EDNS0_SUBNET); ok {
				return int(s.SourceScope)
			}
		}
	}
	return -1
}

// BenchmarkHandleGeoECS is a whole geo answer, wire in and wire out: parse, ECS, GeoIP
// lookup (City database only), rule match, failover walk, member selection, reply with
// the scope. Geo services take the fast path; BenchmarkGeneralPathGeoECS is the general
// path for comparison.
func BenchmarkHandleGeoECS(b *testing.B) {
	s := geoServer(b)
	req, err := withECS(newQuery("geo.glb.test.", dns.TypeA), "81.2.69.142/32").Pack()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, ednsUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		out = s.Handle(req, src, false, out)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || len(r.Answer) != 1 {
		b.Fatalf("last reply: %v %v", err, r)
	}
}
