package zones

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// extendQueries are the names and types TestExtend compares between zones: static data,
// additional data keyed by node (the apex MX, an SRV), wildcards, a cut, and the names
// the extension adds.
var extendQueries = []struct {
	name string
	typ  uint16
}{
	{"example.org.", dns.TypeMX}, {"example.org.", dns.TypeNS}, {"www.example.org.", dns.TypeA},
	{"_sip._tcp.example.org.", dns.TypeSRV}, {"any.w.example.org.", dns.TypeA}, {"x.w.example.org.", dns.TypeA},
	{"www.sub.example.org.", dns.TypeA}, {"lb.example.org.", dns.TypeA}, {"q.pool.example.org.", dns.TypeA},
	{"new.example.org.", dns.TypeA}, {"a.b.new2.example.org.", dns.TypeA}, {"b.new2.example.org.", dns.TypeA},
	{"x.new3.example.org.", dns.TypeAAAA}, {"y._sip._tcp.example.org.", dns.TypeA}, {"b.c.example.org.", dns.TypeA},
	{"q.b.c.example.org.", dns.TypeA},
}

func lookupAll(z *Zone) []Result {
	var out []Result
	for _, q := range extendQueries {
		out = append(out, z.Lookup(q.name, q.typ))
	}
	return out
}

// TestExtend: an extended zone answers what its base answers plus the services it took,
// whose insertion copied the nodes they changed (the apex, which owns MX additional data;
// an SRV owner; an empty non-terminal); the base answers exactly as before, as a zone
// that was never extended does; records are refused.
func TestExtend(t *testing.T) {
	base, untouched := testZone(t), testZone(t)
	before := lookupAll(base)
	e := base.Extend(5)
	for i, name := range []string{"new.example.org.", "a.b.new2.example.org.", "*.new3.example.org.", "y._sip._tcp.example.org.", "b.c.example.org."} {
		if err := e.InsertService(name, ServiceRef(10+i)); err != nil {
			t.Fatalf("insert %s: %v", name, err)
		}
	}
	if err := e.InsertService("WWW.example.org.", 20); err == nil {
		t.Error("a service beside the base's static data was taken")
	}
	if err := e.InsertService("new.example.org.", 21); err == nil {
		t.Error("a service was taken twice")
	}
	if err := e.Insert(mustRR(t, "z.example.org. 60 IN A 192.0.2.9")); err == nil || !strings.Contains(err.Error(), "extended") {
		t.Errorf("an extended zone took a record: %v", err)
	}
	if got, want := lookupAll(base), before; !reflect.DeepEqual(got, want) {
		t.Errorf("the base answers otherwise after its extension took services:\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(lookupAll(base), lookupAll(untouched)) {
		t.Error("the base answers otherwise than a zone never extended")
	}
	if base.Names() != untouched.Names() || e.Names() != base.Names()+5 {
		t.Errorf("names: base %d, untouched %d, extension %d", base.Names(), untouched.Names(), e.Names())
	}
	// The extension answers as a zone built whole with the same services does.
	whole := testZone(t)
	for i, name := range []string{"new.example.org.", "a.b.new2.example.org.", "*.new3.example.org.", "y._sip._tcp.example.org.", "b.c.example.org."} {
		if err := whole.InsertService(name, ServiceRef(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := lookupAll(e), lookupAll(whole); !reflect.DeepEqual(got, want) {
		t.Errorf("the extension answers otherwise than a zone built whole:\n got %+v\nwant %+v", got, want)
	}
	if r := e.Lookup("example.org.", dns.TypeMX); len(r.Extra) == 0 {
		t.Error("the copied apex lost its MX additional data")
	}
	// An extension of an extension leaves both before it as they were.
	mid := lookupAll(e)
	e2 := e.Extend(1)
	if err := e2.InsertService("last.example.org.", 30); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lookupAll(e), mid) || !reflect.DeepEqual(lookupAll(base), before) {
		t.Error("a second extension changed the zones before it")
	}
	if r := e2.Lookup("last.example.org.", dns.TypeA); r.Kind != Service || r.Service != 30 {
		t.Errorf("second extension: %+v", r)
	}
}
