package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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

// TestOversizedReportRefused: a real HTTP server sends a report over the cap, once with a
// Content-Length and once chunked; both are refused as ErrReportTooLarge, after a good
// report, and the good one is the last report delivered.
func TestOversizedReportRefused(t *testing.T) {
	const limit = 64 << 10
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		n := calls.Add(1)
		if n == 1 {
			fmt.Fprintf(w, `{"reporter":"big","index":%d,"members":[{"pool":"web","member":"a","status":"down"}]}`, n)
			return
		}
		// A valid report, padded past the cap with members.
		var b strings.Builder
		fmt.Fprintf(&b, `{"reporter":"big","index":%d,"members":[`, n)
		for i := 0; b.Len() < 4*limit; i++ {
			fmt.Fprintf(&b, `{"pool":"web","member":"m%d","status":"up","reason":"%s"},`, i, strings.Repeat("x", 200))
		}
		b.WriteString(`{"pool":"web","member":"a","status":"up"}]}`)
		if n%2 == 0 {
			w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		} else if f, ok := w.(http.Flusher); ok {
			f.Flush() // no Content-Length: the cap is found while reading
		}
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{URLs: []string{srv.URL}, StaleAfter: 2 * time.Second, MaxReportBytes: func() int64 { return limit }})
	if err != nil {
		t.Fatal(err)
	}
	updates := run(t, c)
	first := next(t, updates, "the good report", func(u Update) bool { return true })
	if first.Err != nil || first.Report.Members[0].Status != api.StatusDown {
		t.Fatalf("first update %+v", first)
	}
	for _, what := range []string{"with a Content-Length", "chunked"} {
		u := next(t, updates, "an update", func(u Update) bool { return true })
		if u.Report != nil || !errors.Is(u.Err, ErrReportTooLarge) {
			t.Fatalf("oversized report %s: %+v, want ErrReportTooLarge", what, u)
		}
		t.Logf("%s: %v", what, u.Err)
	}
}

func TestReportCap(t *testing.T) {
	if got := ReportCap(10, 10); got != DefaultMaxReportBytes {
		t.Errorf("small policy: %d, want the default %d", got, DefaultMaxReportBytes)
	}
	if got := ReportCap(100_000, 200_000); got != 300_000<<10 {
		t.Errorf("100k members, 200k checks: %d, want 300,000 KiB", got)
	}
}

// TestPacer: quick answers are paced from the second on, doubling to maxPace; an answer
// that blocked resets.
func TestPacer(t *testing.T) {
	var p pacer
	quick, slow := time.Millisecond, 2*quickAnswer
	var got []time.Duration
	for _, took := range []time.Duration{quick, quick, quick, quick, quick, quick, quick, quick, slow, quick, quick} {
		got = append(got, p.next(took))
	}
	ms := time.Millisecond
	want := []time.Duration{0, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, 0, 0, 50 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

// TestQuickSourcePaced counts the requests a real loopback server that answers every watch
// at once (it ignores index and wait) gets in one second: without pacing, thousands.
func TestQuickSourcePaced(t *testing.T) {
	var polls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"reporter":"fast","index":7,"members":[{"pool":"web","member":"a","status":"down"}]}`)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{URLs: []string{srv.URL}, StaleAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const d = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var delivered atomic.Int64
	c.Watch(ctx, c.URLs()[0], func(u Update) {
		if u.Err == nil {
			delivered.Add(1)
		}
	})
	n := polls.Load()
	t.Logf("MEASURE polls of a source that answers at once, in %v: %d", d, n)
	// Undelayed: 2 polls, then 25ms..50ms, 50..100, 100..200, 200..400, 400..800, then at
	// least 500ms each: at most 2+5+2 polls in 2s at the shortest jitter, 12 with slack.
	if n > 12 || n < 3 {
		t.Errorf("%d polls in %v, want 3 to 12", n, d)
	}
	if delivered.Load() < n-1 {
		t.Errorf("%d of %d answers delivered", delivered.Load(), n)
	}
}
