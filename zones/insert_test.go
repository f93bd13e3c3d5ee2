package zones

import (
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func TestInsertRefusals(t *testing.T) {
	// Each case starts from a fresh example.org. zone, inserts setup (records in
	// zone-file syntax, or "svc NAME" for a service), then the refused step.
	for _, tc := range []struct {
		name    string
		setup   []string
		step    string
		wantErr error
	}{
		{name: "out of zone", step: "www.example.com. 60 IN A 192.0.2.1", wantErr: ErrOutOfZone},
		{name: "suffix is not a subdomain", step: "badexample.org. 60 IN A 192.0.2.1", wantErr: ErrOutOfZone},
		{name: "service out of zone", step: "svc www.example.com.", wantErr: ErrOutOfZone},
		{name: "CNAME beside A", setup: []string{"www.example.org. 60 IN A 192.0.2.1"},
			step: "www.example.org. 60 IN CNAME x.example.net.", wantErr: ErrCNAMEConflict},
		{name: "A beside CNAME", setup: []string{"www.example.org. 60 IN CNAME x.example.net."},
			step: "www.example.org. 60 IN A 192.0.2.1", wantErr: ErrCNAMEConflict},
		{name: "second CNAME", setup: []string{"www.example.org. 60 IN CNAME x.example.net."},
			step: "WWW.example.org. 60 IN CNAME y.example.net.", wantErr: ErrCNAMEConflict},
		{name: "NS beside CNAME", setup: []string{"www.example.org. 60 IN CNAME x.example.net."},
			step: "www.example.org. 60 IN NS ns.example.net.", wantErr: ErrCNAMEConflict},
		{name: "CNAME at apex", step: "example.org. 60 IN CNAME x.example.net.", wantErr: ErrCNAMEAtApex},
		{name: "service beside static", setup: []string{"www.example.org. 60 IN TXT \"x\""},
			step: "svc www.example.org.", wantErr: ErrServiceConflict},
		{name: "static beside service", setup: []string{"svc www.example.org."},
			step: "www.example.org. 60 IN TXT \"x\"", wantErr: ErrServiceConflict},
		{name: "CNAME beside service", setup: []string{"svc www.example.org."},
			step: "www.example.org. 60 IN CNAME x.example.net.", wantErr: ErrServiceConflict},
		{name: "service twice", setup: []string{"svc www.example.org."},
			step: "svc WWW.example.org.", wantErr: ErrServiceConflict},
		{name: "service at apex", step: "svc example.org.", wantErr: ErrServiceAtApex},
		{name: "service below cut", setup: []string{"sub.example.org. 60 IN NS ns.example.net."},
			step: "svc www.sub.example.org.", wantErr: ErrOccluded},
		{name: "service at cut", setup: []string{"sub.example.org. 60 IN NS ns.example.net."},
			step: "svc sub.example.org.", wantErr: ErrOccluded},
		{name: "cut above service", setup: []string{"svc www.sub.example.org."},
			step: "sub.example.org. 60 IN NS ns.example.net.", wantErr: ErrOccluded},
		{name: "NS at wildcard", step: "*.example.org. 60 IN NS ns.example.net.", wantErr: ErrWildcardNS},
		{name: "SOA below apex", step: "www.example.org. 60 IN SOA ns1 h 1 2 3 4 5", wantErr: ErrSOANotAtApex},
		{name: "unsupported type", step: "www.example.org. 60 IN DNAME example.net.", wantErr: ErrUnsupportedType},
		{name: "signature refused", step: "www.example.org. 60 IN RRSIG A 8 3 60 20300101000000 20200101000000 1 example.org. AAAA", wantErr: ErrUnsupportedType},
		{name: "ds at apex", step: "example.org. 60 IN DS 1 8 2 AABBCCDD", wantErr: ErrDSNotAtCut},
		{name: "unsupported class", step: "www.example.org. 60 CH TXT \"x\"", wantErr: ErrUnsupportedClass},
		{name: "bad service name", step: "svc a..example.org.", wantErr: ErrBadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := newZone(t, "example.org.")
			do := func(s string) error {
				if len(s) > 4 && s[:4] == "svc " {
					return z.InsertService(s[4:], 7)
				}
				return z.Insert(mustRR(t, s))
			}
			for _, s := range tc.setup {
				if err := do(s); err != nil {
					t.Fatalf("setup %q: %v", s, err)
				}
			}
			names := z.Names()
			nodes := len(z.nodes)
			err := do(tc.step)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			// A refused record leaves no trace, not even an empty non-terminal.
			if z.Names() != names || len(z.nodes) != nodes {
				t.Errorf("refused insert changed the zone: names %d->%d, nodes %d->%d", names, z.Names(), nodes, len(z.nodes))
			}
		})
	}
}

