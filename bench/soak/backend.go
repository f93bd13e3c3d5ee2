package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// failure is how a backend is down: each one fails healthd's http check another way.
type failure int

const (
	failNone    failure = iota
	failRefused         // the listener is closed: connection refused
	failStatus          // /healthz answers 503
	failHang            // /healthz answers after the check's timeout (hangFor)
)

func (f failure) String() string {
	return [...]string{"up", "refused", "503", "hang"}[f]
}

// hangFor is how long a hanging /healthz waits: three times the check's 500ms timeout,
// so every probe of it times out, and short enough that its goroutines do not pile up.
const hangFor = 1500 * time.Millisecond

// transition is a change of a backend's health, timed after it took effect.
type transition struct {
	at time.Time
	up bool
}

// backend is an HTTP server on a loopback address whose /healthz the soak makes fail,
// and the record of when it was up and down.
type backend struct {
	ip   string
	port int

	mu    sync.Mutex
	srv   *http.Server
	fail  failure
	trans []transition // oldest first; the first one is "up" at start
}

func newBackend(ip string) (*backend, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen on %s (loopback alias): %w", ip, err)
	}
	b := &backend{ip: ip, port: ln.Addr().(*net.TCPAddr).Port}
	b.serve(ln)
	b.trans = []transition{{at: time.Now(), up: true}}
	return b, nil
}

func (b *backend) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		f := b.fail
		b.mu.Unlock()
		switch f {
		case failStatus:
			http.Error(w, "flapped down", http.StatusServiceUnavailable)
			return
		case failHang:
			select {
			case <-time.After(hangFor):
			case <-r.Context().Done():
			}
			http.Error(w, "flapped down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	b.srv = srv
	go srv.Serve(ln)
}

// down makes the backend fail its check in way f and records when it did.
func (b *backend) down(f failure) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = f
	if f == failRefused {
		b.srv.Close()
		b.srv = nil
	}
	b.trans = append(b.trans, transition{at: time.Now(), up: false})
}

// up makes the backend pass its check again and records when it did.
func (b *backend) up() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		var ln net.Listener
		var err error
		for range 50 { // the port was ours a moment ago; Go listens with SO_REUSEADDR
			if ln, err = net.Listen("tcp", net.JoinHostPort(b.ip, fmt.Sprint(b.port))); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("listen again on %s:%d: %w", b.ip, b.port, err)
		}
		b.serve(ln)
	}
	b.fail = failNone
	b.trans = append(b.trans, transition{at: time.Now(), up: true})
	return nil
}

func (b *backend) isDown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.trans[len(b.trans)-1].up
}

// stateAt says whether the backend was up at t and since when (the transition at or
// before t). Transitions are timed after they took effect, so a "since" is never earlier
// than the truth.
func (b *backend) stateAt(t time.Time) (up bool, since time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.trans) - 1; i >= 0; i-- {
		if !b.trans[i].at.After(t) {
			return b.trans[i].up, b.trans[i].at
		}
	}
	return b.trans[0].up, b.trans[0].at
}

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}
