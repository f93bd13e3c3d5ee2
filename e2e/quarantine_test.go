package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
)

// TestQuarantineAtStart: glbdns starts on a managed folder holding a broken document,
// serves the rest, and names the document in /v1/state with its error.
func TestQuarantineAtStart(t *testing.T) {
	dir := writePolicy(t, map[string]string{"zone.hcl": clusterPolicy + `
pool "web" {
  member "a" {
    address = "192.0.2.10"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
`})
	managed := dir + ".managed"
	if err := os.MkdirAll(managed, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(managed, "pool-broken.hcl")
	if err := os.WriteFile(broken, []byte("pool \"broken\" {\n  member \"a\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, addr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir, "-admin", "127.0.0.1:0")
	admin := adminURL(t, g)
	n := &clusterNode{dns: addr}
	if got := n.answer(t, "www.glb.test."); got != "192.0.2.10" {
		t.Fatalf("www.glb.test with a broken managed document: %s", got)
	}
	var st api.State
	getJSON(t, admin+"/v1/state", &st)
	// Named relative to the directory that holds the policy path.
	shown := filepath.Join(filepath.Base(dir)+".managed", "pool-broken.hcl")
	if len(st.Policy.Quarantined) != 1 || st.Policy.Quarantined[0].Path != shown || !strings.HasPrefix(st.Policy.Quarantined[0].Error, shown+":2:") {
		t.Fatalf("/v1/state quarantined: %+v, want %s with its error", st.Policy.Quarantined, shown)
	}
	if !strings.Contains(g.Logs(), "Managed document quarantined") {
		t.Error("the quarantine is not in the log")
	}
}
