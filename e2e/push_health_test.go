package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// pushHealth POSTs a pushed report with token and returns the status and body.
func pushHealth(t *testing.T, admin, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, admin+"/v1/health/report", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPushedHealth: a report pushed with the report token (TTL 5 s) takes a member out of
// the answers within 1 s; with no renewal the pusher goes stale after the TTL (its vote
// stops counting: the member is back once -health-grace passes, as for a silent healthd),
// never down for being silent. The report token pushes and does nothing else; bad pushes
// are refused with a reason.
func TestPushedHealth(t *testing.T) {
	dir := t.TempDir()
	reportTok := filepath.Join(dir, "report-token")
	if err := os.WriteFile(reportTok, []byte("push-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, dns, _ := startGLBDNS(t, map[string]string{"glb.hcl": `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "m0" { address = "192.0.2.10" }
  member "m1" { address = "192.0.2.11" }
}
service "web.glb.test" {
  policy  = "round_robin"
  pools   = ["web"]
  answers = 2
}
`}, "-admin", "127.0.0.1:0", "-report-token-file", reportTok, "-health-grace", "1s")
	admin := adminURL(t, p)
	if got := answerSet(t, dns, "web.glb.test"); got != "192.0.2.10,192.0.2.11" {
		t.Fatalf("before any push: %s", got)
	}

	for _, tc := range []struct {
		token, body string
		status      int
		says        string
	}{
		{"wrong", `{"reporter":"fn","ttl":"5s","members":[]}`, 403, "wrong report token"},
		{"push-secret", `{"reporter":"fn","ttl":"0s","members":[]}`, 400, "ttl"},
		{"push-secret", `{"reporter":"fn","ttl":"5s","members":[{"pool":"web","member":"nope","status":"down"}]}`, 400, "web/nope"},
		{"push-secret", `{"reporter":"bad name","ttl":"5s","members":[]}`, 400, "reporter"},
		{"push-secret", `{"reporter":"fn","ttl":"5s","members":[{"pool":"web","member":"m0","status":"sideways"}]}`, 400, "status"},
	} {
		if status, body := pushHealth(t, admin, tc.token, tc.body); status != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("push %s: %d %s, want %d naming %q", tc.body, status, body, tc.status, tc.says)
		}
	}
	// The report token reads and writes nothing else.
	req, _ := http.NewRequest(http.MethodPost, admin+"/v1/pools", strings.NewReader(`{"name":"x","members":[]}`))
	req.Header.Set("Authorization", "Bearer push-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("a pool write with the report token: %v %v, want 403", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	pushed := time.Now()
	status, body := pushHealth(t, admin, "push-secret", `{"reporter":"fn","ttl":"5s","members":[{"pool":"web","member":"m0","status":"down","reason":"cold start failed"},{"pool":"web","member":"m1","status":"up"}]}`)
	if status != 200 || !strings.Contains(body, `"reporter": "push:fn"`) {
		t.Fatalf("push: %d %s", status, body)
	}
	took := eventually(t, time.Second, "m0 out of the answers within 1 s of the push", func() bool {
		return answerSet(t, dns, "web.glb.test") == "192.0.2.11"
	})
	t.Logf("m0 out of the answers %v after the push", took.Round(time.Millisecond))
	if st := getState(t, admin); !strings.Contains(st, "cold start failed") || !strings.Contains(st, "push:fn") {
		t.Errorf("/v1/state shows neither the pushed reason nor the pusher: %.600s", st)
	}
	// Not renewed: it holds for the TTL, then the pusher is stale, then Grace (1 s) ends.
	eventually(t, 10*time.Second, "m0 back after the TTL and the grace", func() bool {
		return answerSet(t, dns, "web.glb.test") == "192.0.2.10,192.0.2.11"
	})
	if back := time.Since(pushed); back < 5*time.Second {
		t.Errorf("m0 back %v after a push with a 5 s TTL", back)
	} else {
		t.Logf("m0 back %v after the push (TTL 5 s, grace 1 s)", back.Round(time.Millisecond))
	}
	if st := getState(t, admin); !strings.Contains(st, `"fresh": false`) {
		t.Errorf("the pusher is not stale in /v1/state: %.600s", st)
	}
}

func getState(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/v1/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestClusterPushedHealth: a report pushed through one node (TTL 5 s) takes the member out
// of another node's answers within 1 s, through etcd; not renewed, it goes stale on that
// node too (the member back after the TTL and -health-grace). A node started after a push
// counts it from etcd.
func TestClusterPushedHealth(t *testing.T) {
	c, n0, n1, both, reportTok := startPushCluster(t, "-health-grace", "1s")

	pushed := time.Now()
	status, body := pushHealth(t, n0.admin, "push-secret", `{"reporter":"fn","ttl":"5s","members":[{"pool":"web","member":"m0","status":"down","reason":"cold start failed"}]}`)
	if status != 200 {
		t.Fatalf("push through node 0: %d %s", status, body)
	}
	if got := n0.answer(t, "web.glb.test"); got != "192.0.2.11" {
		t.Errorf("node 0 answers %s once the push returned, want m0 out", got)
	}
	eventually(t, time.Second, "m0 out of node 1's answers within 1 s of the push through node 0", func() bool {
		return n1.answer(t, "web.glb.test") == "192.0.2.11"
	})
	t.Logf("MEASURE push through node 0 -> m0 out of node 1's answers at most %v after the push was sent", time.Since(pushed).Round(time.Millisecond))
	if _, st := adminCall(t, "GET", n1.admin+"/v1/state", c.token, nil); !strings.Contains(st, "cold start failed") || !strings.Contains(st, "push:fn") {
		t.Errorf("node 1's /v1/state shows neither the pushed reason nor the pusher: %.600s", st)
	}
	eventually(t, 15*time.Second, "m0 back on node 1 after the TTL and the grace", func() bool {
		return n1.answer(t, "web.glb.test") == both
	})
	if back := time.Since(pushed); back < 5*time.Second {
		t.Errorf("m0 back on node 1 %v after a push with a 5 s TTL", back)
	} else {
		t.Logf("MEASURE m0 back on node 1 %v after the push (TTL 5 s, grace 1 s)", back.Round(time.Millisecond))
	}
	if _, st := adminCall(t, "GET", n1.admin+"/v1/state", c.token, nil); !strings.Contains(st, `"fresh": false`) {
		t.Errorf("the pusher is not stale on node 1: %.600s", st)
	}

	// Pushed through node 1 this time, and seen by a node that starts after the push.
	if status, body := pushHealth(t, n1.admin, "push-secret", `{"reporter":"fn","ttl":"1m","members":[{"pool":"web","member":"m0","status":"down"}]}`); status != 200 {
		t.Fatalf("push through node 1: %d %s", status, body)
	}
	n2 := c.startNode(2, "-report-token-file", reportTok, "-health-grace", "1s")
	eventually(t, 10*time.Second, "a node started after the push counts it", func() bool {
		return n2.answer(t, "web.glb.test") == "192.0.2.11"
	})
	eventually(t, time.Second, "node 0 counts the push through node 1", func() bool {
		return n0.answer(t, "web.glb.test") == "192.0.2.11"
	})
}

// TestClusterPushWithoutEtcd: with every etcd member stopped, a push through node 0 is
// answered 503 with Retry-After: 1 and a reason saying the report is counted by that node
// only (docs/health-api.md, "Cluster"): node 0 takes the member out of its answers, node 1,
// which cannot hear of it, keeps answering as before. With etcd back, the same push again
// is 200 and reaches node 1.
func TestClusterPushWithoutEtcd(t *testing.T) {
	c, n0, n1, both, _ := startPushCluster(t)
	c.etcd.StopAll()

	const report = `{"reporter":"fn","ttl":"1m","members":[{"pool":"web","member":"m0","status":"down","reason":"cold start failed"}]}`
	req, err := http.NewRequest(http.MethodPost, n0.admin+"/v1/health/report", strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer push-secret")
	sent := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("push with etcd down: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("MEASURE push with etcd down answered in %v", time.Since(sent).Round(time.Millisecond))
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
		resp.Header.Get("Retry-After") != "1" || !strings.Contains(e.Error, "counted by this node only, not shared with the cluster") {
		t.Fatalf("push with etcd down: %d Retry-After %q %s, want 503, 1 and a JSON error saying it is counted by this node only",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if got := n0.answer(t, "web.glb.test"); got != "192.0.2.11" {
		t.Errorf("node 0 answers %s after the 503, want m0 out: it counts the push", got)
	}
	for i := 0; i < 20; i++ { // ~2 s
		if got := n1.answer(t, "web.glb.test"); got != both {
			t.Fatalf("node 1 answers %s with etcd down, want %s unchanged", got, both)
		}
		if got := n0.answer(t, "web.glb.test"); got != "192.0.2.11" {
			t.Fatalf("node 0 answers %s with etcd down, want m0 still out", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, m := range c.etcd.Members {
		c.etcd.Restart(m)
	}
	// The client reconnects with a backoff: push until etcd takes it, as the 503 says to.
	eventually(t, 20*time.Second, "a push accepted with etcd back", func() bool {
		status, _ := pushHealth(t, n0.admin, "push-secret", report)
		return status == 200
	})
	eventually(t, 5*time.Second, "node 1 counts the push made with etcd back", func() bool {
		return n1.answer(t, "web.glb.test") == "192.0.2.11"
	})
	if got := n0.answer(t, "web.glb.test"); got != "192.0.2.11" {
		t.Errorf("node 0 answers %s, want m0 out", got)
	}
}

// startPushCluster is a cluster of two nodes on one etcd member, with the report token
// "push-secret", serving web.glb.test over pool web's m0 (192.0.2.10) and m1
// (192.0.2.11), made through node 0; both is that answer set, reportTok the token's file.
func startPushCluster(t *testing.T, extra ...string) (c *testCluster, n0, n1 *clusterNode, both, reportTok string) {
	t.Helper()
	reportTok = filepath.Join(t.TempDir(), "report-token")
	if err := os.WriteFile(reportTok, []byte("push-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = startCluster(t, 1, 2, append([]string{"-report-token-file", reportTok}, extra...)...)
	n0, n1 = c.nodes[0], c.nodes[1]
	two := 2
	if code, body := adminCall(t, "PUT", n0.admin+"/v1/pools/web", c.token, api.Pool{Name: "web",
		Members: []api.Member{{Name: "m0", Address: "192.0.2.10"}, {Name: "m1", Address: "192.0.2.11"}}}); code != 201 {
		t.Fatalf("create pool: %d %s", code, body)
	}
	if code, body := adminCall(t, "PUT", n0.admin+"/v1/services/web.glb.test", c.token,
		api.Service{Name: "web.glb.test", Policy: "round_robin", Pools: []string{"web"}, Answers: &two}); code != 201 {
		t.Fatalf("create service: %d %s", code, body)
	}
	both = "192.0.2.10,192.0.2.11"
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, "every node serves the pool", func() bool { return n.answer(t, "web.glb.test") == both })
	}
	return c, n0, n1, both, reportTok
}