func TestNewRefusals(t *testing.T) {
	soa := mustRR(t, "example.org. 60 IN SOA ns1 h 1 2 3 4 5").(*dns.SOA)
	ns := []dns.RR{mustRR(t, "example.org. 60 IN NS ns1.example.org.")}
	for _, tc := range []struct {
		name    string
		origin  string
		soa     *dns.SOA
		ns      []dns.RR
		wantErr error
	}{
		{"no SOA", "example.org.", nil, ns, ErrNoSOA},
		{"no NS", "example.org.", soa, nil, ErrNoNS},
		{"NS set holds an A", "example.org.", soa, []dns.RR{mustRR(t, "example.org. 60 IN A 192.0.2.1")}, ErrNoNS},
		{"NS not at apex", "example.org.", soa, []dns.RR{mustRR(t, "www.example.org. 60 IN NS ns1.example.org.")}, ErrOutOfZone},
		{"SOA not at apex", "www.example.org.", soa, ns, ErrOutOfZone},
		{"empty origin", "", soa, ns, ErrBadName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := New(tc.origin, tc.soa, tc.ns)
			if !errors.Is(err, tc.wantErr) || z != nil {
				t.Fatalf("New = %v, %v; want nil, %v", z, err, tc.wantErr)
			}
		})
	}
}

// RFC 2181 section 5: identical records are one; section 5.2: one TTL per RRset.
func TestInsertRRsetRules(t *testing.T) {
	z := newZone(t, "example.org.")
	for _, s := range []string{
		"www.example.org. 300 IN A 192.0.2.1",
		"WWW.Example.Org. 300 IN A 192.0.2.1", // duplicate, other case: dropped
		"www.example.org. 60 IN A 192.0.2.2",  // lower TTL: the RRset follows
		"www.example.org. 900 IN A 192.0.2.3", // higher TTL: lowered
		"www.example.org. 900 IN A 192.0.2.3", // duplicate again
		"www.example.org. 900 IN TXT \"other type keeps its TTL\"",
		"alias.example.org. 300 IN CNAME www.example.org.",
		"alias.example.org. 100 IN CNAME WWW.example.org.", // same CNAME: dropped, TTL lowered
	} {
		if err := z.Insert(mustRR(t, s)); err != nil {
			t.Fatalf("insert %q: %v", s, err)
		}
	}
	checkSection(t, "A", z.Lookup("www.example.org.", dns.TypeA).Answer, []string{
		"www.example.org. 60 IN A 192.0.2.1",
		"www.example.org. 60 IN A 192.0.2.2",
		"www.example.org. 60 IN A 192.0.2.3",
	})
	checkSection(t, "TXT", z.Lookup("www.example.org.", dns.TypeTXT).Answer, []string{
		`www.example.org. 900 IN TXT "other type keeps its TTL"`,
	})
	checkSection(t, "CNAME", z.Lookup("alias.example.org.", dns.TypeCNAME).Answer, []string{
		"alias.example.org. 100 IN CNAME www.example.org.",
	})
	if got := z.Names(); got != 3 {
		t.Errorf("names %d, want 3 (apex, www, alias)", got)
	}
}

// Insert copies: changing the caller's RR afterwards must not change the zone.
func TestInsertCopies(t *testing.T) {
	z := newZone(t, "example.org.")
	rr := mustRR(t, "www.example.org. 60 IN A 192.0.2.1")
	if err := z.Insert(rr); err != nil {
		t.Fatal(err)
	}
	rr.(*dns.A).Hdr.Ttl = 1
	checkSection(t, "A", z.Lookup("www.example.org.", dns.TypeA).Answer, []string{"www.example.org. 60 IN A 192.0.2.1"})
}

