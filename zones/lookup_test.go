package zones

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// mustRR parses one record in zone-file syntax.
func mustRR(tb testing.TB, s string) dns.RR {
	tb.Helper()
	rr, err := dns.NewRR(s)
	if err != nil || rr == nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return rr
}

// newZone returns an empty zone for origin with a placeholder SOA and one NS.
func newZone(tb testing.TB, origin string) *Zone {
	tb.Helper()
	ns1, host := dns.Fqdn("ns1."+origin), dns.Fqdn("hostmaster."+origin)
	if origin == "." {
		ns1, host = "ns1.", "hostmaster."
	}
	soa := mustRR(tb, origin+" 3600 IN SOA "+ns1+" "+host+" 1 7200 3600 1209600 300").(*dns.SOA)
	z, err := New(origin, soa, []dns.RR{mustRR(tb, origin+" 3600 IN NS "+ns1)})
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// testZone is example.org. from testdata/example.zone plus two services.
func testZone(tb testing.TB) *Zone {
	tb.Helper()
	z := newZone(tb, "example.org.")
	f, err := os.Open("testdata/example.zone")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := z.ImportFile(f, "testdata/example.zone", 3600); err != nil {
		tb.Fatal(err)
	}
	if err := z.InsertService("lb.example.org.", 1); err != nil {
		tb.Fatal(err)
	}
	if err := z.InsertService("*.pool.example.org.", 2); err != nil {
		tb.Fatal(err)
	}
	return z
}

// sortedStrings renders RRs in zone-file syntax, sorted, for order-free comparison.
func sortedStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func parseAll(tb testing.TB, ss []string) []string {
	tb.Helper()
	rrs := make([]dns.RR, 0, len(ss))
	for _, s := range ss {
		rrs = append(rrs, mustRR(tb, s))
	}
	return sortedStrings(rrs)
}

func checkSection(t *testing.T, section string, got []dns.RR, want []string) {
	t.Helper()
	g, w := sortedStrings(got), parseAll(t, want)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", section, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

var kindNames = map[Kind]string{Answer: "Answer", NoData: "NoData", NXDomain: "NXDomain", Referral: "Referral", CNAME: "CNAME", Service: "Service"}

type lookupCase struct {
	name     string
	qname    string
	qtype    uint16
	kind     Kind
	answer   []string
	ns       []string
	extra    []string
	target   string
	service  ServiceRef
	wildcard bool
}

// Expected glue of the "sub" delegation and of the apex NS set.
var (
	subNS = []string{
		"sub.example.org. 300 IN NS ns.sub.example.org.",
		"sub.example.org. 300 IN NS ns.other.example.net.",
	}
	subGlue = []string{
		"ns.sub.example.org. 300 IN A 192.0.2.54",
		"ns.sub.example.org. 300 IN AAAA 2001:db8::54",
	}
)

var lookupCases = []lookupCase{
	{name: "exact A", qname: "www.example.org.", qtype: dns.TypeA, kind: Answer, answer: []string{
		"www.example.org. 300 IN A 192.0.2.1", "www.example.org. 300 IN A 192.0.2.2"}},
	{name: "exact AAAA", qname: "www.example.org.", qtype: dns.TypeAAAA, kind: Answer, answer: []string{
		"www.example.org. 300 IN AAAA 2001:db8::1"}},
	{name: "exact TXT", qname: "www.example.org.", qtype: dns.TypeTXT, kind: Answer, answer: []string{
		`www.example.org. 300 IN TXT "hello"`}},
	{name: "PTR", qname: "1.2.example.org.", qtype: dns.TypePTR, kind: Answer, answer: []string{
		"1.2.example.org. 300 IN PTR www.example.org."}},
	{name: "not fully qualified qname", qname: "www.example.org", qtype: dns.TypeAAAA, kind: Answer, answer: []string{
		"www.example.org. 300 IN AAAA 2001:db8::1"}},
	{name: "NODATA", qname: "www.example.org.", qtype: dns.TypeMX, kind: NoData},
	{name: "MX with the target's addresses in extra", qname: "example.org.", qtype: dns.TypeMX, kind: Answer,
		answer: []string{"example.org. 300 IN MX 10 mail.example.org."}, extra: []string{"mail.example.org. 300 IN A 192.0.2.25"}},
	{name: "SRV with the target's addresses in extra", qname: "_sip._tcp.example.org.", qtype: dns.TypeSRV, kind: Answer,
		answer: []string{"_sip._tcp.example.org. 300 IN SRV 10 5 5060 sip.example.org."}, extra: []string{"sip.example.org. 300 IN A 192.0.2.26", "sip.example.org. 300 IN AAAA 2001:db8::26"}},
	{name: "SRV to a delegated target has no extra", qname: "_xmpp._tcp.example.org.", qtype: dns.TypeSRV, kind: Answer,
		answer: []string{"_xmpp._tcp.example.org. 300 IN SRV 0 0 5222 ns.sub.example.org.", "_xmpp._tcp.example.org. 300 IN SRV 0 0 5222 target.example.net."}},
	{name: "wildcard MX keeps its target's extra", qname: "a.mxw.example.org.", qtype: dns.TypeMX, kind: Answer, wildcard: true,
		answer: []string{"a.mxw.example.org. 300 IN MX 10 mail.example.org."}, extra: []string{"mail.example.org. 300 IN A 192.0.2.25"}},
	{name: "NXDOMAIN", qname: "nope.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "NXDOMAIN two labels down", qname: "a.nope.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "out of zone", qname: "www.example.com.", qtype: dns.TypeA, kind: NXDomain},
	{name: "suffix but not subdomain", qname: "wwwexample.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "empty non-terminal", qname: "b.c.example.org.", qtype: dns.TypeA, kind: NoData},
	{name: "empty non-terminal two up", qname: "c.example.org.", qtype: dns.TypeA, kind: NoData},
	{name: "below ENT without wildcard", qname: "z.b.c.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "apex SOA", qname: "example.org.", qtype: dns.TypeSOA, kind: Answer, answer: []string{
		"example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 2024010101 7200 3600 1209600 60"}},
	{name: "apex NS with additional addresses", qname: "example.org.", qtype: dns.TypeNS, kind: Answer,
		answer: []string{"example.org. 300 IN NS ns1.example.org.", "example.org. 300 IN NS ns2.example.net."},
		extra:  []string{"ns1.example.org. 300 IN A 192.0.2.53", "ns1.example.org. 300 IN AAAA 2001:db8::53"}},
	{name: "apex CAA", qname: "example.org.", qtype: dns.TypeCAA, kind: Answer, answer: []string{
		`example.org. 300 IN CAA 0 issue "letsencrypt.org"`}},
	{name: "apex DS", qname: "example.org.", qtype: dns.TypeDS, kind: NoData},
	{name: "ANY flattens every RRset", qname: "www.example.org.", qtype: dns.TypeANY, kind: Answer, answer: []string{
		"www.example.org. 300 IN A 192.0.2.1", "www.example.org. 300 IN A 192.0.2.2",
		"www.example.org. 300 IN AAAA 2001:db8::1", `www.example.org. 300 IN TXT "hello"`}},
	{name: "ANY at empty non-terminal", qname: "c.example.org.", qtype: dns.TypeANY, kind: NoData},
	{name: "wildcard match", qname: "foo.w.example.org.", qtype: dns.TypeA, kind: Answer, wildcard: true, answer: []string{
		"foo.w.example.org. 300 IN A 192.0.2.4"}},
	{name: "wildcard match several labels down", qname: "a.b.foo.w.example.org.", qtype: dns.TypeTXT, kind: Answer, wildcard: true,
		answer: []string{`a.b.foo.w.example.org. 300 IN TXT "wild"`}},
	{name: "wildcard NODATA", qname: "foo.w.example.org.", qtype: dns.TypeAAAA, kind: NoData, wildcard: true},
	{name: "wildcard ANY", qname: "foo.w.example.org.", qtype: dns.TypeANY, kind: Answer, wildcard: true, answer: []string{
		"foo.w.example.org. 300 IN A 192.0.2.4", `foo.w.example.org. 300 IN TXT "wild"`}},
	{name: "wildcard blocked by existing name", qname: "x.w.example.org.", qtype: dns.TypeTXT, kind: NoData},
	{name: "wildcard does not cover below existing name", qname: "q.x.w.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "wildcard blocked by empty non-terminal", qname: "q.z.w.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "empty non-terminal beside wildcard", qname: "z.w.example.org.", qtype: dns.TypeA, kind: NoData},
	{name: "wildcard owner asked literally", qname: "*.w.example.org.", qtype: dns.TypeA, kind: Answer, answer: []string{
		"*.w.example.org. 300 IN A 192.0.2.4"}},
	{name: "wildcard CNAME", qname: "foo.cw.example.org.", qtype: dns.TypeA, kind: CNAME, wildcard: true,
		target: "www.example.org.", answer: []string{"foo.cw.example.org. 300 IN CNAME www.example.org."}},
	{name: "wildcard CNAME asked as CNAME", qname: "foo.cw.example.org.", qtype: dns.TypeCNAME, kind: Answer, wildcard: true,
		answer: []string{"foo.cw.example.org. 300 IN CNAME www.example.org."}},
	{name: "CNAME", qname: "alias.example.org.", qtype: dns.TypeA, kind: CNAME, target: "www.example.org.",
		answer: []string{"alias.example.org. 300 IN CNAME www.example.org."}},
	{name: "CNAME out of zone", qname: "ext.example.org.", qtype: dns.TypeAAAA, kind: CNAME, target: "target.example.net.",
		answer: []string{"ext.example.org. 300 IN CNAME target.example.net."}},
	{name: "CNAME asked as CNAME", qname: "alias.example.org.", qtype: dns.TypeCNAME, kind: Answer,
		answer: []string{"alias.example.org. 300 IN CNAME www.example.org."}},
	{name: "CNAME asked as ANY", qname: "alias.example.org.", qtype: dns.TypeANY, kind: Answer,
		answer: []string{"alias.example.org. 300 IN CNAME www.example.org."}},
	{name: "NXDOMAIN below CNAME", qname: "x.alias.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "referral at cut", qname: "sub.example.org.", qtype: dns.TypeA, kind: Referral, ns: subNS, extra: subGlue},
	{name: "referral for NS at cut", qname: "sub.example.org.", qtype: dns.TypeNS, kind: Referral, ns: subNS, extra: subGlue},
	{name: "referral below cut", qname: "host.sub.example.org.", qtype: dns.TypeA, kind: Referral, ns: subNS, extra: subGlue},
	{name: "occluded data below cut", qname: "deep.sub.example.org.", qtype: dns.TypeA, kind: Referral, ns: subNS, extra: subGlue},
	{name: "glue name is below cut", qname: "ns.sub.example.org.", qtype: dns.TypeA, kind: Referral, ns: subNS, extra: subGlue},
	{name: "DS at cut is answered by the parent side", qname: "sub.example.org.", qtype: dns.TypeDS, kind: Answer, answer: []string{"sub.example.org. 300 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}},
	{name: "DS at a cut without one is NODATA", qname: "nods.example.org.", qtype: dns.TypeDS, kind: NoData},
	{name: "DS below cut is a referral", qname: "host.sub.example.org.", qtype: dns.TypeDS, kind: Referral, ns: subNS, extra: subGlue},
	{name: "mixed case exact", qname: "WwW.ExAmPlE.OrG.", qtype: dns.TypeA, kind: Answer, answer: []string{
		"www.example.org. 300 IN A 192.0.2.1", "www.example.org. 300 IN A 192.0.2.2"}},
	{name: "mixed case wildcard keeps the asked case", qname: "FoO.W.example.ORG.", qtype: dns.TypeA, kind: Answer, wildcard: true,
		answer: []string{"FoO.W.example.ORG. 300 IN A 192.0.2.4"}},
	{name: "mixed case referral", qname: "Host.SUB.example.org.", qtype: dns.TypeA, kind: Referral, ns: subNS, extra: subGlue},
	{name: "service exact", qname: "lb.example.org.", qtype: dns.TypeA, kind: Service, service: 1},
	{name: "service for any qtype", qname: "lb.example.org.", qtype: dns.TypeMX, kind: Service, service: 1},
	{name: "service mixed case", qname: "LB.example.org.", qtype: dns.TypeAAAA, kind: Service, service: 1},
	{name: "service not below", qname: "x.lb.example.org.", qtype: dns.TypeA, kind: NXDomain},
	{name: "service wildcard", qname: "eu.pool.example.org.", qtype: dns.TypeA, kind: Service, service: 2, wildcard: true},
	{name: "service wildcard parent is ENT", qname: "pool.example.org.", qtype: dns.TypeA, kind: NoData},
}

// TestLookup runs every case through Lookup and, when its name is already canonical
// (lower case, fully qualified) and in the zone, through LookupCanonical too.
func TestLookup(t *testing.T) {
	z := testZone(t)
	canonical := 0
	for _, tc := range lookupCases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, tc, z.Lookup(tc.qname, tc.qtype))
		})
		if tc.qname != lower(tc.qname) || !strings.HasSuffix(tc.qname, ".") || !z.inZone(tc.qname) {
			continue
		}
		canonical++
		t.Run(tc.name+"/canonical", func(t *testing.T) {
			var got Result
			z.LookupCanonical(tc.qname, tc.qtype, &got)
			checkResult(t, tc, got)
		})
	}
	if canonical < len(lookupCases)/2 {
		t.Fatalf("only %d of %d cases are canonical names in the zone", canonical, len(lookupCases))
	}
}

// checkResult compares a lookup's result with the case's expectations.
func checkResult(t *testing.T, tc lookupCase, got Result) {
	t.Helper()
	if got.Kind != tc.kind {
		t.Fatalf("kind = %s, want %s (result %+v)", kindNames[got.Kind], kindNames[tc.kind], got)
	}
	checkSection(t, "answer", got.Answer, tc.answer)
	checkSection(t, "ns", got.Ns, tc.ns)
	checkSection(t, "extra", got.Extra, tc.extra)
	if got.Target != tc.target {
		t.Errorf("target = %q, want %q", got.Target, tc.target)
	}
	wantSvc := tc.service
	if tc.kind != Service {
		wantSvc = NoService
	}
	if got.Service != wantSvc {
		t.Errorf("service = %d, want %d", got.Service, wantSvc)
	}
	if got.Wildcard != tc.wildcard {
		t.Errorf("wildcard = %v, want %v", got.Wildcard, tc.wildcard)
	}
}

// A synthesised answer must be a copy: rewriting it must not change the wildcard.
func TestLookupWildcardCopies(t *testing.T) {
	z := testZone(t)
	r := z.Lookup("one.w.example.org.", dns.TypeA)
	if len(r.Answer) != 1 {
		t.Fatalf("answer = %v", r.Answer)
	}
	r.Answer[0].Header().Name = "mangled.example.org."
	again := z.Lookup("*.w.example.org.", dns.TypeA)
	if n := again.Answer[0].Header().Name; n != "*.w.example.org." {
		t.Fatalf("wildcard owner changed to %q", n)
	}
}

// Appending to a shared Result slice must not write into the zone.
func TestLookupSharedSliceCapacity(t *testing.T) {
	z := testZone(t)
	r := z.Lookup("www.example.org.", dns.TypeA)
	_ = append(r.Answer, mustRR(t, "x.example.org. 1 IN A 192.0.2.200"))
	if r2 := z.Lookup("www.example.org.", dns.TypeANY); len(r2.Answer) != 4 {
		t.Fatalf("ANY after append = %d RRs, want 4", len(r2.Answer))
	}
	if cap(r.Answer) != len(r.Answer) {
		t.Fatalf("answer has spare capacity %d > %d", cap(r.Answer), len(r.Answer))
	}
}

// A cut added above an existing cut becomes the topmost: everything below refers to it.
func TestLookupNestedCuts(t *testing.T) {
	for _, order := range []string{"inner first", "outer first"} {
		t.Run(order, func(t *testing.T) {
			z := newZone(t, "example.org.")
			inner := mustRR(t, "a.b.example.org. 60 IN NS ns.a.b.example.org.")
			outer := mustRR(t, "b.example.org. 60 IN NS ns.example.net.")
			first, second := inner, outer
			if order == "outer first" {
				first, second = outer, inner
			}
			for _, rr := range []dns.RR{first, second, mustRR(t, "ns.a.b.example.org. 60 IN A 192.0.2.9")} {
				if err := z.Insert(rr); err != nil {
					t.Fatal(err)
				}
			}
			for _, q := range []string{"b.example.org.", "x.b.example.org.", "a.b.example.org.", "x.a.b.example.org."} {
				r := z.Lookup(q, dns.TypeA)
				if r.Kind != Referral {
					t.Fatalf("%s: kind %s, want Referral", q, kindNames[r.Kind])
				}
				checkSection(t, q+" ns", r.Ns, []string{"b.example.org. 60 IN NS ns.example.net."})
				checkSection(t, q+" extra", r.Extra, nil)
			}
			// DS at the occluded inner cut is answered by the outer referral.
			if r := z.Lookup("a.b.example.org.", dns.TypeDS); r.Kind != Referral {
				t.Fatalf("DS at inner cut: kind %s, want Referral", kindNames[r.Kind])
			}
		})
	}
}

// Glue is found whether the address comes before or after the NS record.
func TestLookupGlueOrder(t *testing.T) {
	z := newZone(t, "example.org.")
	for _, s := range []string{
		"ns.d.example.org. 60 IN A 192.0.2.10",
		"d.example.org. 60 IN NS ns.d.example.org.",
		"d.example.org. 60 IN NS ns2.d.example.org.",
		"ns2.d.example.org. 60 IN AAAA 2001:db8::10",
		"d.example.org. 60 IN NS ns1.example.org.", // sibling, in zone, no address: no glue
	} {
		if err := z.Insert(mustRR(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	r := z.Lookup("www.d.example.org.", dns.TypeA)
	if r.Kind != Referral {
		t.Fatalf("kind %s", kindNames[r.Kind])
	}
	checkSection(t, "extra", r.Extra, []string{"ns.d.example.org. 60 IN A 192.0.2.10", "ns2.d.example.org. 60 IN AAAA 2001:db8::10"})
}

func TestZoneAccessors(t *testing.T) {
	z := testZone(t)
	if z.Origin() != "example.org." {
		t.Errorf("origin %q", z.Origin())
	}
	// The file's SOA replaced New's: serial from the file, TTL 300, minimum 60.
	if z.SOA().Serial != 2024010101 {
		t.Errorf("serial %d", z.SOA().Serial)
	}
	if got := z.NegativeTTL(); got != 60 {
		t.Errorf("negative TTL %d, want 60 (min of SOA TTL 300 and minimum 60)", got)
	}
	// New's NS (TTL 3600) and the file's identical one merge; TTLs lowered to 300.
	checkSection(t, "apex ns", z.NS(), []string{"example.org. 300 IN NS ns1.example.org.", "example.org. 300 IN NS ns2.example.net."})
	// Owner names with data: apex, ns1, mail, www, alias, ext, _sip._tcp, 1.2, a.b.c,
	// *.w, x.w, y.z.w, *.cw, sub, ns.sub, deep.sub, lb, *.pool = 18.
	if got := z.Names(); got != 22 {
		t.Errorf("names %d, want 22", got)
	}
}

func TestNegativeTTLCappedBySOATTL(t *testing.T) {
	soa := mustRR(t, "example.org. 30 IN SOA ns1 h 1 2 3 4 600").(*dns.SOA)
	z, err := New("Example.ORG", soa, []dns.RR{mustRR(t, "example.org. 30 IN NS ns1.example.org.")})
	if err != nil {
		t.Fatal(err)
	}
	if got := z.NegativeTTL(); got != 30 {
		t.Errorf("negative TTL %d, want 30", got)
	}
	if z.Origin() != "example.org." {
		t.Errorf("origin %q", z.Origin())
	}
}

func BenchmarkLookup(b *testing.B) {
	z := testZone(b)
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
		kind  Kind
	}{
		{"exact hit", "www.example.org.", dns.TypeA, Answer},
		{"exact service", "lb.example.org.", dns.TypeA, Service},
		{"wildcard hit", "foo.w.example.org.", dns.TypeA, Answer},
		{"wildcard service", "eu.pool.example.org.", dns.TypeA, Service},
		{"NXDOMAIN", "nope.a.b.example.org.", dns.TypeA, NXDomain},
		{"referral", "host.sub.example.org.", dns.TypeA, Referral},
		{"mixed case exact", "WWW.example.org.", dns.TypeA, Answer},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if r := z.Lookup(bc.qname, bc.qtype); r.Kind != bc.kind {
				b.Fatalf("kind %s, want %s", kindNames[r.Kind], kindNames[bc.kind])
			}
			b.ReportAllocs()
			for b.Loop() {
				z.Lookup(bc.qname, bc.qtype)
			}
		})
	}
}

// The promise of the contract, checked in the ordinary test run and not only by eye on
// benchmark output.
func TestLookupExactHitDoesNotAllocate(t *testing.T) {
	z := testZone(t)
	for _, q := range []string{"www.example.org.", "lb.example.org.", "nope.example.org.", "host.sub.example.org.", "eu.pool.example.org."} {
		if a := testing.AllocsPerRun(100, func() { z.Lookup(q, dns.TypeA) }); a != 0 {
			t.Errorf("%s: %v allocs per lookup, want 0", q, a)
		}
	}
}

// FuzzLookup checks invariants that hold for every query name: no panic, a known Kind,
// a service reference only with Kind Service, and owners equal to the (lower-cased, for
// stored data) query name for answers that are not referrals.
func FuzzLookup(f *testing.F) {
	for _, tc := range lookupCases {
		f.Add(tc.qname, tc.qtype)
	}
	f.Add(`a\.b.w.example.org.`, dns.TypeA)
	f.Add("..", dns.TypeA)
	f.Add("", dns.TypeANY)
	z := testZone(f)
	f.Fuzz(func(t *testing.T, qname string, qtype uint16) {
		r := z.Lookup(qname, qtype)
		if r.Kind > Service {
			t.Fatalf("kind %d", r.Kind)
		}
		if (r.Kind == Service) != (r.Service != NoService) {
			t.Fatalf("kind %s with service %d", kindNames[r.Kind], r.Service)
		}
		if r.Kind == Answer || r.Kind == CNAME {
			want := dns.Fqdn(qname)
			for _, rr := range r.Answer {
				if !strings.EqualFold(rr.Header().Name, want) {
					t.Fatalf("owner %q for qname %q", rr.Header().Name, qname)
				}
			}
		}
	})
}
