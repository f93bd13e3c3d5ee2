package hclparse

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"golang.org/x/tools/txtar"
)

// goldenPolicies returns the .hcl files of the policy package's golden cases
// (../testdata/*.txtar): the realistic inputs, hand-written in every style the
// language's tests needed. The key is "case.txtar/file.hcl".
func goldenPolicies(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob("../testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no golden policies: %v", err)
	}
	out := map[string][]byte{}
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range ar.Files {
			if strings.HasSuffix(f.Name, ".hcl") {
				out[filepath.Base(path)+"/"+f.Name] = f.Data
			}
		}
	}
	return out
}

// generatedPolicy is the shape of a generated policy (bench/genpolicy, daemon's
// BenchmarkLoadLarge): a zone, then pools of weighted members and a service each.
func generatedPolicy(pools, members int) []byte {
	var b strings.Builder
	b.WriteString("zone \"big.test\" {\n  nameservers = [\"ns1.big.test\"]\n  soa {\n    minimum = 60\n  }\n}\n")
	for i := range pools {
		fmt.Fprintf(&b, "pool \"p%d\" {\n", i)
		for j := range members {
			n := i*members + j
			fmt.Fprintf(&b, "  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight  = %d\n  }\n", j, n>>16&255, n>>8&255, n&255, j+1)
		}
		fmt.Fprintf(&b, "}\nservice \"s%d.big.test\" {\n  policy = \"weighted\"\n  pools  = [\"p%d\"]\n  ttl    = 30\n}\n", i, i)
	}
	return []byte(b.String())
}

// sameAST reports whether got is exactly hclsyntax's body want: nodes, values and
// ranges, the top-level body's own ranges included.
func sameAST(got, want *hclsyntax.Body) bool {
	return reflect.DeepEqual(got.Attributes, want.Attributes) && reflect.DeepEqual(got.Blocks, want.Blocks) &&
		got.SrcRange == want.SrcRange && got.EndRange == want.EndRange
}

// TestFastParseSame checks that fastParse builds exactly hclsyntax's AST for every input
// it accepts: the golden policies, generated policies and hand-written cases, each also
// parsed from a start position inside a file.
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
		{"leading blank lines", "\n\n  pool \"a\" {\n}\n", true},
		{"top-level attribute", "x = 1\n", true},
		{"generated", string(generatedPolicy(20, 3)), true},
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
	golden := goldenPolicies(t)
	for name, data := range golden {
		inputs = append(inputs, input{name: name, src: string(data)})
	}
	goldenAccepted := 0
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			_, isGolden := golden[in.name]
			for _, start := range []hcl.Pos{hcl.InitialPos, {Line: 7, Column: 1, Byte: 123}} {
				got, ok := fastParse([]byte(in.src), "p.hcl", start)
				if ok != in.accept && !isGolden { // golden inputs may go either way
					t.Fatalf("fastParse accepted = %v, want %v", ok, in.accept)
				}
				if !ok {
					continue
				}
				if isGolden && start == hcl.InitialPos {
					goldenAccepted++
				}
				hf, diags := hclsyntax.ParseConfig([]byte(in.src), "p.hcl", start)
				if diags.HasErrors() {
					t.Fatalf("fastParse accepted what hclsyntax refuses: %v", diags)
				}
				want := hf.Body.(*hclsyntax.Body)
				if !sameAST(got, want) {
					t.Errorf("AST differs from hclsyntax's:\n%s\nwant\n%s",
						strings.Join(flattenBodies([]*hclsyntax.Body{got}), "\n"), strings.Join(flattenBodies([]*hclsyntax.Body{want}), "\n"))
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
