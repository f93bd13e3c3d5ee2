package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// benchHandle measures the whole in-process path, wire in and wire out, for one query.
func benchHandle(b *testing.B, m *dns.Msg) {
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(loadSnapshot(b))
	benchHandleOn(b, s, m)
}

// benchHandleOn is benchHandle on server s.
func benchHandleOn(b *testing.B, s *Server, m *dns.Msg) {
	b.Helper()
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, ednsUDPSize)
	if r := s.Handle(req, src, false, out); r == nil {
		b.Fatal("no reply")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = s.Handle(req, src, false, out)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || len(r.Answer) == 0 {
		b.Fatalf("last reply: %v %v", err, r)
	}
}

func BenchmarkHandleStaticA(b *testing.B) {
	benchHandle(b, newQuery("static.glb.example.com.", dns.TypeA))
}

// BenchmarkHandleStaticANoMetrics is BenchmarkHandleStaticA without recording metrics.
func BenchmarkHandleStaticANoMetrics(b *testing.B) {
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(loadSnapshot(b))
	benchHandleOn(b, noMetrics(s), newQuery("static.glb.example.com.", dns.TypeA))
}

func BenchmarkHandleWeightedA(b *testing.B) {
	benchHandle(b, newQuery("www.glb.example.com.", dns.TypeA))
}

func BenchmarkHandleHashECS(b *testing.B) {
	benchHandle(b, withECS(newQuery("hash.glb.example.com.", dns.TypeA), "203.0.113.0/24"))
}
