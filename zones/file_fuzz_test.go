package zones

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzImport imports arbitrary bytes as a zone file into example.org. Properties: no
// panic; on success every imported record's owner and type look up without a panic and
// with a consistent result (see FuzzLookup).
func FuzzImport(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.zone")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("$INCLUDE /etc/passwd\n"))
	f.Add([]byte("$ORIGIN sub.example.org.\n@ 60 IN A 192.0.2.1\n* CNAME x\n"))
	f.Add([]byte("@ IN SOA a. b. 1 2 3 4 5\n@ NS ns.example.net.\nd DNAME x.example.net.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		z := newZone(t, "example.org.")
		var rrs []dns.RR
		zp := dns.NewZoneParser(bytes.NewReader(data), "example.org.", "fuzz.zone")
		zp.SetIncludeAllowed(false)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			rrs = append(rrs, rr)
		}
		if err := z.ImportFile(bytes.NewReader(data), "fuzz.zone", 300); err != nil {
			return
		}
		for _, rr := range rrs {
			h := rr.Header()
			r := z.Lookup(h.Name, h.Rrtype)
			if r.Kind > Service {
				t.Fatalf("%s %d: kind %d", h.Name, h.Rrtype, r.Kind)
			}
			if r.Kind == Answer || r.Kind == CNAME {
				for _, a := range r.Answer {
					if !strings.EqualFold(a.Header().Name, h.Name) {
						t.Fatalf("owner %q for qname %q", a.Header().Name, h.Name)
					}
				}
			}
		}
	})
}
