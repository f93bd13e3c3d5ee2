package zones

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// writeFiles writes name → contents under a new temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// importDir imports dir/name into a new example.org. with includes rooted at dir.
func importDir(t *testing.T, dir, name string) (*Zone, []Included, error) {
	t.Helper()
	z := newZone(t, "example.org.")
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := z.Import(data, path, ImportOptions{DefaultTTL: 300, IncludeRoot: dir})
	return z, inc, err
}

func fileErrors(t *testing.T, err error) *FileErrors {
	t.Helper()
	var fe *FileErrors
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *FileErrors", err)
	}
	return fe
}

// Every error of a file is reported at its line, and the records around them are read
// as if the bad ones were not there (the owner of a blank-owner line, the TTL).
func TestImportEveryError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"db": `$TTL 300
ok1     A     192.0.2.1
bad1    A     999.0.2.1
        TXT   "after bad1: still owned by bad1"
long    TXT   ( "one"
                "two" ) ; a record over two lines
bad2    MX    notanumber mail
out.example.com. A 192.0.2.2
        A     192.0.2.3
$TTL x
bad3    IN    BOGUS  1
ok2     600   A     192.0.2.4
        AAAA  2001:db8::4
`})
	z, _, err := importDir(t, dir, "db")
	fe := fileErrors(t, err)
	path := filepath.Join(dir, "db")
	want := []string{path + ":3:", path + ":7:", path + ":8:", path + ":9:", path + ":10:", path + ":11:"}
	if len(fe.Errs) != len(want) {
		t.Fatalf("%d errors, want %d: %v", len(fe.Errs), len(want), err)
	}
	for i, w := range want {
		if got := fe.Errs[i].Error(); !strings.HasPrefix(got, w) {
			t.Errorf("error %d = %q, want prefix %q", i, got, w)
		}
	}
	if !errors.Is(err, ErrOutOfZone) {
		t.Errorf("errors.Is(ErrOutOfZone) false for %v", err)
	}
	if fe.Errs[0].Col == 0 {
		t.Errorf("syntax error without a column: %v", fe.Errs[0])
	}
	checkSection(t, "bad1 TXT", z.Lookup("bad1.example.org.", dns.TypeTXT).Answer,
		[]string{`bad1.example.org. 300 IN TXT "after bad1: still owned by bad1"`})
	checkSection(t, "long", z.Lookup("long.example.org.", dns.TypeTXT).Answer,
		[]string{`long.example.org. 300 IN TXT "one" "two"`})
	checkSection(t, "ok2 AAAA", z.Lookup("ok2.example.org.", dns.TypeAAAA).Answer,
		[]string{"ok2.example.org. 300 IN AAAA 2001:db8::4"})
}

func TestImportErrorCap(t *testing.T) {
	var b strings.Builder
	for i := range MaxFileErrors + 50 {
		fmt.Fprintf(&b, "h%d A 999.0.0.%d\n", i, i)
	}
	dir := writeFiles(t, map[string]string{"db": b.String()})
	_, _, err := importDir(t, dir, "db")
	fe := fileErrors(t, err)
	if len(fe.Errs) != MaxFileErrors || fe.Omitted != 50 {
		t.Fatalf("%d errors, %d omitted; want %d, 50", len(fe.Errs), fe.Omitted, MaxFileErrors)
	}
	if !strings.HasSuffix(err.Error(), "and 50 more errors") {
		t.Errorf("message does not end with the count: ...%s", err.Error()[len(err.Error())-40:])
	}
}

func TestImportInclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"zones/db":            "www A 192.0.2.1\n$INCLUDE sub/hosts\n$INCLUDE sub/hosts lab\nafter A 192.0.2.9\n",
		"zones/sub/hosts":     "$TTL 60\nh1 A 192.0.2.2\n$INCLUDE more\n",
		"zones/sub/more":      "h2 A 192.0.2.3\n",
		"zones/escape":        "$INCLUDE ../../outside\n",
		"zones/abs":           "$INCLUDE /etc/passwd\n",
		"zones/self":          "$INCLUDE self\n",
		"zones/missing":       "$INCLUDE nothere\n",
		"zones/bad_inner":     "ok A 192.0.2.1\n$INCLUDE sub/broken\n",
		"zones/sub/broken":    "x A 1.2.3.4\ny A nope\n",
		"zones/deep0":         "$INCLUDE deep1\n",
		"zones/link":          "$INCLUDE sub/escaping-link\n",
		"zones/noroot-inside": "x A 192.0.2.1\n",
	})
	for i := 1; i <= MaxIncludeDepth+1; i++ {
		os.WriteFile(filepath.Join(dir, "zones", fmt.Sprintf("deep%d", i)), []byte(fmt.Sprintf("$INCLUDE deep%d\n", i+1)), 0o644)
	}
	outside := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-outside")
	os.WriteFile(outside, []byte("secret A 192.0.2.66\n"), 0o644)
	t.Cleanup(func() { os.Remove(outside) })
	if err := os.Symlink(outside, filepath.Join(dir, "zones/sub/escaping-link")); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "zones")

	t.Run("relative, nested, with origin", func(t *testing.T) {
		z, inc, err := importDir(t, root, "db")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"www", "h1", "h2", "h1.lab", "h2.lab", "after"} {
			if r := z.Lookup(q+".example.org.", dns.TypeA); r.Kind != Answer {
				t.Errorf("%s: kind %s", q, kindNames[r.Kind])
			}
		}
		// $TTL of the included file ended with it.
		checkSection(t, "after", z.Lookup("after.example.org.", dns.TypeA).Answer, []string{"after.example.org. 300 IN A 192.0.2.9"})
		checkSection(t, "h1", z.Lookup("h1.example.org.", dns.TypeA).Answer, []string{"h1.example.org. 60 IN A 192.0.2.2"})
		var paths []string
		for _, f := range inc {
			paths = append(paths, strings.TrimPrefix(f.Path, root+"/"))
		}
		if got := strings.Join(paths, " "); got != "sub/hosts sub/more sub/hosts sub/more" {
			t.Errorf("included %q", got)
		}
	})
	for _, tc := range []struct{ file, want string }{
		{"escape", "outside the policy folder"},
		{"abs", "outside the policy folder"},
		{"link", "a symlink leads outside"},
		{"self", "includes itself"},
		{"missing", "no such file"},
		{"deep0", "levels of $INCLUDE"},
		{"bad_inner", "sub/broken:2:"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			z, _, err := importDir(t, root, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.file != "bad_inner" && !errors.Is(err, ErrInclude) {
				t.Errorf("not ErrInclude: %v", err)
			}
			if r := z.Lookup("secret.example.org.", dns.TypeA); r.Kind == Answer {
				t.Error("the outside file was imported")
			}
		})
	}
	t.Run("refused without a root", func(t *testing.T) {
		z := newZone(t, "example.org.")
		err := z.ImportFile(strings.NewReader("$INCLUDE noroot-inside\n"), filepath.Join(root, "x.zone"), 300)
		if !errors.Is(err, ErrInclude) {
			t.Fatalf("err = %v, want ErrInclude", err)
		}
	})
}

// Every type miekg parses is taken and answered as parsed, but the refused few.
func TestImportRecordTypes(t *testing.T) {
	records := []string{
		`svc HTTPS 1 . alpn="h2,h3" ipv4hint="192.0.2.1"`,
		`_8443._foo.svc SVCB 1 svc.example.org. port="8443"`,
		`_443._tcp.www TLSA 3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF`,
		`naptr NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.org!" .`,
		`ssh SSHFP 4 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF`,
		`@ CAA 0 issue "letsencrypt.org"`,
		`loc LOC 51 30 12.748 N 0 7 39.611 W 0.00m 0.00m 0.00m 0.00m`,
		`uri URI 10 1 "https://example.org/"`,
		`generic TYPE65280 \# 4 0A000001`,
		`child NS ns.example.net.`,
		`child DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF`,
	}
	dir := writeFiles(t, map[string]string{"db": strings.Join(records, "\n") + "\n"})
	z, _, err := importDir(t, dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range records {
		want := mustRR(t, "$ORIGIN example.org.\n$TTL 300\n"+s)
		h := want.Header()
		if h.Rrtype == dns.TypeNS {
			continue // a delegation: answered by referral
		}
		r := z.Lookup(h.Name, h.Rrtype)
		if r.Kind != Answer || len(r.Answer) != 1 || r.Answer[0].String() != want.String() {
			t.Errorf("%s: kind %s, answer %v", s, kindNames[r.Kind], r.Answer)
		}
	}
	if errs := z.CheckDS(); len(errs) != 0 {
		t.Errorf("CheckDS: %v", errs)
	}
	for _, tc := range []struct{ rec, want string }{
		{"d DNAME example.net.", "dname"},
		{"@ DNSKEY 257 3 13 AwEAAQ==", "does not sign"},
		{"x NSEC y A", "does not sign"},
	} {
		dir := writeFiles(t, map[string]string{"db": tc.rec + "\n"})
		if _, _, err := importDir(t, dir, "db"); !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrUnsupportedType with %q", tc.rec, err, tc.want)
		}
	}
}

