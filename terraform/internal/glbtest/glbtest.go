// Package glbtest runs real glbdns nodes in the test's process for the provider's and
// the client's tests: the daemon of cmd/glbdns (daemon/) with an operator policy
// written into a temporary directory, DNS and the admin API on 127.0.0.1 port 0, the
// managed folder beside it, and optionally in-process healthd reporters (the real
// healthd.Board and health API handler) whose member states a test sets directly.
//
// StartNodes runs several nodes with the same operator policy for the failover tests.
// Each has its own managed folder: they share no managed objects (that is the etcd
// store's job), which is enough for tests that only need "one node is down"; Node.Stop
// shuts a node down so that its admin port refuses connections.
//
// There is deliberately no stand-in of the admin API: what the provider is tested against
// is the server it talks to in production.
package glbtest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/daemon"
	"github.com/glbdns/glbdns/healthd"
)

// Zone is the zone every node serves; services must be named inside it.
const Zone = "glb.example.com"

// zonePolicy is the operator policy every node starts with: the zone and its name servers.
const zonePolicy = `zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com", "ns2.glb.example.com"]
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
  record "ns2" {
    type   = "A"
    values = ["192.0.2.54"]
  }
}
`

// Options configures a node.
type Options struct {
	// Token is the admin API's bearer token; "" leaves the write API off (403).
	Token string
	// Policy is operator HCL added beside the zone (objects that are read-only through
	// the API), "" for none.
	Policy string
	// Reporters is how many in-process healthd reporters the node subscribes to; 0 means
	// none, and every member's status is "unknown".
	Reporters int
}

// Node is a running glbdns.
type Node struct {
	// URL is the admin API's base URL, "http://127.0.0.1:PORT".
	URL string
	// Token is the admin token (Options.Token).
	Token string
	// DNS is the UDP and TCP address the node answers DNS on.
	DNS string
	// Daemon is the running daemon.
	Daemon *daemon.Daemon
	// PolicyDir holds the operator's policy files and ManagedDir the API's documents,
	// which a healthd beside the node would load (cmd/healthd opens a store on them).
	PolicyDir, ManagedDir string
	// Reporters are the healthd stores the node subscribes to (Options.Reporters).
	Reporters []*healthd.Board

	stop func() // shuts the daemon down once; Stop and the test's cleanup call it
}

// syncBuffer collects the daemon's log for a failing test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs a node until the test ends; the daemon's log is printed if the test fails.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"zone.hcl": zonePolicy}
	if o.Policy != "" {
		files["operator.hcl"] = o.Policy
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(policyDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := &Node{Token: o.Token, PolicyDir: policyDir, ManagedDir: filepath.Join(dir, "managed")}
	var urls []string
	for i := range o.Reporters {
		st := healthd.NewBoard("reporter-" + string(rune('a'+i)))
		hs := httptest.NewServer(healthd.NewHandler(st, nil, nil))
		t.Cleanup(hs.Close)
		n.Reporters = append(n.Reporters, st)
		urls = append(urls, hs.URL)
	}
	logs := &syncBuffer{}
	d, err := daemon.New(daemon.Config{
		Listen: []string{"127.0.0.1:0"}, PolicyPath: policyDir, Admin: "127.0.0.1:0", AdminToken: o.Token,
		ManagedDir: n.ManagedDir, NoWatch: true, HealthURLs: urls,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("glbdns: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("glbdns run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("glbdns did not stop within 10s")
			}
		})
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("glbdns log (%s):\n%s", n.URL, logs.String())
		}
	})
	select {
	case <-d.Server().Ready():
	case err := <-done:
		t.Fatalf("glbdns stopped before serving: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("glbdns not serving DNS after 10s\n%s", logs.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.AdminAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("glbdns admin listener not bound after 10s\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.URL, n.DNS, n.Daemon = "http://"+d.AdminAddr().String(), d.Server().Addr().String(), d
	return n
}

// StartNodes runs count nodes with the same options (the same operator policy and token),
// each with its own ports and managed folder, until the test ends.
func StartNodes(t testing.TB, count int, o Options) []*Node {
	t.Helper()
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = Start(t, o)
	}
	return nodes
}

// Stop shuts the node down and waits until it has stopped: its admin listener is closed,
// so a connection to URL is refused from then on (the port is not reused while the test
// runs, barring another process binding the same ephemeral port). Stopping twice is a
// no-op; the test's cleanup stops a node that is still running.
func (n *Node) Stop() { n.stop() }

// SetHealth publishes status for a member on every reporter.
func (n *Node) SetHealth(pool, member string, status api.Status) {
	for _, st := range n.Reporters {
		st.Set(api.MemberReport{Pool: pool, Member: member, Status: status, Since: time.Now().UTC()})
	}
}

// Query asks the node for name and type over UDP (with up to three tries: loopback UDP
// loses nothing, but a test should not flake on it).
func (n *Node) Query(name string, qtype uint16) (*dns.Msg, error) {
	return Query(n.DNS, name, qtype)
}

// Query asks the DNS server at addr for name and type over UDP, without recursion.
func Query(addr, name string, qtype uint16) (*dns.Msg, error) {
	return Exchange(addr, NewQuery(name, qtype))
}

// NewQuery is the message Query sends: one question, RD clear. Callers add options (an
// EDNS Client Subnet) and send it with Exchange.
func NewQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	return m
}

// Exchange sends m to the DNS server at addr over UDP, with up to three tries.
func Exchange(addr string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var err error
	for range 3 {
		var r *dns.Msg
		if r, _, err = c.Exchange(m, addr); err == nil {
			return r, nil
		}
	}
	return nil, err
}
