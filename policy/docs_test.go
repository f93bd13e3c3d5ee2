package policy

import (
	"os"
	"regexp"
	"testing"
)

// TestDocsExamples loads every hcl example of docs/policy.md together, as CoreDNS's
// readme_test does, so that the reference cannot drift from the language.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d hcl examples, want one per block kind", len(blocks))
	}
	var src []byte
	for _, b := range blocks {
		src = append(src, b[1]...)
	}
	// The zone example names a zone file; give it one.
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/glb.example.com.zone", []byte("$ORIGIN glb.example.com.\nmail IN A 192.0.2.25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, diags := Load([]File{{Name: dir + "/policy.hcl", Data: src}})
	if diags.HasErrors() {
		t.Fatalf("docs examples do not load:\n%s", diags.Error())
	}
	if len(snap.Services) != 7 || len(snap.Pools) != 10 {
		t.Errorf("got %d services, %d pools; want 7 and 10", len(snap.Services), len(snap.Pools))
	}
	for _, svc := range snap.Services {
		if srv := svc.HasSRV(); srv != (svc.Name == "_https._tcp.api.glb.example.com.") {
			t.Errorf("service %s: HasSRV %v", svc.Name, srv)
		}
	}
	if city, asn := snap.GeoIPPaths(); city != dir+"/GeoIP/GeoLite2-City.mmdb" || asn != dir+"/GeoIP/GeoLite2-ASN.mmdb" {
		t.Errorf("geoip paths %q, %q", city, asn)
	}
}
