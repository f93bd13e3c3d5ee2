package healthd

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	addr    netip.AddrPort
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.healthy.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.addr = netip.MustParseAddrPort(b.srv.Listener.Addr().String())
	return b
}

// snapshot builds a policy snapshot of one pool whose members each probe one backend.
// (Built in Go rather than HCL: these tests exercise the scheduler, not the policy loader.)
func snapshot(pool string, check policy.Check, backends map[string]*backend) *policy.Snapshot {
	snap := &policy.Snapshot{}
	p := &policy.Pool{Name: pool}
	for i, n := range sortedKeys(backends) {
		c := check
		c.Port = int(backends[n].addr.Port())
		m := &policy.Member{Index: i, Pool: pool, Name: n, Addr: backends[n].addr.Addr(), Weight: 1, Checks: []*policy.Check{&c}}
		p.Members = append(p.Members, m)
		snap.Members = append(snap.Members, m)
	}
	snap.Pools = []*policy.Pool{p}
	return snap
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

var fastCheck = policy.Check{Name: "http", Type: "http", Path: "/health", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}

// getReport fetches /v1/health from the API server.
func getReport(t *testing.T, url string) api.Report {
	t.Helper()
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func memberStatus(r api.Report, id string) (api.MemberReport, bool) {
	for _, m := range r.Members {
		if m.ID() == id {
			return m, true
		}
	}
	return api.MemberReport{}, false
}

// waitStatus polls the API (bounded: 10s) until member id has status want.
func waitStatus(t *testing.T, url, id string, want api.Status) api.MemberReport {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok := memberStatus(getReport(t, url), id)
		if ok && m.Status == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %s: status %v (present %v), want %v", id, m.Status, ok, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestScheduler(t *testing.T, reg prometheus.Registerer) (*Scheduler, *Board, string) {
	t.Helper()
	board := NewBoard("test")
	var metrics *Metrics
	if reg != nil {
		metrics = NewMetrics(reg)
	}
	s := NewScheduler(SchedulerConfig{Board: board, Logger: slog.New(slog.DiscardHandler), Metrics: metrics})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(NewHandler(board, s.Ready, nil))
	t.Cleanup(srv.Close)
	return s, board, srv.URL
}

func TestSchedulerFlip(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _, url := newTestScheduler(t, reg)
	b := newBackend(t)
	s.Update(snapshot("web", fastCheck, map[string]*backend{"a": b}))

	m := waitStatus(t, url, "web/a", api.StatusUp)
	if m.LastResult == nil || !m.LastResult.OK || len(m.Checks) != 1 || m.Checks[0].Status != api.StatusUp {
		t.Fatalf("up member report: %+v", m)
	}
	if !s.Ready() {
		t.Error("not ready after every check had a result")
	}

	b.healthy.Store(false)
	m = waitStatus(t, url, "web/a", api.StatusDown)
	if m.Reason != "unexpected status 503" || m.Checks[0].Failures < 2 {
		t.Errorf("down member: reason %q, failures %d", m.Reason, m.Checks[0].Failures)
	}
	if got := testutil.ToFloat64(s.metrics.memberUp.WithLabelValues("web", "a")); got != 0 {
		t.Errorf("healthd_member_up = %v while down", got)
	}

	b.healthy.Store(true)
	m = waitStatus(t, url, "web/a", api.StatusUp)
	if m.Reason != "unexpected status 503" {
		t.Errorf("last failure reason %q was not kept after recovery", m.Reason)
	}
	if got := testutil.ToFloat64(s.metrics.memberUp.WithLabelValues("web", "a")); got != 1 {
		t.Errorf("healthd_member_up = %v while up", got)
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

func TestSchedulerHistory(t *testing.T) {
	s, _, url := newTestScheduler(t, nil)
	b := newBackend(t)
	b.healthy.Store(false)
	s.Update(snapshot("web", fastCheck, map[string]*backend{"a": b}))
	waitStatus(t, url, "web/a", api.StatusDown)
	b.healthy.Store(true)
	waitStatus(t, url, "web/a", api.StatusUp)
	// Run well past the recent window: the failures must still be in the history.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/health?history=1")
		if err != nil {
			t.Fatal(err)
		}
		var r api.Report
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		h := r.Members[0].Checks[0].History
		if len(h) > historyLen && h[0].OK == false && h[len(h)-1].OK {
			for i := 1; i < len(h); i++ {
				if h[i].At.Before(h[i-1].At) {
					t.Fatalf("history not in time order at %d: %v", i, h)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history never kept old failures past the recent window: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := getReport(t, url).Members[0].Checks[0].History; h != nil {
		t.Errorf("history served without ?history=1: %d entries", len(h))
	}
}

func TestSchedulerMultipleChecks(t *testing.T) {
	s, _, url := newTestScheduler(t, nil)
	web, admin := newBackend(t), newBackend(t)
	c1, c2 := fastCheck, fastCheck
	c1.Port, c2.Port, c2.Name = int(web.addr.Port()), int(admin.addr.Port()), "admin"
	m := &policy.Member{Pool: "web", Name: "a", Addr: web.addr.Addr(), Checks: []*policy.Check{&c1, &c2}}
	s.Update(&policy.Snapshot{Members: []*policy.Member{m}})
	waitStatus(t, url, "web/a", api.StatusUp)
	admin.healthy.Store(false) // one failing check takes the member down
	got := waitStatus(t, url, "web/a", api.StatusDown)
	if got.Checks[0].Status != api.StatusUp || got.Checks[1].Status != api.StatusDown {
		t.Errorf("checks %v/%v, want up/down", got.Checks[0].Status, got.Checks[1].Status)
	}
}

func TestSchedulerUpdate(t *testing.T) {
	s, board, url := newTestScheduler(t, nil)
	a, b, c := newBackend(t), newBackend(t), newBackend(t)
	s.Update(snapshot("web", fastCheck, map[string]*backend{"a": a, "b": b}))
	since := waitStatus(t, url, "web/a", api.StatusUp).Since
	waitStatus(t, url, "web/b", api.StatusUp)

	// Reload: a stays (interval changed), b goes, c comes.
	changed := fastCheck
	changed.Interval = 30 * time.Millisecond
	s.Update(snapshot("web", changed, map[string]*backend{"a": a, "c": c}))
	r := getReport(t, url)
	ma, ok := memberStatus(r, "web/a")
	if !ok || ma.Status != api.StatusUp || !ma.Since.Equal(since) {
		t.Errorf("kept member a: %+v, want up since %v", ma, since)
	}
	if _, ok := memberStatus(r, "web/b"); ok {
		t.Error("removed member b still published")
	}
	if mc, ok := memberStatus(r, "web/c"); !ok || mc.Status != api.StatusUnknown {
		t.Errorf("new member c: %+v, want unknown", mc)
	}
	waitStatus(t, url, "web/c", api.StatusUp)

	// Moving a to another address restarts its check from unknown.
	s.Update(snapshot("web", changed, map[string]*backend{"a": c, "c": c}))
	if ma, _ := memberStatus(getReport(t, url), "web/a"); ma.Checks[0].Status != api.StatusUnknown {
		t.Errorf("member a with a new target: check %v, want unknown", ma.Checks[0].Status)
	}
	waitStatus(t, url, "web/a", api.StatusUp)
	if n := len(board.Report(false).Members); n != 2 {
		t.Errorf("%d members published, want 2", n)
	}
}

func TestSchedulerPanic(t *testing.T) {
	board := NewBoard("test")
	probers := map[string]probe.Func{"boom": func(context.Context, probe.Target, *policy.Check) probe.Result { panic("kaboom") }}
	s := NewScheduler(SchedulerConfig{Board: board, Logger: slog.New(slog.DiscardHandler), Probers: probers, Metrics: NewMetrics(prometheus.NewRegistry())})
	defer s.Close()
	c := policy.Check{Name: "x", Type: "boom", Interval: 10 * time.Millisecond, Fall: 1}
	s.Update(&policy.Snapshot{Members: []*policy.Member{{Pool: "p", Name: "m", Addr: netip.MustParseAddr("127.0.0.1"), Checks: []*policy.Check{&c}}}})
	srv := httptest.NewServer(NewHandler(board, nil, nil))
	defer srv.Close()
	m := waitStatus(t, srv.URL, "p/m", api.StatusDown)
	if m.Reason != "prober panic: kaboom" {
		t.Errorf("reason %q", m.Reason)
	}
	if testutil.ToFloat64(s.metrics.panics) < 1 {
		t.Error("panic not counted")
	}
}

func TestSchedulerNoChecks(t *testing.T) {
	s, _, url := newTestScheduler(t, nil)
	s.Update(&policy.Snapshot{Members: []*policy.Member{{Pool: "p", Name: "static", Addr: netip.MustParseAddr("192.0.2.1")}}})
	if m, _ := memberStatus(getReport(t, url), "p/static"); m.Status != api.StatusUp {
		t.Errorf("member without checks: %v, want up", m.Status)
	}
	if !s.Ready() {
		t.Error("not ready with nothing to probe")
	}
}
