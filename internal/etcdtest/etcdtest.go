// Package etcdtest runs a real etcd cluster on loopback for tests: N member processes of
// the etcd binary that .ci/etcd.sh builds from the Go module proxy, named by the
// GLBDNS_ETCD environment variable (the Makefile sets it). Without it a test that needs
// etcd skips, unless CI is set, where it fails: CI must run every test.
//
// Members listen on 127.0.0.1 on ports picked free at start, keep their data in the test's
// temporary folder, and are stopped when the test ends. A member can be stopped, killed and
// started again, which is what the fail-static tests do to quorum and the leader.
package etcdtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is the etcd binary the tests run (GLBDNS_ETCD). It skips t when there is none,
// or fails it under CI.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("GLBDNS_ETCD")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("GLBDNS_ETCD is not set: CI must run the etcd tests (make test sets it from .ci/etcd.sh)")
		}
		t.Skip("GLBDNS_ETCD is not set (make test sets it from .ci/etcd.sh); this test runs etcd")
	}
	return bin
}

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	Members []*Member
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	peerURL   string
	dir       string
	args      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *logBuffer
}

// Start starts an n-member cluster and waits (bounded) until every member is healthy.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t)}
	dir := t.TempDir()
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), ClientURL: "http://" + freeAddr(t),
			peerURL: "http://" + freeAddr(t), dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.peerURL)
	}
	for _, m := range c.Members {
		// A short heartbeat and election keep a leader change in tests to about a second;
		// the quota is etcd's default.
		m.args = []string{"--name", m.Name, "--data-dir", m.dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "glbdns-test", "--heartbeat-interval", "50",
			"--election-timeout", "500", "--log-level", "warn"}
		c.start(m)
	}
	t.Cleanup(c.StopAll)
	for _, m := range c.Members {
		c.WaitHealthy(m, 30*time.Second)
	}
	return c
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *Cluster) start(m *Member) {
	c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs = &logBuffer{}
	cmd := exec.Command(c.bin, m.args...)
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start etcd %s: %v", m.Name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
}

// Restart starts a stopped member again, with its data, and waits until it is healthy.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	c.start(m)
	c.WaitHealthy(m, 30*time.Second)
}

// Stop stops a member with SIGTERM and waits for it to exit.
func (c *Cluster) Stop(m *Member) { c.signal(m, syscall.SIGTERM) }

// Kill stops a member with SIGKILL, as a crash would, and waits for it to exit.
func (c *Cluster) Kill(m *Member) { c.signal(m, syscall.SIGKILL) }

func (c *Cluster) signal(m *Member, sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// StopAll stops every member still running.
func (c *Cluster) StopAll() {
	for _, m := range c.Members {
		c.Stop(m)
	}
}

// WaitHealthy waits (bounded by within) until m answers /health with true.
func (c *Cluster) WaitHealthy(m *Member, within time.Duration) {
	c.t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		if resp, err := hc.Get(m.ClientURL + "/health"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd %s not healthy within %v:\n%s", m.Name, within, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Leader returns the member that leads the cluster now (bounded wait for one).
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.Members {
			if l := c.leaderSeenBy(m); l != nil {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no etcd leader within 15s")
	return nil
}

// leaderSeenBy asks m which member leads, nil when m does not answer or knows none.
func (c *Cluster) leaderSeenBy(m *Member) *Member {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.ClientURL)
	if err != nil || st.Leader == 0 {
		return nil
	}
	ms, err := cli.MemberList(ctx)
	if err != nil {
		return nil
	}
	for _, mm := range ms.Members {
		if mm.ID == st.Leader {
			for _, x := range c.Members {
				if x.Name == mm.Name {
					return x
				}
			}
		}
	}
	return nil
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// logBuffer keeps a member's output for the failure message of a test.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