func TestSet(t *testing.T) {
	parent := newZone(t, "example.org.")
	child := newZone(t, "child.example.org.")
	other := newZone(t, "example.com.")
	set, err := NewSet(parent, other, child)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		qname string
		want  *Zone
	}{
		{"apex of parent", "example.org.", parent},
		{"name in parent", "www.example.org.", parent},
		{"apex of nested zone", "child.example.org.", child},
		{"name in nested zone", "a.b.child.example.org.", child},
		{"label suffix is not a zone", "xchild.example.org.", parent},
		{"mixed case", "WWW.Child.Example.ORG.", child},
		{"not fully qualified", "www.example.com", other},
		{"no zone", "www.example.net.", nil},
		{"no zone for parent label", "org.", nil},
		{"root", ".", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := set.Find(tc.qname); got != tc.want {
				t.Fatalf("Find(%q) = %v, want %v", tc.qname, origin(got), origin(tc.want))
			}
		})
	}
	got := set.Zones()
	if len(got) != 3 || got[0] != other || got[1] != parent || got[2] != child {
		t.Errorf("Zones() = %v %v %v, want canonical order", origin(got[0]), origin(got[1]), origin(got[2]))
	}
	if a := testing.AllocsPerRun(100, func() { set.Find("a.b.child.example.org.") }); a != 0 {
		t.Errorf("Find allocates %v times", a)
	}

	t.Run("duplicate origin", func(t *testing.T) {
		if _, err := NewSet(parent, newZone(t, "Example.Org.")); !errors.Is(err, ErrDuplicateZone) {
			t.Fatalf("err = %v, want %v", err, ErrDuplicateZone)
		}
	})
	t.Run("root zone catches all", func(t *testing.T) {
		root := newZone(t, ".")
		s, err := NewSet(root, parent)
		if err != nil {
			t.Fatal(err)
		}
		if s.Find("www.example.net.") != root || s.Find("www.example.org.") != parent {
			t.Fatal("root zone not used as the last resort")
		}
	})
	t.Run("empty set", func(t *testing.T) {
		var s *Set
		if s.Find("example.org.") != nil || s.Zones() != nil {
			t.Fatal("nil set found a zone")
		}
	})
}

// TestFindScanMatchesLabels checks that the suffix scan Find uses for a few zones picks
// the zone the label walk picks, for every name built from labels that make near misses
// (a label that ends like an origin, nested origins, the root zone).
func TestFindScanMatchesLabels(t *testing.T) {
	var zs []*Zone
	for _, o := range []string{".", "test.", "glb.test.", "b.glb.test.", "xglb.test.", "example.org."} {
		zs = append(zs, newZone(t, o))
	}
	labels := []string{"", "a.", "b.", "glb.", "xglb.", "test.", "org.", "example.", "lb."}
	for _, set := range []int{len(zs), len(zs) - 1} { // with and without the root zone
		s, err := NewSet(zs[len(zs)-set:]...)
		if err != nil {
			t.Fatal(err)
		}
		for _, l1 := range labels {
			for _, l2 := range labels {
				for _, l3 := range labels {
					q := l1 + l2 + l3
					if q == "" {
						q = "."
					}
					if got, want := s.findScan(q), s.findLabels(q); got != want {
						t.Errorf("%d zones, %q: scan found %s, label walk %s", set, q, origin(got), origin(want))
					}
				}
			}
		}
	}
}

// TestFindCanonical checks the zone FindCanonical finds for canonical names, for a set
// it scans and for one it searches label by label.
func TestFindCanonical(t *testing.T) {
	var few, many []*Zone
	for _, o := range []string{"test.", "glb.test.", "b.glb.test.", "example.org."} {
		few = append(few, newZone(t, o))
	}
	for i := range scanZones + 2 {
		many = append(many, newZone(t, fmt.Sprintf("z%d.glb.test.", i)))
	}
	many = append(many, newZone(t, "glb.test."))
	for _, tc := range []struct {
		zs      []*Zone
		q, want string // want "<nil>": no zone
	}{
		{few, "a.b.glb.test.", "b.glb.test."}, {few, "b.glb.test.", "b.glb.test."}, {few, "xb.glb.test.", "glb.test."},
		{few, "xglb.test.", "test."}, {few, "example.org.", "example.org."}, {few, "org.", "<nil>"}, {few, ".", "<nil>"},
		{many, "z3.glb.test.", "z3.glb.test."}, {many, "x.z9.glb.test.", "z9.glb.test."}, {many, "z10.glb.test.", "glb.test."},
		{many, "xglb.test.", "<nil>"}, {many, "glb.test.", "glb.test."},
	} {
		s, err := NewSet(tc.zs...)
		if err != nil {
			t.Fatal(err)
		}
		if got := origin(s.FindCanonical(tc.q)); got != tc.want {
			t.Errorf("%d zones, %q: FindCanonical found %s, want %s", len(tc.zs), tc.q, got, tc.want)
		}
	}
}

func origin(z *Zone) string {
	if z == nil {
		return "<nil>"
	}
	return z.Origin()
}
