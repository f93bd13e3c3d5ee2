package healthd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestLoadReadings: a member's load block is read every interval and published beside its
// status, a new value wakes a watcher (coalesced), and a failed reading keeps the last
// good value with the reason.
func TestLoadReadings(t *testing.T) {
	var conns atomic.Int64
	var broken atomic.Bool
	conns.Store(7)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "# TYPE active_connections gauge\nactive_connections{backend=\"a\"} %d\n", conns.Load())
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	reg := prometheus.NewRegistry()
	s, board := newTestScheduler(t, reg, nil)
	s.Update(load(t, fmt.Sprintf(`pool "web" {
  member "a" {
    address = "127.0.0.1"
  }
  load {
    port     = %s
    metric   = "active_connections"
    labels   = { backend = "a" }
    interval = "100ms"
    timeout  = "50ms"
  }
}
`, u.Port())))
	waitLoad := func(want float64, reason bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			m := member(t, board, "web/a")
			if l := m.Load; l != nil && l.Value == want && (l.Reason != "") == reason {
				if l.IntervalSeconds != 0.1 || l.AgeSeconds < 0 || l.AgeSeconds > 2 {
					t.Errorf("load = %+v", *l)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("load = %+v, want value %v (failed: %v)", m.Load, want, reason)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLoad(7, false)
	idx, changed := board.Watch()
	conns.Store(30)
	select {
	case <-changed:
	case <-time.After(LoadCoalesce + 2*time.Second):
		t.Fatal("a new load reading did not wake the watch")
	}
	if next, _ := board.Watch(); next <= idx {
		t.Fatalf("index %d after %d", next, idx)
	}
	waitLoad(30, false)
	if got := testutil.ToFloat64(s.metrics.load.WithLabelValues("web", "a")); got != 30 {
		t.Errorf("healthd_member_load = %v, want 30", got)
	}
	broken.Store(true)
	waitLoad(30, true)
	if m := member(t, board, "web/a"); m.Status.String() != "up" {
		t.Errorf("a failed load reading changed the status: %s", m.Status)
	}
	if got := testutil.ToFloat64(s.metrics.readings.WithLabelValues("web", "failure")); got < 1 {
		t.Errorf("healthd_load_readings_total{result=failure} = %v", got)
	}
	problems, err := promlint.NewWithMetricFamilies(gather(t, reg)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}
