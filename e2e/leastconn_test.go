package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// loadBackend is a real HTTP server on a loopback address that counts its open
// connections (idle ones too, as a server's own connection gauge does) and serves the
// count as a Prometheus gauge on /metrics, beside /healthz.
type loadBackend struct {
	addr   string
	active atomic.Int64
}

func newLoadBackend(t *testing.T, ip string) *loadBackend {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s (loopback aliases): %v", ip, err)
	}
	b := &loadBackend{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE active_connections gauge\nactive_connections{listener=\"http\"} %d\n", b.active.Load())
	})
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			b.active.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.active.Add(-1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *loadBackend) ip() string   { h, _, _ := net.SplitHostPort(b.addr); return h }
func (b *loadBackend) port() string { _, p, _ := net.SplitHostPort(b.addr); return p }

// shares asks name n times and returns each address's share of the answers.
func shares(t *testing.T, addr, name string, n int) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for range n {
		for _, a := range answerAddrs(query(t, "udp", addr, name, dns.TypeA)) {
			out[a] += 1 / float64(n)
		}
	}
	return out
}

// TestLeastConnections: four real backends, healthd reading each one's open connections
// from its /metrics every second, glbdns answering a least_connections service. The test
// holds 40 connections open on one backend: within two check intervals (plus the
// reading's delivery) its share of the answers falls to what the rule gives it (none: it
// holds more than 1.5 times the mean connections per unit of weight, the slack included),
// and when they close it gets its quarter back.
func TestLeastConnections(t *testing.T) {
	var bs []*loadBackend
	for i := range 4 {
		bs = append(bs, newLoadBackend(t, fmt.Sprintf("127.0.0.5%d", i+1)))
	}
	var sb strings.Builder
	sb.WriteString(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  check "http" {
    path     = "/healthz"
    interval = "1s"
    timeout  = "500ms"
    rise     = 1
    fall     = 2
  }
  load {
    metric = "active_connections"
  }
`)
	for i, b := range bs {
		fmt.Fprintf(&sb, "  member \"m%d\" {\n    address = %q\n    check \"http\" {\n      port = %s\n    }\n  }\n", i, b.ip(), b.port())
	}
	sb.WriteString(`}
service "lc.glb.test" {
  policy = "least_connections"
  pools  = ["web"]
  ttl    = 1
}
`)
	pol := map[string]string{"p.hcl": sb.String()}
	_, hurl := startHealthd(t, "hd1", pol)
	_, dnsAddr, _ := startGLBDNS(t, pol, "-health", hurl)

	hot := bs[0].ip()
	const n = 400
	eventually(t, 15*time.Second, "every backend answered, with load readings", func() bool {
		s := shares(t, dnsAddr, "lc.glb.test", n)
		return len(s) == 4 && s[hot] > 0.15
	})
	before := shares(t, dnsAddr, "lc.glb.test", n)
	t.Logf("MEASURE shares before: %v", before)

	// Hold 40 connections open on the hot backend.
	var conns []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", bs[0].addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	took := eventually(t, 10*time.Second, "the loaded backend's share falls", func() bool {
		return shares(t, dnsAddr, "lc.glb.test", 100)[hot] < 0.02
	})
	t.Logf("MEASURE 40 connections held -> share below 2%%: %v (load interval 1s)", took.Round(time.Millisecond))
	if took > 2*time.Second+500*time.Millisecond {
		t.Errorf("the share fell after %v, want within two check intervals (2s) and the delivery", took)
	}
	during := shares(t, dnsAddr, "lc.glb.test", n)
	t.Logf("MEASURE shares while held: %v", during)
	if during[hot] > 0.02 {
		t.Errorf("loaded backend's share %.3f while held, want about 0", during[hot])
	}
	for _, b := range bs[1:] {
		if s := during[b.ip()]; s < 0.25 || s > 0.42 {
			t.Errorf("backend %s: share %.3f while one is loaded, want about a third", b.ip(), s)
		}
	}

	for _, c := range conns {
		c.Close()
	}
	took = eventually(t, 10*time.Second, "the backend's share recovers", func() bool {
		return shares(t, dnsAddr, "lc.glb.test", 100)[hot] > 0.15
	})
	t.Logf("MEASURE connections closed -> share back above 15%%: %v", took.Round(time.Millisecond))
	after := shares(t, dnsAddr, "lc.glb.test", n)
	t.Logf("MEASURE shares after: %v", after)
	if after[hot] < 0.15 || after[hot] > 0.35 {
		t.Errorf("share after the connections closed %.3f, want about a quarter", after[hot])
	}
}
