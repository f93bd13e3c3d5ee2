// Package layout holds the test that keeps the rooms of the house to their jobs: which
// package may import which, as DESIGN.md's table of rooms says ("owns" and "must not
// own"), checked on the imports of every package's non-test files.
package layout

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/glbdns/glbdns"

// rule is what the packages under a folder of the repository may not import: a prefix
// of an import path ("net/http" also forbids net/http/httptest); allow lists exceptions.
type rule struct {
	room       string   // a package path relative to the module, and everything below it
	why        string   // the room's job, as the package doc says it
	forbid     []string // import path prefixes ("~/" is the module)
	allow      []string // prefixes allowed despite forbid
	onlyStdlib bool
}

var rules = []rule{
	{room: "api", why: "JSON shapes with no dependencies", onlyStdlib: true},
	{room: "zones", why: "zone data and lookups", forbid: []string{"~/", "net/http"}},
	{room: "policy", why: "the language, compile, selection: no sockets, probing or HTTP",
		forbid: []string{"~/", "net/http"}, allow: []string{"~/api", "~/zones", "~/policy", "~/dnssec"}},
	{room: "policy/store", why: "the store of managed objects: no HTTP", forbid: []string{"net/http"}},
	{room: "health", why: "the merged view: no probing, no DNS, no HTTP",
		forbid: []string{"~/", "net/http"}, allow: []string{"~/api", "~/policy"}},
	{room: "dnsserver", why: "the DNS wire server only: no HTTP, no HCL, no probing",
		forbid: []string{"~/", "net/http", "github.com/hashicorp/hcl"}, allow: []string{"~/policy", "~/zones", "~/dnssec", "~/xdp"}},
	{room: "dnsserver", why: "the DNS wire server reads the store's snapshots, never the store",
		forbid: []string{"~/policy/store"}},
	{room: "healthd", why: "probers, scheduler and the health API: no DNS answers",
		forbid: []string{"~/dnsserver", "~/daemon", "~/admin", "~/health", "~/policy/store", "~/terraform"}},
	{room: "healthd/client", why: "transport only", forbid: []string{"~/"}, allow: []string{"~/api"}},
	{room: "dnssec", why: "keys and signatures: no sockets, no policy", forbid: []string{"~/", "net"}},
	{room: "fetch", why: "the operator's files from a URL: no DNS, no store", forbid: []string{"~/"}, allow: []string{"~/policy"}},
	{room: "fetch", why: "the operator's files from a URL, which the store reads, never the store", forbid: []string{"~/policy/store"}},
	{room: "xdp", why: "frames and rings past the kernel's UDP: no DNS", forbid: []string{"~/", "github.com/miekg/dns"}},
	{room: "cluster", why: "membership on etcd leases: no server", forbid: []string{"~/"}, allow: []string{"~/api"}},
	{room: "admin", why: "the admin HTTP surface, not the process", forbid: []string{"~/daemon", "~/healthd", "~/terraform", "~/cmd"}},
	{room: "daemon", why: "the glbdns process", forbid: []string{"~/terraform", "~/cmd"}},
	{room: "terraform", why: "the provider: nothing the server needs",
		forbid: []string{"~/"}, allow: []string{"~/api", "~/terraform", "~/internal/buildinfo"}},
}

// testOnly are packages that exist to serve tests and may reach into the server.
var testOnly = map[string]bool{"terraform/internal/glbtest": true}

func TestRoomsKeepToTheirJobs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string][]string{} // package path relative to the module -> imports
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here (or only tests)
		}
		rel, _ := filepath.Rel(root, path)
		pkgs[filepath.ToSlash(rel)] = p.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"api", "dnssec", "fetch", "xdp", "zones", "policy", "health", "dnsserver", "healthd", "healthd/client", "admin", "daemon", "terraform"} {
		if _, ok := pkgs[room]; !ok {
			t.Errorf("no package %s: the rules below would check nothing", room)
		}
	}
	for rel, imports := range pkgs {
		if testOnly[rel] {
			continue
		}
		for _, r := range rules {
			if rel != r.room && !strings.HasPrefix(rel, r.room+"/") {
				continue
			}
			if rel != r.room && r.room == "policy" && strings.HasPrefix(rel, "policy/store") {
				continue // the store has its own rule: it compiles policies
			}
			for _, imp := range imports {
				if r.onlyStdlib && strings.Contains(strings.Split(imp, "/")[0], ".") {
					t.Errorf("%s imports %s: %s (standard library only)", rel, imp, r.why)
				}
				if matches(imp, r.forbid) && !matches(imp, r.allow) {
					t.Errorf("%s imports %s: %s", rel, imp, r.why)
				}
			}
		}
		if rel != "cmd/glbdns" && slices.Contains(imports, module+"/daemon") {
			t.Errorf("%s imports the daemon: only cmd/glbdns (and test helpers) may", rel)
		}
	}
}

func matches(imp string, prefixes []string) bool {
	for _, p := range prefixes {
		p = strings.Replace(p, "~/", module+"/", 1)
		if imp == strings.TrimSuffix(p, "/") || strings.HasPrefix(imp, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}
