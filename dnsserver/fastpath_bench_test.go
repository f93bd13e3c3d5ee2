package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// benchFast measures Handle, wire in and wire out, on a query the fast path answers (it
// fails when the fast path declines the query).
func benchFast(b *testing.B, m *dns.Msg, wantRcode int) {
	s := fastServer(b)
	req, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, ednsUDPSize)
	if _, ok := s.fastPath(req, src, false, out); !ok {
		b.Fatal("the fast path declined the query")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = s.Handle(req, src, false, out)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil || r.Rcode != wantRcode {
		b.Fatalf("last reply: %v %v", err, r)
	}
}

func BenchmarkFastPathStatic(b *testing.B) {
	benchFast(b, newQuery("static.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
}

func BenchmarkFastPathWeighted(b *testing.B) {
	benchFast(b, newQuery("www.glb.example.com.", dns.TypeA), dns.RcodeSuccess)
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

// BenchmarkGeneralPathStatic is BenchmarkFastPathStatic with the fast path off: the
// miekg Unpack/Pack path, for comparison in the same run.
func BenchmarkGeneralPathStatic(b *testing.B) {
	s := generalOnly(b)
	req, err := newQuery("static.glb.example.com.", dns.TypeA).Pack()
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
