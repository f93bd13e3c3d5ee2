package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/etcdtest"
)

// clusterPolicy is every node's operator policy: a zone; pools and services come through
// the admin API and are shared through etcd.
const clusterPolicy = `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
`

// clusterNode is one glbdns node of a test cluster.
type clusterNode struct {
	p     *proc
	dns   string // DNS address
	admin string // admin base URL
	args  []string
}

// testCluster is a real etcd cluster and glbdns nodes sharing a prefix of it.
type testCluster struct {
	t     *testing.T
	etcd  *etcdtest.Cluster
	nodes []*clusterNode
	token string
	dir   string // the operator policy, the same for every node
}

// startCluster starts an etcd cluster of etcdMembers and n glbdns nodes on it.
func startCluster(t *testing.T, etcdMembers, n int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, etcd: etcdtest.Start(t, etcdMembers), token: adminToken, dir: writePolicy(t, map[string]string{"zone.hcl": clusterPolicy})}
	for i := range n {
		c.startNode(i, extra...)
	}
	return c
}

// startNode starts node i (again, after a stop: same cache file, same id).
func (c *testCluster) startNode(i int, extra ...string) *clusterNode {
	c.t.Helper()
	tokenFile := filepath.Join(c.dir, "..", fmt.Sprintf("token-%d", i))
	if err := os.WriteFile(tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	var n *clusterNode
	if i < len(c.nodes) && c.nodes[i] != nil {
		n = c.nodes[i]
	} else {
		n = &clusterNode{args: append([]string{"-listen", "127.0.0.1:0", "-policy", c.dir,
			"-etcd-endpoints", strings.Join(c.etcd.Endpoints(), ","), "-etcd-prefix", "/" + c.t.Name() + "/",
			"-admin", "127.0.0.1:0", "-admin-token-file", tokenFile, "-node-id", fmt.Sprintf("n%d", i),
			"-policy-cache", filepath.Join(c.dir, "..", fmt.Sprintf("cache-%d", i))}, extra...)}
		for len(c.nodes) <= i {
			c.nodes = append(c.nodes, nil)
		}
		c.nodes[i] = n
	}
	n.p, n.dns = start(c.t, "glbdns", "addr", n.args...)
	n.admin = adminURL(c.t, n.p)
	return n
}

// answer is what node answers for name now: its addresses, sorted, or the rcode.
func (n *clusterNode) answer(t *testing.T, name string) string {
	t.Helper()
	r := query(t, "udp", n.dns, name, dns.TypeA)
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	a := answerAddrs(r)
	slices.Sort(a)
	return strings.Join(a, ",")
}

// put writes a pool of one member at addr through node.
func (c *testCluster) put(node *clusterNode, pool, addr string) (int, string) {
	c.t.Helper()
	return adminCall(c.t, "PUT", node.admin+"/v1/pools/"+pool, c.token,
		api.Pool{Name: pool, Members: []api.Member{{Name: "m", Address: addr}}})
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestClusterWritesReachEveryNode: a write through node 0 is served by node 0 when it
// returns, and by the other nodes soon after (measured over 100 writes).
func TestClusterWritesReachEveryNode(t *testing.T) {
	c := startCluster(t, 3, 3)
	if code, body := c.put(c.nodes[0], "web", "192.0.2.1"); code != 201 {
		t.Fatalf("create pool: %d %s", code, body)
	}
	if code, body := adminCall(t, "PUT", c.nodes[0].admin+"/v1/services/www.glb.test", c.token,
		api.Service{Name: "www.glb.test", Pools: []string{"web"}}); code != 201 {
		t.Fatalf("create service: %d %s", code, body)
	}
	var others []time.Duration
	const writes = 100
	for i := range writes {
		addr := fmt.Sprintf("192.0.2.%d", i%200+10)
		if code, body := c.put(c.nodes[0], "web", addr); code != 200 {
			t.Fatalf("write %d: %d %s", i, code, body)
		}
		written := time.Now()
		if got := c.nodes[0].answer(t, "www.glb.test"); got != addr {
			t.Fatalf("write %d: the node written through answers %s, want %s at once", i, got, addr)
		}
		for _, n := range c.nodes[1:] {
			eventually(t, 10*time.Second, "another node serves the write", func() bool { return n.answer(t, "www.glb.test") == addr })
			others = append(others, time.Since(written))
		}
	}
	t.Logf("MEASURE write through one node -> served by the other two (%d writes): p50 %v, p99 %v, max %v",
		writes, percentile(others, 0.5).Round(time.Millisecond), percentile(others, 0.99).Round(time.Millisecond),
		percentile(others, 1).Round(time.Millisecond))

	// /v1/cluster on any node lists the three, agreeing on the policy.
	eventually(t, 10*time.Second, "three nodes on one policy", func() bool {
		var cl api.Cluster
		getJSON(t, c.nodes[2].admin+"/v1/cluster", &cl)
		return len(cl.Nodes) == 3 && cl.PolicyHashes == 1
	})
}

// TestClusterIfMatchAcrossNodes: writers with the same If-Match through two nodes at once:
// one wins, the other gets 412, and no update is lost.
func TestClusterIfMatchAcrossNodes(t *testing.T) {
	c := startCluster(t, 3, 2)
	if code, body := c.put(c.nodes[0], "web", "192.0.2.1"); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	for round := range 20 {
		var p api.Pool
		eventually(t, 10*time.Second, "both nodes hold the pool", func() bool {
			var q api.Pool
			getJSON(t, c.nodes[0].admin+"/v1/pools/web", &p)
			getJSON(t, c.nodes[1].admin+"/v1/pools/web", &q)
			return p.Version != "" && p.Version == q.Version
		})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range 2 {
			wg.Go(func() {
				body := api.Pool{Name: "web", Region: fmt.Sprintf("r%d-%d", round, i), Members: p.Members}
				codes[i] = ifMatchPut(t, c.nodes[i].admin+"/v1/pools/web", c.token, p.Version, body)
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if codes[0] != 200 || codes[1] != 412 {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", round, codes)
		}
	}
}

func ifMatchPut(t *testing.T, url, token, version string, body any) int {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("PUT", url, strings.NewReader(string(data)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("If-Match", `"`+version+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := adminGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

// load queries every node in a loop until stop, counting the answers that are not want.
func load(t *testing.T, nodes []*clusterNode, name, want string, stop <-chan struct{}) (queries, wrong *atomic.Int64, done func()) {
	queries, wrong = &atomic.Int64{}, &atomic.Int64{}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			cl := &dns.Client{Net: "udp", Timeout: time.Second}
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, _, err := cl.Exchange(m, n.dns)
				queries.Add(1)
				if err != nil || r.Rcode != dns.RcodeSuccess || strings.Join(answerAddrs(r), ",") != want {
					wrong.Add(1)
				}
			}
		})
	}
	return queries, wrong, wg.Wait
}

// TestClusterSurvivesEtcdLeaderLoss: killing the etcd leader while the nodes answer a load
// loses no query and changes no answer; writes succeed again within seconds.
func TestClusterSurvivesEtcdLeaderLoss(t *testing.T) {
	c := startCluster(t, 3, 3)
	c.put(c.nodes[0], "web", "192.0.2.7")
	adminCall(t, "PUT", c.nodes[0].admin+"/v1/services/www.glb.test", c.token, api.Service{Name: "www.glb.test", Pools: []string{"web"}})
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, "every node serves the service", func() bool { return n.answer(t, "www.glb.test") == "192.0.2.7" })
	}
	stop := make(chan struct{})
	queries, wrong, wait := load(t, c.nodes, "www.glb.test", "192.0.2.7", stop)
	time.Sleep(500 * time.Millisecond) // load before the kill: the figure is about queries across it
	c.etcd.Kill(c.etcd.Leader())
	var code int
	took := eventually(t, 30*time.Second, "a write succeeds after the leader's death", func() bool {
		code, _ = c.put(c.nodes[1], "other", "192.0.2.8")
		return code == 201
	})
	time.Sleep(500 * time.Millisecond) // and load after it
	close(stop)
	wait()
	t.Logf("MEASURE etcd leader killed under load: %d queries, %d lost or wrong; writes succeed again %v after the kill",
		queries.Load(), wrong.Load(), took.Round(time.Millisecond))
	if wrong.Load() != 0 {
		t.Errorf("%d of %d queries lost or answered wrong while the etcd leader died", wrong.Load(), queries.Load())
	}
}

// TestClusterWithoutEtcd: with every etcd member stopped, answers stay as they were for a
// minute, writes get 503, and a node restarted meanwhile serves its cached policy.
func TestClusterWithoutEtcd(t *testing.T) {
	c := startCluster(t, 3, 2)
	c.put(c.nodes[0], "web", "192.0.2.9")
	adminCall(t, "PUT", c.nodes[0].admin+"/v1/services/www.glb.test", c.token, api.Service{Name: "www.glb.test", Pools: []string{"web"}})
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, "every node serves the service", func() bool { return n.answer(t, "www.glb.test") == "192.0.2.9" })
	}
	time.Sleep(time.Second) // the nodes write their caches off the write path
	c.etcd.StopAll()

	if code, body := c.put(c.nodes[0], "web", "192.0.2.10"); code != 503 {
		t.Errorf("write with etcd down: %d %s, want 503", code, body)
	}
	// Node 1 restarts while etcd is down: it serves its cache, and says so.
	c.nodes[1].p.stop()
	c.startNode(1)
	if got := c.nodes[1].answer(t, "www.glb.test"); got != "192.0.2.9" {
		t.Errorf("restarted node answers %s, want the cached policy's 192.0.2.9", got)
	}
	resp, err := http.Get(c.nodes[1].admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 512)
	nb, _ := resp.Body.Read(b)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b[:nb]), "cached policy") {
		t.Errorf("readyz of the node on its cache: %d %q", resp.StatusCode, b[:nb])
	}
	const without = 60 * time.Second
	for deadline := time.Now().Add(without); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		for i, n := range c.nodes {
			if got := n.answer(t, "www.glb.test"); got != "192.0.2.9" {
				t.Fatalf("node %d answers %s without etcd, want 192.0.2.9 unchanged", i, got)
			}
		}
	}
	t.Logf("MEASURE every etcd member stopped: answers unchanged for %v on both nodes, one of them restarted meanwhile", without)
}

