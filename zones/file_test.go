package zones

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestImportFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string
		wantErr  error    // sentinel, or nil for a syntax error
		contains []string // substrings of the message
	}{
		{name: "syntax error has file and line", file: "testdata/bad_syntax.zone",
			contains: []string{"testdata/bad_syntax.zone:4:", "999.0.2.1"}},
		{name: "record out of zone", file: "testdata/out_of_zone.zone", wantErr: ErrOutOfZone,
			contains: []string{"testdata/out_of_zone.zone:3:", "www.example.com."}},
		{name: "cname conflict", file: "testdata/cname_conflict.zone", wantErr: ErrCNAMEConflict,
			contains: []string{"testdata/cname_conflict.zone:2:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := newZone(t, "example.org.")
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = z.ImportFile(f, tc.file, 300)
			t.Log(err)
			if err == nil {
				t.Fatal("import succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Errorf("err = %v, want a *FileError", err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// Without $TTL the default applies; the file's SOA replaces New's, its NS extends.
func TestImportFileDefaultsAndApex(t *testing.T) {
	z := newZone(t, "example.org.")
	f, err := os.Open("testdata/no_ttl.zone")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := z.ImportFile(f, "no_ttl.zone", 1234); err != nil {
		t.Fatal(err)
	}
	checkSection(t, "plain", z.Lookup("plain.example.org.", dns.TypeA).Answer, []string{"plain.example.org. 1234 IN A 192.0.2.7"})
	checkSection(t, "timed", z.Lookup("timed.example.org.", dns.TypeA).Answer, []string{"timed.example.org. 3600 IN A 192.0.2.8"})
	checkSection(t, "soa", []dns.RR{z.SOA()}, []string{
		"example.org. 1234 IN SOA ns1.example.org. hostmaster.example.org. 2024020202 7200 3600 1209600 120"})
	if got := z.NegativeTTL(); got != 120 {
		t.Errorf("negative TTL %d, want 120", got)
	}
	// New's NS had TTL 3600, the file's 1234: one RRset, one TTL (RFC 2181 5.2).
	checkSection(t, "ns", z.NS(), []string{
		"example.org. 1234 IN NS ns1.example.org.", "example.org. 1234 IN NS ns3.example.net."})
}

func TestImportFileRefusesInclude(t *testing.T) {
	z := newZone(t, "example.org.")
	err := z.ImportFile(strings.NewReader("$INCLUDE /etc/passwd\n"), "include.zone", 300)
	if err == nil || !strings.Contains(err.Error(), "include.zone") {
		t.Fatalf("err = %v, want a refusal naming include.zone", err)
	}
}
