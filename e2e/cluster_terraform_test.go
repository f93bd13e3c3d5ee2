package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// backendsOnOnePort starts an HTTP backend on each of ips, all on one port: a pool's check
// written in Terraform has one port for every member.
func backendsOnOnePort(t *testing.T, ips ...string) ([]*backend, string) {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Skipf("cannot listen on %s (loopback aliases): %v", ips[0], err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < len(ips) {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		var bs []*backend
		for _, ln := range lns {
			b := &backend{t: t, addr: ln.Addr().String()}
			b.serve(ln)
			t.Cleanup(b.stop)
			bs = append(bs, b)
		}
		return bs, port
	}
	t.Fatal("no port free on every backend address")
	return nil, ""
}

// TestClusterTerraform: a Terraform apply through node 0 of a three-node cluster creates a
// pool with an http check and a weighted service; every node answers it, and a backend
// that dies leaves the answers of all three, checked by two healthd reporters that every
// node found through etcd.
func TestClusterTerraform(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("TF_ACC is not set (make test sets it); this test runs tofu")
	}
	tofu := tofuBinary(t)
	c := startCluster(t, 3, 3)
	etcdArgs := []string{"-etcd-endpoints", strings.Join(c.etcd.Endpoints(), ","), "-etcd-prefix", "/" + t.Name() + "/"}
	for _, id := range []string{"h1", "h2"} {
		dir := writePolicy(t, map[string]string{"zone.hcl": clusterPolicy})
		start(t, "healthd", "addr", append([]string{"-policy", dir, "-listen", "127.0.0.1:0", "-id", id,
			"-policy-cache", filepath.Join(dir, "..", "cache-"+id)}, etcdArgs...)...)
	}
	bs, port := backendsOnOnePort(t, "127.0.0.51", "127.0.0.52", "127.0.0.53")

	work := t.TempDir()
	cfg := fmt.Sprintf(`terraform {
  required_providers {
    glbdns = { source = "glbdns/glbdns" }
  }
}

provider "glbdns" {
  endpoint = %q
}

resource "glbdns_pool" "web" {
  name = "web"
  members = [
    { name = "m1", address = "127.0.0.51", weight = 2 },
    { name = "m2", address = "127.0.0.52" },
    { name = "m3", address = "127.0.0.53" },
  ]
  checks = [{ name = "http", port = %s, path = "/healthz", interval = "1s", timeout = "500ms", rise = 1, fall = 2 }]
}

resource "glbdns_service" "www" {
  name    = "www.glb.test"
  policy  = "weighted"
  pools   = [glbdns_pool.web.name]
  answers = 3
}
`, c.nodes[0].admin, port)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	run := tofuRunner(t, tofu, work, c.token)
	if out, err := run("apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("tofu apply: %v\n%s", err, out)
	}
	applied := time.Now()
	all := "127.0.0.51,127.0.0.52,127.0.0.53"
	for i, n := range c.nodes {
		eventually(t, 10*time.Second, "the node answers the new service", func() bool { return n.answer(t, "www.glb.test") == all })
		// Nodes are polled one after another: a figure is when the node was seen to answer.
		t.Logf("MEASURE tofu apply through node 0 -> node %d answers: within %v", i, time.Since(applied).Round(time.Millisecond))
	}
	// Every member checked by both reporters before the backend dies, so that what follows
	// measures the death and not the first checks.
	for _, n := range c.nodes {
		eventually(t, 15*time.Second, "both reporters up on every member", func() bool {
			var st struct {
				Services []struct {
					Name  string
					Pools []struct {
						Members []struct{ Status string }
					}
				}
			}
			getJSON(t, n.admin+"/v1/state", &st)
			for _, s := range st.Services {
				for _, p := range s.Pools {
					for _, m := range p.Members {
						if m.Status != "up" {
							return false
						}
					}
				}
			}
			return len(st.Services) == 1
		})
	}
	bs[0].stop()
	died := time.Now()
	for i, n := range c.nodes {
		eventually(t, 10*time.Second, "the dead backend leaves the node's answers", func() bool {
			r := query(t, "udp", n.dns, "www.glb.test", dns.TypeA)
			return r.Rcode == dns.RcodeSuccess && !strings.Contains(strings.Join(answerAddrs(r), ","), "127.0.0.51")
		})
		t.Logf("MEASURE backend death -> out of node %d's answers: %v (interval 1s, fall 2)", i, time.Since(died).Round(time.Millisecond))
	}
	if out, err := run("destroy", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("tofu destroy: %v\n%s", err, out)
	}
}