// TestClusterReporters: healthd reporters register in etcd; a reporter added while the
// cluster runs is counted by every node with no restart, and one that stops drops out.
func TestClusterReporters(t *testing.T) {
	c := startCluster(t, 1, 2)
	files := map[string]string{"zone.hcl": clusterPolicy}
	etcdArgs := []string{"-etcd-endpoints", strings.Join(c.etcd.Endpoints(), ","), "-etcd-prefix", "/" + t.Name() + "/"}
	startReporter := func(id string) *proc {
		dir := writePolicy(t, files)
		p, _ := start(t, "healthd", "addr", append([]string{"-policy", dir, "-listen", "127.0.0.1:0", "-id", id,
			"-policy-cache", filepath.Join(dir, "..", "cache-"+id)}, etcdArgs...)...)
		return p
	}
	// A node counts a reporter when it watches it and has heard from it: its own
	// /v1/state lists the reporters health merges, and /v1/cluster those registered.
	counted := func(want int) func() bool {
		return func() bool {
			for _, n := range c.nodes {
				var st api.State
				getJSON(t, n.admin+"/v1/state", &st)
				fresh := 0
				for _, r := range st.Reporters {
					if r.Fresh {
						fresh++
					}
				}
				var cl api.Cluster
				getJSON(t, n.admin+"/v1/cluster", &cl)
				if len(st.Reporters) != want || fresh != want || len(cl.Reporters) != want {
					return false
				}
			}
			return true
		}
	}
	startReporter("h1")
	startReporter("h2")
	eventually(t, 20*time.Second, "two reporters counted by both nodes", counted(2))
	h3 := startReporter("h3")
	took := eventually(t, 20*time.Second, "a third reporter counted with no restart", counted(3))
	t.Logf("MEASURE a reporter added while the cluster runs is heard by every node within %v", took.Round(time.Millisecond))
	h3.stop()
	took = eventually(t, 20*time.Second, "the stopped reporter dropped out", counted(2))
	t.Logf("MEASURE a stopped reporter drops out of every node within %v", took.Round(time.Millisecond))
}
