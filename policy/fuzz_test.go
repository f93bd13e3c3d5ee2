package policy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/tools/txtar"
)

// fuzzSeeds adds the .hcl files of the golden policies (testdata/*.txtar) as seeds.
func fuzzSeeds(f *testing.F) {
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden files: %v", err)
	}
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if strings.HasSuffix(file.Name, ".hcl") {
				f.Add(file.Data)
			}
		}
	}
	f.Add([]byte("pool \"a\" {\n  member \"m\" {\n    address = \"192.0.2.1\"\n  }\n}\n"))
	f.Add([]byte("pool \"a\" { region = \"e\\\"u\" }\nx = 1\n"))
	f.Add([]byte("pool \"a\" {\n  x = <<EOT\nhi\nEOT\n}\n"))
	f.Add([]byte("pool \"a\" {\r\n}\r\n"))
	f.Add([]byte("zone \"example.com\" {\n"))
}

// fuzzPolicyName is the name the fuzzed policy file is loaded as. Its directory does not
// exist, so relative zone-file and GeoIP paths name nothing.
const fuzzPolicyName = "/nonexistent-glbdns-fuzz/p.hcl"

// FuzzLoad loads arbitrary bytes as a policy file. Properties: no panic; a snapshot with
// no errors or errors with no snapshot; every error points into the policy file
// (file:line:col), except zone-file errors, which point at the file attribute; loading
// the file cut into chunks at every top-level block gives the same result.
func FuzzLoad(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, diags := Load([]File{{Name: fuzzPolicyName, Data: data}})
		if (snap == nil) != diags.HasErrors() {
			t.Fatalf("snapshot %v with errors %v", snap != nil, diags)
		}
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			if d.Subject == nil || d.Subject.Filename != fuzzPolicyName || d.Subject.Start.Line < 1 || d.Subject.Start.Column < 1 {
				t.Fatalf("error without a position in the policy file: subject %v: %s: %s", d.Subject, d.Summary, d.Detail)
			}
		}
		// The same file cut into chunks at every top-level block (hclparse) must load
		// the same: a wrong cut falls back to a whole-file parse.
		defer func(n int) { chunkSize = n }(chunkSize)
		chunkSize = 1
		csnap, cdiags := Load([]File{{Name: fuzzPolicyName, Data: data}})
		if (snap == nil) != (csnap == nil) || diags.Error() != cdiags.Error() {
			t.Fatalf("chunked load differs:\nwhole   %v %v\nchunked %v %v", snap != nil, diags, csnap != nil, cdiags)
		}
		if snap != nil && snap.Hash != csnap.Hash {
			t.Fatalf("chunked load hash differs")
		}
	})
}
