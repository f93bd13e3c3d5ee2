package healthd

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// TestActivity: a pool is idle once no node answered it for idle_after; unknown is active;
// a move forward wakes the pool's waiters, and nothing else does. MergeActivity takes the
// latest time over the nodes, a node's Since standing in for a pool it has not answered.
func TestActivity(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	a := NewActivity()
	if a.Idle("fn", time.Minute, now) {
		t.Error("nothing known: idle, want active")
	}
	a.Set(map[string]time.Time{"fn": now.Add(-2 * time.Minute)})
	if !a.Idle("fn", time.Minute, now) || a.Idle("fn", 3*time.Minute, now) || a.Idle("other", time.Minute, now) {
		t.Error("answered 2 minutes ago: want idle after 1m, active after 3m, another pool active")
	}
	w := a.Woken("fn")
	a.Set(map[string]time.Time{"fn": now.Add(-2 * time.Minute)}) // no move
	select {
	case <-w:
		t.Fatal("woken without an answer")
	default:
	}
	a.Set(map[string]time.Time{"fn": now})
	select {
	case <-w:
	default:
		t.Fatal("answered again: not woken")
	}
	if a.Idle("fn", time.Minute, now) {
		t.Error("answered now: idle")
	}
	a.Set(nil)
	if a.Idle("fn", time.Nanosecond, now.Add(time.Hour)) {
		t.Error("nothing known any more: idle, want active")
	}
	var nilActivity *Activity
	if nilActivity.Idle("fn", time.Second, now) || nilActivity.Woken("fn") != nil {
		t.Error("a nil Activity: want active, no wake")
	}

	t1, t2 := now.Add(-time.Hour), now.Add(-time.Minute)
	got := MergeActivity([]api.Activity{
		{Since: now.Add(-2 * time.Hour), Pools: []api.PoolActivity{{Pool: "fn", LastAnswered: &t1}, {Pool: "quiet"}}},
		{Since: now.Add(-10 * time.Minute), Pools: []api.PoolActivity{{Pool: "fn", LastAnswered: &t2}, {Pool: "quiet"}}},
	})
	if !got["fn"].Equal(t2) || !got["quiet"].Equal(now.Add(-10*time.Minute)) || len(got) != 2 {
		t.Errorf("merged %v, want fn at the latest answer and quiet at the latest since", got)
	}
}

// TestColdStartSlowBackend runs the real loop against a backend that takes 300 ms to
// answer, with a check timeout of 100 ms and a cold_start timeout of 2 s. The first probe
// is cold and passes; the warm probes after it time out. While the pool is idle every
// probe is cold and passes. When the pool is answered again the loop wakes at once, and
// its first probe after the idleness is cold and passes; the next is warm and times out.
func TestColdStartSlowBackend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	port := netip.MustParseAddrPort(srv.Listener.Addr().String()).Port()
	act := NewActivity()
	board := NewBoard("test")
	s := NewScheduler(SchedulerConfig{Board: board, Logger: slog.New(slog.DiscardHandler), Activity: act})
	t.Cleanup(s.Close)
	s.Update(load(t, fmt.Sprintf(`pool "fn" {
  member "a" { address = "127.0.0.1" }
  check "http" {
    port     = %d
    interval = "200ms"
    timeout  = "100ms"
    rise     = 1
    fall     = 1
  }
  cold_start {
    timeout       = "2s"
    idle_after    = "1m"
    idle_interval = "400ms"
  }
}
`, port)))

	var seen []api.ResultReport // every result so far, oldest first
	results := func() []api.ResultReport {
		m, _ := memberStatus(board.Report(true), "fn/a")
		if len(m.Checks) == 1 {
			for _, r := range m.Checks[0].History {
				if len(seen) == 0 || r.At.After(seen[len(seen)-1].At) {
					seen = append(seen, r)
				}
			}
		}
		return seen
	}
	// waitFor polls until n results have come; it returns them. Bounded.
	waitFor := func(n int, what string) []api.ResultReport {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for len(results()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d results, want %d: %+v", what, len(seen), n, seen)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return seen
	}
	oks := func(rs []api.ResultReport) string {
		b := make([]byte, len(rs))
		for i, r := range rs {
			b[i] = "-+"[map[bool]int{false: 0, true: 1}[r.OK]]
		}
		return string(b)
	}

	rs := waitFor(3, "active")
	if got := oks(rs[:3]); got != "+--" {
		t.Fatalf("active from the start: %s (%+v), want the first (cold) probe to pass and the warm ones to time out", got, rs)
	}
	// Right after a result, so that no probe is being decided: the next starts 100 ms on.
	n := len(waitFor(len(seen)+1, "before idle"))
	act.Set(map[string]time.Time{"fn": time.Now().Add(-time.Hour)})
	rs = waitFor(n+3, "idle")
	if got := oks(rs[n:]); got != "+++" {
		t.Fatalf("idle: %s (%+v), want every probe cold and passing", got, rs[n:])
	}
	for i := n + 1; i < len(rs); i++ {
		if gap := rs[i].At.Sub(rs[i-1].At); gap < 300*time.Millisecond {
			t.Errorf("idle probes %v apart, want the idle interval (400 ms), not the check's (200 ms)", gap)
		}
	}
	n = len(waitFor(len(seen)+1, "before the answer"))
	answered := time.Now()
	act.Set(map[string]time.Time{"fn": answered})
	rs = waitFor(n+2, "answered again")
	if got := oks(rs[n : n+2]); got != "+-" {
		t.Fatalf("answered again: %s (%+v), want a cold probe that passes, then a warm one that times out", got, rs[n:])
	}
	t.Logf("woken %v after the answer (idle interval 400 ms)", rs[n].At.Sub(answered).Round(time.Millisecond))
}
