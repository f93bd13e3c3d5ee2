package healthd

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/policy"
)

// TestReload: a reload with a new policy updates the scheduler; one with the same policy
// (same hash, as when a drain is written to the managed folder) changes nothing; one with
// errors keeps the old policy.
func TestReload(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	metrics := NewMetrics(prometheus.NewRegistry())
	a, b := newBackend(t), newBackend(t)
	first := load(t, poolPolicy(syncCheck, map[string]*backend{"a": a}))
	learn(s, first)
	var next *policy.Snapshot
	var loadErr error
	cfg := Config{PolicyPath: "test", Load: func(string) (*policy.Snapshot, error) { return next, loadErr }}
	log := slog.New(slog.DiscardHandler)

	next = load(t, poolPolicy(syncCheck, map[string]*backend{"a": a})) // same files, new snapshot
	if got := reload(cfg, log, metrics, s, first); got != first {
		t.Error("a reload of the same policy replaced the running one")
	}
	next = load(t, poolPolicy(syncCheck, map[string]*backend{"a": a, "b": b}))
	if got := reload(cfg, log, metrics, s, first); got != next {
		t.Error("a reload of a new policy did not replace the running one")
	}
	if _, ok := memberStatus(board.Report(false), "web/b"); !ok {
		t.Error("the new policy's member is not published")
	}
	cur := next
	next, loadErr = nil, errors.New("broken")
	if got := reload(cfg, log, metrics, s, cur); got != cur {
		t.Error("a broken policy replaced the running one")
	}
	if _, ok := memberStatus(board.Report(false), "web/b"); !ok {
		t.Error("a broken policy unpublished a member")
	}
}
