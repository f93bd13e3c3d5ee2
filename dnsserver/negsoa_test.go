package dnsserver

import (
	"bytes"
	"testing"

	"github.com/glbdns/glbdns/policy"
)

// TestNegSOATemplate checks which zones of testdata/fastpath.hcl get a negative SOA
// template, and that the template writes, for every question it accepts, the bytes the
// compressor writes after the question; the questions it declines are those for which
// the compressor finds a longer suffix than the origin.
func TestNegSOATemplate(t *testing.T) {
	snap, diags := policy.LoadPath("testdata/fastpath.hcl")
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	wantOK := map[string]bool{
		"fp.example.":     true, // RNAME = MNAME: a pointer to MNAME
		"sub.fp.example.": true, // MNAME in the parent zone, RNAME below the origin
		"tm.example.":     true,
		"ap.example.":     true, // MNAME is the origin, RNAME two labels above it
		"sh.example.":     true, // MNAME and RNAME share b.sh.example.
	}
	questions := map[string]map[string]bool{ // question: the template accepts it
		"tm.example.": {"tm.example.": true, "nx.tm.example.": true, "a.b.c.tm.example.": true, "xns1.tm.example.": false,
			"ns1.tm.example.": false, "x.ns1.tm.example.": false, "hostmaster.tm.example.": false, "a.hostmaster.tm.example.": false},
		"ap.example.": {"ap.example.": true, "www.ap.example.": true, "x.ap.example.": true, "y.ap.example.": false,
			"x.y.ap.example.": false, "z.x.y.ap.example.": false},
		"fp.example.": {"fp.example.": true, "x.fp.example.": true, "ns.fp.example.": false, "a.ns.fp.example.": false},
		"sub.fp.example.": {"sub.fp.example.": true, "nx.sub.fp.example.": true, "hostmaster.sub.fp.example.": false,
			"fp.example.sub.fp.example.": true},
		"sh.example.": {"sh.example.": true, "b.sh.example.": false, "x.c.b.sh.example.": false, "c.sh.example.": true},
	}
	for _, z := range snap.Zones.Zones() {
		want, known := wantOK[z.Origin()]
		if !known {
			t.Fatalf("zone %s not in the test's table", z.Origin())
		}
		tm := compileNegSOA(z)
		if ok := tm.wire != nil; ok != want {
			t.Errorf("%s: template ok = %v, want %v", z.Origin(), ok, want)
		}
		for q, accept := range questions[z.Origin()] {
			msg := make([]byte, headerLen, 512) // a header, then the question's wire form
			msg = appendName(msg, q)
			msg = append(msg, 0, 1, 0, 1)
			got, ok := tm.appendTo(bytes.Clone(msg), q)
			if ok != accept {
				t.Errorf("%s: template accepted = %v, want %v", q, ok, accept)
			}
			if !ok {
				continue
			}
			var c compressor
			if !c.addQuestion(q) {
				t.Fatal("addQuestion failed")
			}
			want, okc := appendNegativeSOA(bytes.Clone(msg), &c, z)
			if !okc || !bytes.Equal(got, want) {
				t.Errorf("%s: template wrote\n%x\ncompressor\n%x", q, got, want)
			}
		}
	}
}
