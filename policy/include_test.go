package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// A zone file's $INCLUDEs are part of the policy: in its Files (which the daemon
// watches) and Hash, and a Compiler builds the zone again when an included file changes,
// though the zone file itself did not.
func TestZoneIncludeHashedAndWatched(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.hcl", `zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
  file        = "zones/glb.zone"
}
`)
	write("zones/glb.zone", "$INCLUDE inc/hosts.zone\n")
	write("zones/inc/hosts.zone", "h IN A 192.0.2.1\n")
	cc := &Compiler{}
	load := func() (string, []string, string) {
		t.Helper()
		files, err := ReadPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		snap, diags := cc.Load(files)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		r := snap.Zones.Find("h.glb.example.com.").Lookup("h.glb.example.com.", dns.TypeA)
		if len(r.Answer) != 1 {
			t.Fatalf("h: %v", r)
		}
		return r.Answer[0].(*dns.A).A.String(), snap.Files, snap.Hash
	}
	a1, files, h1 := load()
	inc := filepath.Join(dir, "zones/inc/hosts.zone")
	if a1 != "192.0.2.1" || !slices.Contains(files, inc) {
		t.Fatalf("address %s, files %v; want 192.0.2.1 and %s among the files", a1, files, inc)
	}
	if _, _, h := load(); h != h1 {
		t.Errorf("hash changed without a change: %s, %s", h1, h)
	}
	write("zones/inc/hosts.zone", "h IN A 192.0.2.2\n")
	a2, files2, h2 := load()
	if a2 != "192.0.2.2" || h2 == h1 || !slices.Contains(files2, inc) {
		t.Errorf("after the change: address %s, hash changed %v, files %v", a2, h2 != h1, files2)
	}
	// And a plain Load agrees.
	all, _ := ReadPath(dir)
	if snap, diags := Load(all); diags.HasErrors() || snap.Hash != h2 {
		t.Errorf("Load: %v, hash %v want %s", diags, snap, h2)
	}
}
