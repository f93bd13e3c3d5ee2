package hclparse

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// fuzzSeeds adds the golden policies and inputs on both sides of the subset's edges.
func fuzzSeeds(f *testing.F) {
	for _, data := range goldenPolicies(f) {
		f.Add(data)
	}
	f.Add([]byte("pool \"a\" {\n  member \"m\" {\n    address = \"192.0.2.1\"\n  }\n}\n"))
	f.Add([]byte("pool \"a\" { region = \"e\\\"u\" }\nx = 1\n"))
	f.Add([]byte("pool \"a\" {\n  x = <<EOT\nhi\nEOT\n}\n"))
	f.Add([]byte("pool \"a\" {\r\n}\r\n"))
	f.Add([]byte("zone \"example.com\" {\n"))
}

// FuzzFastParseSame: whatever fastParse accepts, hclsyntax parses without errors into
// exactly the same AST (nodes, values, ranges), from the start of a file and from a
// position inside one (a chunk).
func FuzzFastParseSame(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, start := range []hcl.Pos{hcl.InitialPos, {Line: 7, Column: 1, Byte: 123}} {
			got, ok := fastParse(data, "p.hcl", start)
			if !ok {
				return
			}
			hf, diags := hclsyntax.ParseConfig(data, "p.hcl", start)
			if diags.HasErrors() {
				t.Fatalf("fastParse accepted what hclsyntax refuses: %v", diags)
			}
			want := hf.Body.(*hclsyntax.Body)
			if !sameAST(got, want) {
				t.Fatalf("AST differs from hclsyntax's:\n%s\nwant\n%s",
					strings.Join(flattenBodies([]*hclsyntax.Body{got}), "\n"), strings.Join(flattenBodies([]*hclsyntax.Body{want}), "\n"))
			}
		}
	})
}
