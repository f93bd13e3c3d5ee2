package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"golang.org/x/tools/txtar"
)

// TestFastParseSame checks that fastParse builds exactly hclsyntax's AST (nodes, values,
// ranges) for every input it accepts: the golden policies, the benchmark policies and
// hand-written cases, each also parsed from a start position inside a file.
func TestFastParseSame(t *testing.T) {
	type input struct {
		name   string
		src    string
		accept bool // fastParse must take it (the fast path is really used)
	}
	inputs := []input{
		{"plain", "pool \"a\" {\n  region = \"eu\"\n  member \"m\" {\n    address = \"192.0.2.1\"\n    weight  = 3\n  }\n\n}\n", true},
		{"lists and bools", "service \"s.example.\" {\n  pools = [ \"a\", \"b\" , ]\n  x = [1,2]\n  y = true\n  z = false\n}\n", true},
		{"comments", "# head\npool \"a\" {\n  // inside\n  region = \"eu\"\n   # indented\n}\n// tail\n", true},
		{"empty body and no label", "geoip {\n}\npool \"a\" \"b\" {\n}", true},
		{"tabs", "pool \"a\" {\n\tregion\t=\t\"eu\"\n}\n", true},
		{"top-level attribute", "x = 1\n", true},
		{"escape", "pool \"a\" {\n  region = \"e\\\"u\"\n}\n", false},
		{"template", "pool \"a\" {\n  region = \"${x}\"\n}\n", false},
		{"empty string", "pool \"a\" {\n  region = \"\"\n}\n", false},
		{"one-line block", "pool \"a\" { region = \"eu\" }\n", false},
		{"trailing comment", "pool \"a\" {\n  region = \"eu\" # eu\n}\n", false},
		{"fraction", "pool \"a\" {\n  weight = 1.5\n}\n", false},
		{"negative", "pool \"a\" {\n  weight = -1\n}\n", false},
		{"operator", "pool \"a\" {\n  weight = 1 + 2\n}\n", false},
		{"variable", "pool \"a\" {\n  weight = foo\n}\n", false},
		{"multi-line list", "pool \"a\" {\n  x = [\n    1,\n  ]\n}\n", false},
		{"duplicate attribute", "pool \"a\" {\n  x = 1\n  x = 2\n}\n", false},
		{"unclosed", "pool \"a\" {\n  x = 1\n", false},
		{"crlf", "pool \"a\" {\r\n}\r\n", false},
		{"unicode", "pool \"é\" {\n}\n", false},
		{"heredoc", "pool \"a\" {\n  x = <<EOT\nhi\nEOT\n}\n", false},
	}
	paths, _ := filepath.Glob("testdata/*.txtar")
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ar.Files {
			if strings.HasSuffix(f.Name, ".hcl") {
				inputs = append(inputs, input{name: filepath.Base(path) + "/" + f.Name, src: string(f.Data)})
			}
		}
	}
	dir := t.TempDir()
	for _, p := range []string{writeLargePolicy(t, dir, 20, 3), writeHugePolicy(t, dir, 10, 300)} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{name: filepath.Base(p), src: string(data), accept: true})
	}
	goldenAccepted := 0
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			for _, start := range []hcl.Pos{hcl.InitialPos, {Line: 7, Column: 1, Byte: 123}} {
				got, ok := fastParse([]byte(in.src), "p.hcl", start)
				golden := strings.Contains(in.name, ".txtar/")
				if ok != in.accept && !golden { // golden inputs may go either way
					t.Fatalf("fastParse accepted = %v, want %v", ok, in.accept)
				}
				if !ok {
					continue
				}
				if golden && start == hcl.InitialPos {
					goldenAccepted++
				}
				hf, diags := hclsyntax.ParseConfig([]byte(in.src), "p.hcl", start)
				if diags.HasErrors() {
					t.Fatalf("fastParse accepted what hclsyntax refuses: %v", diags)
				}
				want := hf.Body.(*hclsyntax.Body)
				if !reflect.DeepEqual(got.Attributes, want.Attributes) || !reflect.DeepEqual(got.Blocks, want.Blocks) {
					t.Errorf("AST differs from hclsyntax's:\n%s\nwant\n%s",
						strings.Join(flattenBodies([]hcl.Body{got}), "\n"), strings.Join(flattenBodies([]hcl.Body{want}), "\n"))
				}
			}
		})
	}
	// Most golden policies are plain HCL: if none is taken, the fast path is dead code.
	if goldenAccepted < 10 {
		t.Errorf("fastParse took %d golden policies, want at least 10", goldenAccepted)
	}
	t.Logf("fastParse took %d golden policies", goldenAccepted)
}
