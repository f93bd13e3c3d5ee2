package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// requestLog is an HTTP backend that records when each request came.
type requestLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
}

// gaps are the n times between the last n+1 requests; none before n+1 came.
func (l *requestLog) gaps(n int) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	if len(l.at) <= n {
		return nil
	}
	for i := len(l.at) - n; i < len(l.at); i++ {
		out = append(out, l.at[i].Sub(l.at[i-1]))
	}
	return out
}

// TestColdStartIdle: glbdns and healthd with a cold_start pool (check every 200 ms,
// idle_after 2 s, idle_interval 1 s), healthd asking glbdns's GET /v1/activity with the
// report token. With no query the pool goes idle and healthd probes it about once a
// second; once the service is queried, the pool is active again and probed every 200 ms.
func TestColdStartIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var backend requestLog
	srv := &http.Server{Handler: &backend, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	policy := fmt.Sprintf(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "fn" {
  member "a" { address = "127.0.0.1" }
  check "http" {
    port     = %d
    interval = "200ms"
    timeout  = "100ms"
  }
  cold_start {
    timeout       = "2s"
    idle_after    = "2s"
    idle_interval = "1s"
  }
}
service "fn.glb.test" {
  policy = "round_robin"
  pools  = ["fn"]
}
`, port)
	dir := t.TempDir()
	for name, data := range map[string]string{"report-token": "report-secret\n", "admin-token": adminToken + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, dns, _ := startGLBDNS(t, map[string]string{"glb.hcl": policy}, "-admin", "127.0.0.1:0",
		"-admin-token-file", filepath.Join(dir, "admin-token"), "-report-token-file", filepath.Join(dir, "report-token"))
	admin := adminURL(t, p)
	start(t, "healthd", "addr", "-policy", writePolicy(t, map[string]string{"glb.hcl": policy}), "-listen", "127.0.0.1:0",
		"-id", "cold", "-glbdns", admin, "-report-token-file", filepath.Join(dir, "report-token"), "-activity-interval", "200ms")

	allAtLeast := func(gs []time.Duration, d time.Duration) bool {
		for _, g := range gs {
			if g < d {
				return false
			}
		}
		return len(gs) > 0
	}
	allBelow := func(gs []time.Duration, d time.Duration) bool {
		for _, g := range gs {
			if g >= d {
				return false
			}
		}
		return len(gs) > 0
	}
	took := eventually(t, 20*time.Second, "probes a second apart once the pool is idle", func() bool {
		return allAtLeast(backend.gaps(2), 800*time.Millisecond)
	})
	t.Logf("MEASURE idle: probe gaps %v (idle_interval 1s), %v after the test began waiting", backend.gaps(2), took.Round(time.Millisecond))

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the service is queried every 100 ms from now on
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				answerSet(t, dns, "fn.glb.test")
			}
		}
	}()
	defer func() { close(stop); <-done }()
	queried := time.Now()
	eventually(t, 10*time.Second, "probes every 200 ms once the service is queried", func() bool {
		return allBelow(backend.gaps(4), 500*time.Millisecond)
	})
	t.Logf("MEASURE active again: probe gaps %v (interval 200ms), %v after the queries began", backend.gaps(4), time.Since(queried).Round(time.Millisecond))
}
