package dnsserver

import (
	"math"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// loadHealth is a health view with load readings, as health.View is: slices indexed by
// Member.Index (NaN: no fresh reading).
type loadHealth struct{ load []float64 }

func (h *loadHealth) Up(*policy.Member) bool { return true }

func (h *loadHealth) Load(m *policy.Member) (float64, bool) {
	if m.Index < len(h.load) && !math.IsNaN(h.load[m.Index]) {
		return h.load[m.Index], true
	}
	return 0, false
}

// loadSource hands out one loadHealth for every snapshot.
type loadSource struct{ h *loadHealth }

func (s loadSource) For(*policy.Snapshot) policy.Health { return s.h }

func leastConnServer(tb testing.TB, loads ...float64) *Server {
	tb.Helper()
	snap, diags := policy.LoadPath("testdata/leastconn/policy.hcl")
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	s := New(Config{Logger: testLogger(), CookieSecrets: testCookieSecrets})
	s.SetHealthSource(loadSource{&loadHealth{load: loads}})
	s.SetSnapshot(snap)
	return s
}

// TestLeastConnAnswers: the DNS answers follow the loads in the health view: w0 holds
// three times the mean connections per unit of weight, and gets no answer.
func TestLeastConnAnswers(t *testing.T) {
	s := leastConnServer(t, 30, 2, 4, 2)
	counts := map[string]int{}
	req, _ := newQuery("www.lc.example.", dns.TypeA).Pack()
	out := make([]byte, 0, ednsUDPSize)
	for range 2000 {
		out = s.handle(req, netip.MustParseAddrPort("198.51.100.7:5353"), false, out, 0)
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil || len(r.Answer) != 1 {
			t.Fatalf("reply %v %v", err, r)
		}
		counts[r.Answer[0].(*dns.A).A.String()]++
	}
	if counts["192.0.2.10"] != 0 || counts["192.0.2.11"] < 400 || counts["192.0.2.12"] < 850 || counts["192.0.2.13"] < 400 {
		t.Errorf("answers %v: want none for w0 (loaded), the others by weight", counts)
	}
}

func BenchmarkFastPathLeastConnections(b *testing.B) {
	benchFastOn(b, leastConnServer(b, 10, 3, 8, 5), newQuery("www.lc.example.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}

func BenchmarkFastPathLeastConnectionsTwo(b *testing.B) {
	benchFastOn(b, leastConnServer(b, 10, 3, 8, 5), newQuery("two.lc.example.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
}
