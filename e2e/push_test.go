package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/internal/etcdtest"
)

// TestPolicyPush: glbctl policy push puts a policy directory into etcd; a node started
// with -policy-from-etcd and no policy files of its own serves it, and an edit pushed
// again (the time it took is logged); a push with an error is refused with file:line:col
// and changes nothing.
func TestPolicyPush(t *testing.T) {
	c := etcdtest.Start(t, 1)
	etcdFlags := []string{"-etcd-endpoints", strings.Join(c.Endpoints(), ","), "-etcd-prefix", "/" + t.Name() + "/"}
	dir := writePolicy(t, map[string]string{
		"zone.hcl": clusterPolicy,
		"web.hcl": `pool "web" {
  member "a" {
    address = "192.0.2.10"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
`})
	out, err := execBin(t, "glbctl", append(append([]string{"policy", "push"}, etcdFlags...), dir)...)
	if err != nil || !strings.Contains(out, "pushed 2 file(s)") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	_, addr := start(t, "glbdns", "addr", append([]string{"-listen", "127.0.0.1:0", "-policy-from-etcd",
		"-policy-cache", filepath.Join(t.TempDir(), "cache")}, etcdFlags...)...)
	n := &clusterNode{dns: addr}
	if got := n.answer(t, "www.glb.test."); got != "192.0.2.10" {
		t.Fatalf("www.glb.test from the pushed policy: %s", got)
	}

	edit := func(addr string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "web.hcl"), []byte(strings.Replace(`pool "web" {
  member "a" {
    address = "ADDR"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
`, "ADDR", addr, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("192.0.2.11")
	pushed := time.Now()
	if out, err := execBin(t, "glbctl", append(append([]string{"policy", "push"}, etcdFlags...), dir)...); err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	took := eventually(t, 5*time.Second, "the pushed edit served", func() bool { return n.answer(t, "www.glb.test.") == "192.0.2.11" })
	t.Logf("an edit pushed was served %v after the push returned (%v after it started)", took.Round(time.Millisecond), time.Since(pushed).Round(time.Millisecond))

	edit("not-an-address")
	out, err = execBin(t, "glbctl", append(append([]string{"policy", "push"}, etcdFlags...), dir)...)
	if err == nil || !strings.Contains(out, filepath.Join(dir, "web.hcl")+":3:") || !strings.Contains(out, "nothing pushed") {
		t.Fatalf("bad push: %v, want exit 1 and %s:3:col\n%s", err, filepath.Join(dir, "web.hcl"), out)
	}
	time.Sleep(500 * time.Millisecond) // what a node would take to install a push
	if got := n.answer(t, "www.glb.test."); got != "192.0.2.11" {
		t.Errorf("after a refused push the node answers %s", got)
	}
}
