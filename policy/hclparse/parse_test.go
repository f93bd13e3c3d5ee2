package hclparse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// flattenBodies lists every block and attribute under the bodies with its source range,
// in order: two parses are the same policy when their lists are equal.
func flattenBodies(bodies []*hclsyntax.Body) []string {
	var out []string
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		// Attributes are a map: list them in source order.
		var attrs []*hclsyntax.Attribute
		for _, a := range b.Attributes {
			attrs = append(attrs, a)
		}
		for i := 1; i < len(attrs); i++ {
			for j := i; j > 0 && attrs[j].SrcRange.Start.Byte < attrs[j-1].SrcRange.Start.Byte; j-- {
				attrs[j], attrs[j-1] = attrs[j-1], attrs[j]
			}
		}
		for _, a := range attrs {
			v, _ := a.Expr.Value(nil)
			out = append(out, fmt.Sprintf("attr %s=%#v @%s", a.Name, v, a.SrcRange))
		}
		for _, blk := range b.Blocks {
			out = append(out, fmt.Sprintf("block %s %q @%s", blk.Type, blk.Labels, blk.Range()))
			walk(blk.Body)
		}
	}
	for _, b := range bodies {
		walk(b)
	}
	return out
}

func TestParseFilesChunks(t *testing.T) {
	cases := []struct {
		name       string
		src        string
		wantChunks int // bodies of the chunked parse; 1 when it falls back to a whole parse
		wantErrors int
	}{
		{
			name: "blocks",
			src: "pool \"a\" {\n  member \"m\" { address = \"192.0.2.1\" }\n}\n" +
				"# pool \"commented\" {\n/* zone \"x\" {\n}\npool \"y\" { */\n" +
				"service \"s.example.\" {\n  pools = [\"a\"]\n}\n" +
				"zone \"example.\" {\n  nameservers = [\"ns.example.\"]\n  record \"t\" {\n    type = \"TXT\"\n    values = [\"{\", \"}\\\"\\n{\"]\n  }\n}\n",
			wantChunks: 3,
		},
		{
			name: "heredoc holding a block",
			src: "zone \"example.\" {\n  nameservers = [\"ns.example.\"]\n  x = <<EOT\n}\npool \"fake\" {\n}\nEOT\n}\n" +
				"pool \"a\" {\n}\npool \"b\" {\n  y = <<-EOT\n    }\n    EOT\n}\n",
			wantChunks: 3,
		},
		{
			name:       "top-level attribute falls back",
			src:        "pool \"a\" {\n}\nx = 1\npool \"b\" {\n}\nx = 2\n",
			wantChunks: 1,
			wantErrors: 1, // "Attribute redefined", only a whole parse sees it
		},
		{
			name:       "syntax error falls back",
			src:        "pool \"a\" {\n  region = \n}\npool \"b\" {\n}\n",
			wantChunks: 1,
			wantErrors: 1,
		},
		{
			name: "unicode columns",
			src: "pool \"é\" {\n  region = \"ü\"\n}\n" +
				"pool \"b\" {\n  region = \"\U0001F600\"\n}\n",
			wantChunks: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := File{Name: "p.hcl", Data: []byte(tc.src)}
			whole, wdiags := hclsyntax.ParseConfig(f.Data, f.Name, hcl.InitialPos)
			got := ParseFiles([]File{f, f}, 1)[0]
			one := ParseFiles([]File{f}, DefaultChunkSize)[0]
			if len(got.Bodies) != tc.wantChunks {
				t.Errorf("%d bodies, want %d", len(got.Bodies), tc.wantChunks)
			}
			if len(one.Bodies) != 1 {
				t.Errorf("unsplit parse: %d bodies, want 1", len(one.Bodies))
			}
			if got.Diags.Error() != wdiags.Error() || len(wdiags.Errs()) != tc.wantErrors {
				t.Errorf("diagnostics %q, want %q (%d errors)", got.Diags.Error(), wdiags.Error(), tc.wantErrors)
			}
			if one.Diags.Error() != wdiags.Error() {
				t.Errorf("unsplit diagnostics %q, want %q", one.Diags.Error(), wdiags.Error())
			}
			want := strings.Join(flattenBodies([]*hclsyntax.Body{whole.Body.(*hclsyntax.Body)}), "\n")
			if g := strings.Join(flattenBodies(got.Bodies), "\n"); g != want {
				t.Errorf("chunked parse differs:\n%s\nwant\n%s", g, want)
			}
			if g := strings.Join(flattenBodies(one.Bodies), "\n"); g != want {
				t.Errorf("unsplit parse differs:\n%s\nwant\n%s", g, want)
			}
		})
	}
}

func TestParseFilesSameName(t *testing.T) {
	// hashicorp's hclparse.Parser hands a second file of the same name the first one's
	// parse, with no diagnostics; ParseFiles does the same, so that a policy loads as it
	// did through that parser.
	a := File{Name: "p.hcl", Data: []byte("pool \"a\" {\n}\n")}
	b := File{Name: "p.hcl", Data: []byte("pool \"b\" {\n  = \n}\n")}
	got := ParseFiles([]File{a, b}, DefaultChunkSize)
	if len(got[1].Diags) != 0 {
		t.Errorf("second file diagnostics: %v", got[1].Diags)
	}
	if g := flattenBodies(got[1].Bodies); len(g) != 1 || !strings.Contains(g[0], `"a"`) {
		t.Errorf("second file parsed as %q, want the first file's pool \"a\"", g)
	}
}
