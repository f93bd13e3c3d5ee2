package zones

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// TestCutAfterData checks a delegation made above names that already exist: they become
// occluded (answered by referral), and names added below it afterwards too.
func TestCutAfterData(t *testing.T) {
	z := newZone(t, "example.org.")
	for _, s := range []string{
		"a.b.sub.example.org. 60 IN A 192.0.2.1",
		"sub.example.org. 60 IN NS ns.sub.example.org.",
		"ns.sub.example.org. 60 IN A 192.0.2.53",
		"later.sub.example.org. 60 IN A 192.0.2.2",
		"other.example.org. 60 IN A 192.0.2.3",
	} {
		if err := z.Insert(mustRR(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		qname string
		kind  Kind
	}{
		{"a.b.sub.example.org.", Referral},
		{"b.sub.example.org.", Referral},
		{"sub.example.org.", Referral},
		{"later.sub.example.org.", Referral},
		{"other.example.org.", Answer},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			r := z.Lookup(tc.qname, dns.TypeA)
			if r.Kind != tc.kind {
				t.Fatalf("kind %s, want %s", kindNames[r.Kind], kindNames[tc.kind])
			}
			if tc.kind == Referral && (len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "192.0.2.53") {
				t.Errorf("glue %v, want ns.sub.example.org. A 192.0.2.53", r.Extra)
			}
		})
	}
	if err := z.InsertService("x.a.b.sub.example.org.", 1); err == nil {
		t.Error("service below the cut accepted")
	}
}

// zoneFile returns a master file of names A records, and of delegations delegated
// names each with an NS record and its glue (NS first, as zone files usually are).
func zoneFile(names, delegations int) []byte {
	var b bytes.Buffer
	b.WriteString("$ORIGIN example.org.\n$TTL 300\n")
	for i := range names {
		fmt.Fprintf(&b, "h%d IN A 198.18.%d.%d\n", i, i>>8&255, i&255)
	}
	for i := range delegations {
		fmt.Fprintf(&b, "d%d IN NS ns.d%d\nns.d%d IN A 198.19.%d.%d\n", i, i, i, i>>8&255, i&255)
	}
	return b.Bytes()
}

// BenchmarkImportFile measures ImportFile for 100,000 names; it must grow linearly (the
// policy benchmark BenchmarkLoadHuge imports a million).
func BenchmarkImportFile(b *testing.B) {
	for _, bc := range []struct {
		name               string
		names, delegations int
	}{
		{"names=100k", 100_000, 0},
		{"delegations=20k", 0, 20_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := zoneFile(bc.names, bc.delegations)
			b.ReportAllocs()
			for b.Loop() {
				z := newZone(b, "example.org.")
				if err := z.ImportFile(bytes.NewReader(data), "big.zone", 300); err != nil {
					b.Fatal(err)
				}
				if got, want := z.Names(), 1+bc.names+2*bc.delegations; got != want {
					b.Fatalf("%d names, want %d", got, want)
				}
			}
		})
	}
}
