package policy

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDeclared(t *testing.T) {
	files := []File{
		{Name: "a.hcl", Data: []byte("pool \"p1\" {\n  member \"m\" {\n    address = \"192.0.2.1\"\n  }\n}\nservice \"www.example.com\" {\n  pools = [\"p1\"]\n}\n")},
		// Not the fast parser's subset (a heredoc), and a pool with two labels: skipped.
		{Name: "b.hcl", Data: []byte("pool \"p2\" {\n  region = <<EOT\neu\nEOT\n}\npool \"x\" \"y\" {\n}\nzone \"example.com\" {\n}\n")},
	}
	// Large enough to be cut into chunks and parsed in parallel.
	var big strings.Builder
	want := []string{"p1", "p2"}
	for i := range 3000 {
		n := "big-" + strconv.Itoa(i)
		want = append(want, n)
		big.WriteString("pool \"" + n + "\" {\n  member \"m\" {\n    address = \"192.0.2.1\"\n  }\n}\n")
	}
	files = append(files, File{Name: "big.hcl", Data: []byte(big.String())})
	defer func(n int) { chunkSize = n }(chunkSize)
	chunkSize = 4096

	pools, services := Declared(files)
	if !slices.Equal(pools, want) {
		t.Errorf("pools: %d, want %d: %v ...", len(pools), len(want), pools[:min(4, len(pools))])
	}
	if !slices.Equal(services, []string{"www.example.com"}) {
		t.Errorf("services = %v", services)
	}
}
