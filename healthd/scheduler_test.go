package healthd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/policy"
)

// backend is an HTTP server whose /health answers 200 or 503 as an atomic flag says.
type backend struct {
	srv     *httptest.Server
	healthy atomic.Bool
	port    int
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.healthy.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || !b.healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.port = int(netip.MustParseAddrPort(b.srv.Listener.Addr().String()).Port())
	return b
}

// syncCheck is the pool check of the synchronous tests: they run rounds themselves, so
// the interval only has to be valid.
const syncCheck = `path = "/health"
    rise = 2
    fall = 2`

// poolPolicy is a policy of one pool "web" whose http check has the attributes in check
// and whose members, named by the keys of backends, each probe their own backend (a
// member's check block overriding the port).
func poolPolicy(check string, backends map[string]*backend) string {
	var b strings.Builder
	b.WriteString("pool \"web\" {\n")
	for _, name := range sortedKeys(backends) {
		fmt.Fprintf(&b, "  member %q {\n    address = \"127.0.0.1\"\n    check \"http\" { port = %d }\n  }\n", name, backends[name].port)
	}
	fmt.Fprintf(&b, "  check \"http\" {\n    %s\n  }\n}\n", check)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// load compiles src with the policy package, as healthd's loader does.
func load(t *testing.T, src string) *policy.Snapshot {
	t.Helper()
	snap, diags := policy.Load([]policy.File{{Name: "healthd_test.hcl", Data: []byte(src)}})
	if diags.HasErrors() {
		t.Fatalf("load policy:\n%s\n%v", src, diags)
	}
	return snap
}

func newTestScheduler(t *testing.T, reg prometheus.Registerer, preparers map[string]probe.Preparer) (*Scheduler, *Board) {
	t.Helper()
	board := NewBoard("test")
	var metrics *Metrics
	if reg != nil {
		metrics = NewMetrics(reg)
	}
	s := NewScheduler(SchedulerConfig{Board: board, Logger: slog.New(slog.DiscardHandler), Preparers: preparers, Metrics: metrics})
	t.Cleanup(s.Close)
	return s, board
}

// learn gives s a snapshot without starting any loop (Update would): the test runs the
// rounds itself, as caddy's active_health_test calls its single-round function. It
// returns the checks Update would have started.
func learn(s *Scheduler, snap *policy.Snapshot) []*checkRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.learn(snap, time.Now())
}

// rounds runs n synchronous rounds of every check of every member, in member order.
func rounds(t *testing.T, s *Scheduler, n int) {
	t.Helper()
	s.mu.Lock()
	var jobs []job
	for _, id := range sortedKeys(s.members) {
		for _, cr := range s.members[id].checks {
			jobs = append(jobs, cr.job(s.members[id].m.Pool))
		}
	}
	s.mu.Unlock()
	for range n {
		for _, j := range jobs {
			s.round(context.Background(), j, false)
		}
	}
}

func member(t *testing.T, board *Board, id string) api.MemberReport {
	t.Helper()
	m, ok := memberStatus(board.Report(true), id)
	if !ok {
		t.Fatalf("member %s not published", id)
	}
	return m
}

func memberStatus(r api.Report, id string) (api.MemberReport, bool) {
	for _, m := range r.Members {
		if m.ID() == id {
			return m, true
		}
	}
	return api.MemberReport{}, false
}