// DS only at a delegation point: NS after the DS in the file is fine, no NS is not.
func TestCheckDS(t *testing.T) {
	ds := "DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	dir := writeFiles(t, map[string]string{"db": fmt.Sprintf(`a %s
a NS ns.example.net.
b %s
c NS ns.example.net.
x.c NS ns.example.net.
x.c %s
`, ds, ds, ds)})
	z, _, err := importDir(t, dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	errs := z.CheckDS()
	if len(errs) != 2 {
		t.Fatalf("CheckDS = %v, want b and x.c", errs)
	}
	for i, name := range []string{"b.example.org.", "x.c.example.org."} {
		re := errs[i].(*RecordError)
		if re.Name != name || !errors.Is(re, ErrDSNotAtCut) {
			t.Errorf("error %d = %v, want one about %s", i, re, name)
		}
		if p, ok := z.RecordPos(name, dns.TypeDS); !ok || p.Line != []int{3, 6}[i] {
			t.Errorf("RecordPos(%s) = %v, %v", name, p, ok)
		}
	}
	if r := z.Lookup("a.example.org.", dns.TypeDS); r.Kind != Answer || len(r.Answer) != 1 {
		t.Errorf("DS at the cut: %s %v", kindNames[r.Kind], r.Answer)
	}
}

func TestCheckCNAMEs(t *testing.T) {
	chain := func(n int, end string) string {
		var b strings.Builder
		for i := range n {
			next := fmt.Sprintf("c%d", i+1)
			if i == n-1 {
				next = end
			}
			fmt.Fprintf(&b, "c%d CNAME %s\n", i, next)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, file string
		want       []string // error substrings, one per error
		sentinel   error
	}{
		{name: "chain of 8 ends in data", file: chain(8, "www") + "www A 192.0.2.1\n"},
		{name: "chain of 8 leaves the zone", file: chain(8, "www.example.net.")},
		{name: "chain of 9", file: chain(9, "www") + "www A 192.0.2.1\n", sentinel: ErrCNAMEChain,
			want: []string{"9 cnames from c0.example.org."}},
		{name: "two-name loop", file: "a CNAME b\nb CNAME a\nx CNAME a\n", sentinel: ErrCNAMELoop,
			want: []string{"a.example.org. → b.example.org. → a.example.org."}},
		{name: "self loop", file: "a CNAME a\n", sentinel: ErrCNAMELoop, want: []string{"a.example.org. → a.example.org."}},
		{name: "loop through a wildcard", file: "*.w CNAME x.w2\n*.w2 CNAME y.w\n", sentinel: ErrCNAMELoop,
			want: []string{"*.w2.example.org. → *.w.example.org. → *.w2.example.org."}},
		{name: "long loop", file: chain(20, "c0"), sentinel: ErrCNAMELoop, want: []string{"c0.example.org. → c1.example.org."}},
		{name: "delegation ends the chain", file: "a CNAME b.sub\nsub NS ns.example.net.\nb.sub CNAME a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"db": tc.file})
			z, _, err := importDir(t, dir, "db")
			if err != nil {
				t.Fatal(err)
			}
			set, err := NewSet(z)
			if err != nil {
				t.Fatal(err)
			}
			errs := set.CheckCNAMEs(8, nil)
			if len(errs) != len(tc.want) {
				t.Fatalf("CheckCNAMEs = %v, want %d errors", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) || !errors.Is(errs[i], tc.sentinel) {
					t.Errorf("error %v, want %q (%v)", errs[i], w, tc.sentinel)
				}
				re := errs[i].(*RecordError)
				if _, ok := z.RecordPos(re.Names[0], dns.TypeCNAME); !ok {
					t.Errorf("no position for %s", re.Names[0])
				}
			}
		})
	}
	// Across two zones of the set.
	a, b := newZone(t, "a.example."), newZone(t, "b.example.")
	a.Insert(mustRR(t, "x.a.example. 60 IN CNAME y.b.example."))
	b.Insert(mustRR(t, "y.b.example. 60 IN CNAME x.a.example."))
	set, _ := NewSet(a, b)
	if errs := set.CheckCNAMEs(8, nil); len(errs) != 1 || !errors.Is(errs[0], ErrCNAMELoop) {
		t.Errorf("cross-zone loop: %v", errs)
	}
}
