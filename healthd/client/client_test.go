package client

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd"
	"github.com/glbdns/glbdns/policy"
)

// reporterServer is a real healthd API (healthd.NewHandler) over a board the test sets.
type reporterServer struct {
	board *healthd.Board
	srv   *httptest.Server
}

func newReporter(t *testing.T, id string, states map[string]api.Status) *reporterServer {
	t.Helper()
	r := &reporterServer{board: healthd.NewBoard(id)}
	r.set(states)
	r.srv = httptest.NewServer(healthd.NewHandler(r.board, nil, nil))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *reporterServer) set(states map[string]api.Status) {
	for name, st := range states {
		r.board.Set(api.MemberReport{Pool: "web", Member: name, Status: st, Since: time.Now()})
	}
}

var testSnap = func() *policy.Snapshot {
	s := &policy.Snapshot{}
	for i, n := range []string{"a", "b", "c"} {
		s.Members = append(s.Members, &policy.Member{Index: i, Pool: "web", Name: n})
	}
	return s
}()

// poll waits (bounded: 10s) until cond holds.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func upList(c *Client) string {
	h := c.For(testSnap)
	b := make([]byte, len(testSnap.Members))
	for i, m := range testSnap.Members {
		b[i] = map[bool]byte{true: 'U', false: 'D'}[h.Up(m)]
	}
	return string(b)
}

func start(t *testing.T, cfg Config) (*Client, *atomic.Int64) {
	t.Helper()
	var changes atomic.Int64
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.OnChange = func() { changes.Add(1) }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, &changes
}

func TestMajorityStaleAndGrace(t *testing.T) {
	const U, D, X = api.StatusUp, api.StatusDown, api.StatusUnknown
	r1 := newReporter(t, "r1", map[string]api.Status{"a": D, "b": U, "c": X})
	r2 := newReporter(t, "r2", map[string]api.Status{"a": D, "b": D, "c": D})
	r3 := newReporter(t, "r3", map[string]api.Status{"a": U, "b": U, "c": X})
	c, changes := start(t, Config{
		URLs:       []string{r1.srv.URL, r2.srv.URL, r3.srv.URL + "/v1/health"},
		StaleAfter: 300 * time.Millisecond,
		Grace:      time.Second,
	})

	poll(t, "every reporter heard", func() bool {
		for _, rs := range c.Reporters() {
			if !rs.Fresh {
				return false
			}
		}
		return true
	})
	// a: 2 of 3 say down. b: 1 of 3. c: only r2 has a verdict, and it says down.
	poll(t, "majority view", func() bool { return upList(c) == "DUD" })
	if changes.Load() == 0 {
		t.Error("OnChange not called")
	}
	for _, rs := range c.Reporters() {
		if !rs.Fresh || rs.ID == "" || rs.Index == 0 || rs.Members != 3 {
			t.Errorf("reporter %+v: want fresh with id, index and 3 members", rs)
		}
	}

	// A status change reaches the view through the blocking watch.
	r3.set(map[string]api.Status{"c": U})
	poll(t, "c split 1:1 is not a majority", func() bool { return upList(c) == "DUU" })

	// r2 goes silent: after StaleAfter it stops counting; a is 1:1 now, so up.
	r2.srv.Close()
	poll(t, "r2 stale", func() bool { return !c.Reporters()[1].Fresh })
	poll(t, "view without r2", func() bool { return upList(c) == "UUU" })
	if c.Status("web/a") != U {
		t.Errorf("a = %v, want up", c.Status("web/a"))
	}

	// Every reporter silent: the last view is kept through Grace, then all unknown.
	r1.set(map[string]api.Status{"b": D})
	r3.set(map[string]api.Status{"b": D})
	poll(t, "b down", func() bool { return upList(c) == "UDU" })
	r1.srv.Close()
	r3.srv.Close()
	poll(t, "all stale", func() bool {
		for _, rs := range c.Reporters() {
			if rs.Fresh {
				return false
			}
		}
		return true
	})
	if got := c.Status("web/b"); got != D {
		t.Errorf("b = %v just after every reporter went stale, want down kept for grace", got)
	}
	poll(t, "grace over", func() bool { return c.Status("web/b") == X })
	if got := upList(c); got != "UUU" {
		t.Errorf("after grace: %s, want all up (unknown is up)", got)
	}
	if rs := c.Reporters()[0]; rs.LastError == "" {
		t.Errorf("reporter %+v: want its connection error", rs)
	}
}

func TestUnknownIsDown(t *testing.T) {
	r := newReporter(t, "r1", map[string]api.Status{"a": api.StatusUp, "b": api.StatusUnknown})
	cfg := Config{URLs: []string{r.srv.URL}, UnknownIsDown: true}
	before, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := upList(before); got != "DDD" {
		t.Errorf("before any report: %s, want all down", got)
	}
	c, _ := start(t, cfg)
	poll(t, "a up", func() bool { return upList(c) == "UDD" })
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"no url", nil},
		{"not http", []string{"ftp://x"}},
		{"no host", []string{"http://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Config{URLs: tc.urls}); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func TestHealthOutOfRange(t *testing.T) {
	r := newReporter(t, "r1", nil)
	c, _ := start(t, Config{URLs: []string{r.srv.URL}})
	h := c.For(testSnap)
	if !h.Up(&policy.Member{Index: 99, Pool: "web", Name: "z"}) {
		t.Error("member outside the snapshot is not treated as unknown (up)")
	}
}

func BenchmarkHealthUp(b *testing.B) {
	c, err := New(Config{URLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	h := c.For(testSnap)
	m := testSnap.Members[1]
	b.ReportAllocs()
	for b.Loop() {
		if !h.Up(m) {
			b.Fatal("down")
		}
	}
}

// TestPoolUnknownIs: a pool's unknown_is overrides the client's default either way, for
// members not reported yet; reported members follow their reports.
func TestPoolUnknownIs(t *testing.T) {
	snap := &policy.Snapshot{}
	for _, pc := range []struct {
		pool string
		u    policy.UnknownIs
	}{{"dflt", policy.UnknownDefault}, {"open", policy.UnknownUp}, {"closed", policy.UnknownDown}} {
		p := &policy.Pool{Name: pc.pool, UnknownIs: pc.u}
		for _, n := range []string{"reported", "silent"} {
			m := &policy.Member{Index: len(snap.Members), Pool: pc.pool, Name: n}
			p.Members = append(p.Members, m)
			snap.Members = append(snap.Members, m)
		}
		snap.Pools = append(snap.Pools, p)
	}
	r := newReporter(t, "r1", nil)
	for _, p := range []string{"dflt", "open", "closed"} {
		r.board.Set(api.MemberReport{Pool: p, Member: "reported", Status: api.StatusUp, Since: time.Now()})
	}
	list := func(c *Client) string {
		h := c.For(snap)
		b := make([]byte, len(snap.Members))
		for i, m := range snap.Members {
			b[i] = map[bool]byte{true: 'U', false: 'D'}[h.Up(m)]
		}
		return string(b)
	}
	for _, tc := range []struct {
		unknownIsDown bool
		want          string // dflt reported, dflt silent, open ..., closed ...
	}{{false, "UUUUUD"}, {true, "UDUUUD"}} {
		c, _ := start(t, Config{URLs: []string{r.srv.URL}, UnknownIsDown: tc.unknownIsDown})
		poll(t, "reports merged", func() bool { return c.Status("closed/reported") == api.StatusUp })
		if got := list(c); got != tc.want {
			t.Errorf("UnknownIsDown=%v: %s, want %s", tc.unknownIsDown, got, tc.want)
		}
	}
}
