package client

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd"
)

// reporterServer is a real healthd API (healthd.NewHandler) over a board the test sets.
type reporterServer struct {
	board *healthd.Board
	srv   *httptest.Server
}

func newReporter(t *testing.T, id string) *reporterServer {
	t.Helper()
	r := &reporterServer{board: healthd.NewBoard(id)}
	r.srv = httptest.NewServer(healthd.NewHandler(r.board, nil, nil))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *reporterServer) set(member string, st api.Status) {
	r.board.Set(api.MemberReport{Pool: "web", Member: member, Status: st, Since: time.Now()})
}

// run starts c and returns its updates, buffered; the test's end stops it.
func run(t *testing.T, c *Client) <-chan Update {
	t.Helper()
	updates := make(chan Update, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, func(u Update) {
			select {
			case updates <- u:
			case <-ctx.Done():
			}
		})
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return updates
}

// next waits (bounded) for an update matching want.
func next(t *testing.T, updates <-chan Update, what string, want func(Update) bool) Update {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-updates:
			if want(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestWatchDeliversReports(t *testing.T) {
	r1, r2 := newReporter(t, "r1"), newReporter(t, "r2")
	r1.set("a", api.StatusUp)
	c, err := New(Config{URLs: []string{r1.srv.URL, r2.srv.URL + "/v1/health"}, StaleAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	urls := c.URLs()
	if urls[0] != r1.srv.URL+"/v1/health" || urls[1] != r2.srv.URL+"/v1/health" {
		t.Fatalf("URLs = %v", urls)
	}
	updates := run(t, c)

	first := next(t, updates, "r1's first report", func(u Update) bool { return u.URL == urls[0] })
	if first.Err != nil || first.Report.Reporter != "r1" || len(first.Report.Members) != 1 || first.At.IsZero() {
		t.Fatalf("first update %+v", first)
	}
	next(t, updates, "r2's first report", func(u Update) bool { return u.URL == urls[1] && u.Err == nil })

	// A change reaches the client through the blocking watch, with a higher index.
	r1.set("a", api.StatusDown)
	u := next(t, updates, "the change", func(u Update) bool {
		return u.URL == urls[0] && u.Report != nil && len(u.Report.Members) == 1 && u.Report.Members[0].Status == api.StatusDown
	})
	if u.Report.Index <= first.Report.Index {
		t.Errorf("index %d after %d: want it to grow", u.Report.Index, first.Report.Index)
	}

	// A reporter that goes away is an error, retried.
	r2.srv.Close()
	next(t, updates, "r2's error", func(u Update) bool { return u.URL == urls[1] && u.Err != nil && u.Report == nil })
	next(t, updates, "r2's error again", func(u Update) bool { return u.URL == urls[1] && u.Err != nil })
}

func TestWaitIsHalfStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		stale, want time.Duration
	}{{0, DefaultWait}, {time.Second, 500 * time.Millisecond}, {10 * time.Minute, DefaultWait}} {
		c, err := New(Config{URLs: []string{"http://127.0.0.1:1"}, StaleAfter: tc.stale})
		if err != nil {
			t.Fatal(err)
		}
		if c.wait != tc.want {
			t.Errorf("StaleAfter %v: wait %v, want %v", tc.stale, c.wait, tc.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
	}{
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