func TestRoundFlip(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, board := newTestScheduler(t, reg, nil)
	b := newBackend(t)
	learn(s, load(t, poolPolicy(syncCheck, map[string]*backend{"a": b})))
	if s.Ready() {
		t.Error("ready before any check had a result")
	}

	rounds(t, s, 1)
	if m := member(t, board, "web/a"); m.Status != api.StatusUnknown || m.Checks[0].Successes != 1 {
		t.Fatalf("after one success: %v with %d successes, want unknown with 1", m.Status, m.Checks[0].Successes)
	}
	if !s.Ready() {
		t.Error("not ready after every check had a result")
	}
	rounds(t, s, 1)
	m := member(t, board, "web/a")
	if m.Status != api.StatusUp || m.LastResult == nil || !m.LastResult.OK || m.Checks[0].Status != api.StatusUp {
		t.Fatalf("up member report: %+v", m)
	}

	b.healthy.Store(false)
	rounds(t, s, 1)
	if m := member(t, board, "web/a"); m.Status != api.StatusUp {
		t.Fatalf("one failure took the member %v, want it still up (fall 2)", m.Status)
	}
	rounds(t, s, 1)
	m = member(t, board, "web/a")
	if m.Status != api.StatusDown || m.Reason != "unexpected status 503" || m.Checks[0].Failures != 2 {
		t.Errorf("down member: %v, reason %q, failures %d", m.Status, m.Reason, m.Checks[0].Failures)
	}
	if got := testutil.ToFloat64(s.metrics.memberUp.WithLabelValues("web", "a")); got != 0 {
		t.Errorf("healthd_member_up = %v while down", got)
	}

	b.healthy.Store(true)
	rounds(t, s, 2)
	m = member(t, board, "web/a")
	if m.Status != api.StatusUp || m.Reason != "unexpected status 503" {
		t.Errorf("recovered member: %v, reason %q (the last failure's, kept)", m.Status, m.Reason)
	}
	if got := testutil.ToFloat64(s.metrics.memberUp.WithLabelValues("web", "a")); got != 1 {
		t.Errorf("healthd_member_up = %v while up", got)
	}
	if got := testutil.ToFloat64(s.metrics.probes.WithLabelValues("web", "http", "failure")); got != 2 {
		t.Errorf("healthd_probes_total{result=failure} = %v, want 2", got)
	}
	problems, err := promlint.NewWithMetricFamilies(gather(t, reg)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestRoundHistory(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	b := newBackend(t)
	b.healthy.Store(false)
	learn(s, load(t, poolPolicy(syncCheck, map[string]*backend{"a": b})))
	rounds(t, s, 2)
	b.healthy.Store(true)
	// Run past the recent window: the failures must still lead the history.
	rounds(t, s, historyLen+2)
	h := member(t, board, "web/a").Checks[0].History
	if len(h) != historyLen+2 || h[0].OK || h[1].OK || !h[2].OK || !h[len(h)-1].OK {
		t.Fatalf("history of %d: want the 2 old failures, then %d successes: %+v", len(h), historyLen, h)
	}
	for i := 1; i < len(h); i++ {
		if h[i].At.Before(h[i-1].At) {
			t.Fatalf("history not in time order at %d: %v", i, h)
		}
	}
	if m, _ := memberStatus(board.Report(false), "web/a"); m.Checks[0].History != nil {
		t.Errorf("history reported without asking: %d entries", len(m.Checks[0].History))
	}
}

func TestRoundMultipleChecks(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	web, admin := newBackend(t), newBackend(t)
	src := fmt.Sprintf(`pool "web" {
  member "a" {
    address = "127.0.0.1"
    check "admin" {
      type = "http"
      port = %d
      %s
    }
  }
  check "http" {
    port = %d
    %s
  }
}
`, admin.port, syncCheck, web.port, syncCheck)
	learn(s, load(t, src))
	rounds(t, s, 2)
	if m := member(t, board, "web/a"); m.Status != api.StatusUp {
		t.Fatalf("member %v, want up", m.Status)
	}
	admin.healthy.Store(false) // one failing check takes the member down
	rounds(t, s, 2)
	got := member(t, board, "web/a")
	if got.Status != api.StatusDown || got.Checks[0].Status != api.StatusUp || got.Checks[1].Status != api.StatusDown {
		t.Errorf("member %v, checks %s %v / %s %v, want down, up/down", got.Status,
			got.Checks[0].Name, got.Checks[0].Status, got.Checks[1].Name, got.Checks[1].Status)
	}
}

func TestUpdate(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	started := learn(s, load(t, poolPolicy(syncCheck, map[string]*backend{"a": a, "b": b})))
	if len(started) != 2 {
		t.Fatalf("%d checks started, want 2", len(started))
	}
	rounds(t, s, 2)
	since := member(t, board, "web/a").Since

	if started := learn(s, load(t, poolPolicy(syncCheck, map[string]*backend{"a": a, "b": b}))); len(started) != 0 {
		t.Errorf("a reload changing nothing restarted %d checks", len(started))
	}

	// Reload: a stays (interval changed), b goes, c comes.
	changed := syncCheck + "\n    interval = \"7s\""
	started = learn(s, load(t, poolPolicy(changed, map[string]*backend{"a": a, "c": c})))
	if len(started) != 2 {
		t.Errorf("%d checks restarted, want a's (changed) and c's (new)", len(started))
	}
	r := board.Report(false)
	if ma, ok := memberStatus(r, "web/a"); !ok || ma.Status != api.StatusUp || !ma.Since.Equal(since) {
		t.Errorf("kept member a: %+v, want up since %v", ma, since)
	}
	if _, ok := memberStatus(r, "web/b"); ok {
		t.Error("removed member b still published")
	}
	if mc, ok := memberStatus(r, "web/c"); !ok || mc.Status != api.StatusUnknown {
		t.Errorf("new member c: %+v, want unknown", mc)
	}
	rounds(t, s, 2)
	if mc := member(t, board, "web/c"); mc.Status != api.StatusUp {
		t.Errorf("member c: %v, want up", mc.Status)
	}

	// Moving a to another port restarts its check from unknown.
	learn(s, load(t, poolPolicy(changed, map[string]*backend{"a": c, "c": c})))
	if ma := member(t, board, "web/a"); ma.Checks[0].Status != api.StatusUnknown || ma.Checks[0].Target != c.srv.Listener.Addr().String() {
		t.Errorf("member a with a new target: check %v on %s, want unknown on %s", ma.Checks[0].Status, ma.Checks[0].Target, c.srv.Listener.Addr())
	}
	rounds(t, s, 2)
	if ma := member(t, board, "web/a"); ma.Status != api.StatusUp {
		t.Errorf("member a: %v, want up", ma.Status)
	}
	if n := len(board.Report(false).Members); n != 2 {
		t.Errorf("%d members published, want 2", n)
	}
}

// TestPreparedOnce checks that a pool's check, shared by its members, is prepared once.
func TestPreparedOnce(t *testing.T) {
	var prepared atomic.Int32
	preparers := map[string]probe.Preparer{"http": func(c *policy.Check) (probe.Func, error) {
		prepared.Add(1)
		return probe.Default["http"](c)
	}}
	s, _ := newTestScheduler(t, nil, preparers)
	src := `pool "web" {
  member "a" { address = "127.0.0.1" }
  member "b" { address = "127.0.0.2" }
  member "c" { address = "127.0.0.3" }
  check "http" { port = 8080 }
}
`
	learn(s, load(t, src))
	if n := prepared.Load(); n != 1 {
		t.Errorf("check of 3 members prepared %d times, want 1", n)
	}
	learn(s, load(t, src))
	if n := prepared.Load(); n != 1 {
		t.Errorf("unchanged check prepared again on reload (%d times)", n)
	}
}

func TestRoundPanic(t *testing.T) {
	tests := []struct {
		name      string
		preparers map[string]probe.Preparer
	}{
		{"in the probe", map[string]probe.Preparer{"http": func(*policy.Check) (probe.Func, error) {
			return func(context.Context, probe.Target) probe.Result { panic("kaboom") }, nil
		}}},
		{"in the preparer", map[string]probe.Preparer{"http": func(*policy.Check) (probe.Func, error) { panic("kaboom") }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, board := newTestScheduler(t, prometheus.NewRegistry(), tc.preparers)
			learn(s, load(t, `pool "p" {
  member "m" { address = "127.0.0.1" }
  check "http" {
    port = 8080
    fall = 1
  }
}
`))
			rounds(t, s, 1)
			if m := member(t, board, "p/m"); m.Status != api.StatusDown || m.Reason != "prober panic: kaboom" {
				t.Errorf("member %v, reason %q", m.Status, m.Reason)
			}
			if testutil.ToFloat64(s.metrics.panics) != 1 {
				t.Error("panic not counted")
			}
		})
	}
}

// TestNoInterval covers a check the policy would refuse, made by hand: without an interval
// it is never probed, and says why, instead of panicking in the loop.
func TestNoInterval(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	snap := load(t, poolPolicy(syncCheck, map[string]*backend{"a": newBackend(t)}))
	c := *snap.Members[0].Checks[0]
	c.Interval = 0
	snap.Members[0].Checks[0] = &c
	if started := learn(s, snap); len(started) != 0 {
		t.Errorf("%d checks without an interval started", len(started))
	}
	s.Update(snap)
	if m := member(t, board, "web/a"); m.Status != api.StatusUnknown || m.Checks[0].Reason != reasonNoInterval {
		t.Errorf("member %v, check reason %q; want unknown, %q", m.Status, m.Checks[0].Reason, reasonNoInterval)
	}
}

func TestNoChecks(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	s.Update(load(t, `pool "p" {
  member "static" { address = "192.0.2.1" }
}
`))
	if m := member(t, board, "p/static"); m.Status != api.StatusUp {
		t.Errorf("member without checks: %v, want up", m.Status)
	}
	if !s.Ready() {
		t.Error("not ready with nothing to probe")
	}
}

// waitStatus waits (bounded: 10s) until the board publishes member id with status want,
// woken by the board's index rather than polling.
func waitStatus(t *testing.T, board *Board, id string, want api.Status) api.MemberReport {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		_, changed := board.Watch()
		m, ok := memberStatus(board.Report(false), id)
		if ok && m.Status == want {
			return m
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("member %s: status %v (present %v), want %v", id, m.Status, ok, want)
		}
	}
}

// TestSchedulerLoops runs the real loops: Update starts them, a backend flips, a reload
// stops a member's loop, and Close returns once every loop has (else the test hangs).
func TestSchedulerLoops(t *testing.T) {
	s, board := newTestScheduler(t, nil, nil)
	a, b := newBackend(t), newBackend(t)
	check := syncCheck + "\n    interval = \"100ms\"\n    timeout = \"90ms\""
	s.Update(load(t, poolPolicy(check, map[string]*backend{"a": a, "b": b})))
	waitStatus(t, board, "web/a", api.StatusUp)
	waitStatus(t, board, "web/b", api.StatusUp)
	a.healthy.Store(false)
	if m := waitStatus(t, board, "web/a", api.StatusDown); m.Reason != "unexpected status 503" {
		t.Errorf("reason %q", m.Reason)
	}
	s.Update(load(t, poolPolicy(check, map[string]*backend{"b": b})))
	if _, ok := memberStatus(board.Report(false), "web/a"); ok {
		t.Error("removed member a still published")
	}
	s.Close()
}

// TestFirstProbeWindow: the checks of the first policy stagger their first probe over
// their interval; a check that starts from unknown later (a new member, a moved target)
// probes within QuickStart, unless a reload brings more of them than MaxInFlight; a check
// restarted with its status kept staggers over its interval again.
func TestFirstProbeWindow(t *testing.T) {
	s := NewScheduler(SchedulerConfig{Board: NewBoard("test"), Logger: slog.New(slog.DiscardHandler), MaxInFlight: 2})
	t.Cleanup(s.Close)
	a, b, c, d, e := newBackend(t), newBackend(t), newBackend(t), newBackend(t), newBackend(t)
	check := syncCheck + "\n    interval = \"5s\"\n    timeout = \"1s\""
	changed := syncCheck + "\n    interval = \"5s\"\n    timeout = \"2s\""
	windows := func(started []*checkRun) map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, cr := range started {
			out[cr.member] = cr.first
		}
		return out
	}
	for _, step := range []struct {
		name     string
		backends map[string]*backend
		check    string
		want     map[string]time.Duration
	}{
		{"first policy", map[string]*backend{"a": a, "b": b}, check,
			map[string]time.Duration{"web/a": 5 * time.Second, "web/b": 5 * time.Second}},
		{"a new member", map[string]*backend{"a": a, "b": b, "c": c}, check,
			map[string]time.Duration{"web/c": QuickStart}},
		{"a member moved", map[string]*backend{"a": d, "b": b, "c": c}, check,
			map[string]time.Duration{"web/a": QuickStart}},
		{"settings changed", map[string]*backend{"a": d, "b": b, "c": c}, changed,
			map[string]time.Duration{"web/a": 5 * time.Second, "web/b": 5 * time.Second, "web/c": 5 * time.Second}},
		{"more new checks than MaxInFlight", map[string]*backend{"a": d, "b": b, "c": c, "d": d, "e": e, "f": a}, changed,
			map[string]time.Duration{"web/d": 5 * time.Second, "web/e": 5 * time.Second, "web/f": 5 * time.Second}},
	} {
		got := windows(learn(s, load(t, poolPolicy(step.check, step.backends))))
		if !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s: first probe windows %v, want %v", step.name, got, step.want)
		}
	}
}

