package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/glbdns/glbdns/policy"
)

// TestREADMEPolicyExamples loads every ```hcl block of the README with the real loader, so
// the documentation cannot drift from the language.
func TestREADMEPolicyExamples(t *testing.T) {
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(src), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no hcl examples")
	}
	for i, b := range blocks {
		dir := t.TempDir()
		// The example imports a zone file; give it an empty one.
		if err := os.WriteFile(filepath.Join(dir, "glb.example.com.zone"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "readme.hcl")
		if err := os.WriteFile(name, []byte(b[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, diags := policy.LoadPath(name); diags.HasErrors() {
			t.Errorf("README hcl block %d does not load: %s", i+1, diags.Error())
		}
	}
}
