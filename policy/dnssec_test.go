package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/dnssec"
)

// TestDNSSECBlock: a zone's dnssec block loads the zone's keys into the snapshot's
// Signers, and every mistake is refused at its attribute: no keys there, a validity out
// of bounds, two blocks.
func TestDNSSECBlock(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	k, _ := dnssec.Generate("sig.test", 13, dnssec.FlagKSK)
	if err := k.Write(keys); err != nil {
		t.Fatal(err)
	}
	load := func(block, records string) (*Snapshot, string) {
		src := "zone \"sig.test\" {\n  nameservers = [\"ns1.sig.test\"]\n" + block + records + "}\n"
		path := filepath.Join(dir, "p.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		snap, diags := LoadPath(path)
		return snap, diags.Error()
	}
	snap, errs := load("  dnssec {\n    keys = \"keys\"\n  }\n", "")
	if snap == nil || snap.Signers["sig.test."] == nil || snap.Signers["sig.test."].Keys()[0].Tag() != k.Tag() {
		t.Fatalf("signed zone: %v %s", snap, errs)
	}
	if snap, _ := load("", ""); snap == nil || snap.Signers != nil {
		t.Fatal("an unsigned zone has a signer")
	}
	for _, tc := range []struct{ block, records, want string }{
		{"  dnssec {\n    keys = \"nokeys\"\n  }\n", "", "p.hcl:4,12-20: Cannot load DNSSEC keys"},
		{"  dnssec {\n    keys = \"keys\"\n    validity = \"1h\"\n  }\n", "", "p.hcl:5,16-20: Invalid validity"},
		{"  dnssec {\n    keys = \"keys\"\n  }\n  dnssec {\n    keys = \"keys\"\n  }\n", "", "p.hcl:6,3-9: Duplicate dnssec block"},
	} {
		snap, errs := load(tc.block, tc.records)
		if snap != nil || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: %s, want %q", tc.block+tc.records, errs, tc.want)
		}
	}
}