// TestRoundLocalError: probes that fail on this host (probe.Result.Local: out of
// descriptors, see probe's TestLocalErrorIsNoVerdict) leave an up member up and a down
// one down, and are counted on their own.
func TestRoundLocalError(t *testing.T) {
	var local atomic.Bool
	var ok atomic.Bool
	ok.Store(true)
	s, board := newTestScheduler(t, prometheus.NewRegistry(), map[string]probe.Preparer{"http": func(*policy.Check) (probe.Func, error) {
		return func(context.Context, probe.Target) probe.Result {
			if local.Load() {
				return probe.Result{Reason: "connect: local error: socket: too many open files", Local: true}
			}
			return probe.Result{OK: ok.Load(), Reason: map[bool]string{false: "unexpected status 503"}[ok.Load()]}
		}, nil
	}})
	learn(s, load(t, `pool "p" {
  member "m" { address = "127.0.0.1" }
  check "http" {
    port = 8080
    rise = 1
    fall = 1
  }
}
`))
	for _, want := range []api.Status{api.StatusUp, api.StatusDown} {
		local.Store(false)
		ok.Store(want == api.StatusUp)
		rounds(t, s, 1)
		local.Store(true)
		rounds(t, s, 5)
		if m := member(t, board, "p/m"); m.Status != want {
			t.Errorf("after 5 local failures the member is %v, want %v as before", m.Status, want)
		}
	}
	if got := testutil.ToFloat64(s.metrics.localErrors.WithLabelValues("p", "http")); got != 10 {
		t.Errorf("healthd_probe_local_errors_total = %v, want 10", got)
	}
	if got := testutil.ToFloat64(s.metrics.probes.WithLabelValues("p", "http", "failure")); got != 1 {
		t.Errorf("healthd_probes_total{result=failure} = %v, want 1 (the member's own failure)", got)
	}
}
