package healthd

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

func get(t *testing.T, url string) (*http.Response, api.Report, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r api.Report
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return resp, r, string(body)
}

func TestAPIBadRequests(t *testing.T) {
	srv := httptest.NewServer(NewHandler(NewBoard("r1"), nil, nil))
	defer srv.Close()
	tests := []struct {
		name, query, reason string
	}{
		{"unparsable wait", "?index=1&wait=soon", `bad "wait"`},
		{"negative wait", "?index=1&wait=-3s", `bad "wait"`},
		{"zero wait", "?index=1&wait=0s", `bad "wait"`},
		{"bad index", "?index=-1&wait=1s", `bad "index"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, body := get(t, srv.URL+"/v1/health"+tc.query)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.reason) {
				t.Errorf("status %d body %q, want 400 with %q", resp.StatusCode, body, tc.reason)
			}
		})
	}
}

func TestAPIBlockingWatch(t *testing.T) {
	board := NewBoard("r1")
	board.Set(api.MemberReport{Pool: "web", Member: "a", Status: api.StatusUnknown})
	srv := httptest.NewServer(NewHandler(board, nil, nil))
	defer srv.Close()

	resp, r, _ := get(t, srv.URL+"/v1/health")
	if r.Reporter != "r1" || len(r.Members) != 1 || resp.Header.Get(IndexHeader) != strconv.FormatUint(r.Index, 10) {
		t.Fatalf("report %+v, header %q", r, resp.Header.Get(IndexHeader))
	}
	idx := r.Index

	t.Run("a status that stays does not move the index", func(t *testing.T) {
		// A probe that changes nothing must not wake the watchers.
		before, changed := board.Watch()
		board.Set(api.MemberReport{Pool: "web", Member: "a", Status: api.StatusUnknown, Reason: "still nothing"})
		after, _ := board.Watch()
		select {
		case <-changed:
			t.Fatal("watch woken without a status change")
		default:
		}
		if after != before {
			t.Errorf("index %d -> %d without a status change", before, after)
		}
	})
	t.Run("returns when the index moves", func(t *testing.T) {
		done := make(chan api.Report, 1)
		go func() {
			_, r, _ := get(t, srv.URL+"/v1/health?index="+strconv.FormatUint(idx, 10)+"&wait=1m")
			done <- r
		}()
		board.Set(api.MemberReport{Pool: "web", Member: "a", Status: api.StatusUp})
		select {
		case r := <-done:
			if r.Index <= idx || r.Members[0].Status != api.StatusUp {
				t.Errorf("watch answered index %d status %v, want > %d and up", r.Index, r.Members[0].Status, idx)
			}
			idx = r.Index
		case <-time.After(10 * time.Second):
			t.Fatal("watch did not return after the index moved")
		}
	})
	t.Run("returns after wait", func(t *testing.T) {
		_, r, _ := get(t, srv.URL+"/v1/health?index="+strconv.FormatUint(idx, 10)+"&wait=30ms")
		if r.Index != idx {
			t.Errorf("index %d after a quiet wait, want %d", r.Index, idx)
		}
	})
	t.Run("index ahead returns at once", func(t *testing.T) {
		// A client ahead of us means healthd restarted: answer now so it resets. Had the
		// handler waited its minute, the request's 10s bound fails the test instead.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/health?index="+strconv.FormatUint(idx+100, 10)+"&wait=1m", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("watch from an index ahead did not answer at once: %v", err)
		}
		defer resp.Body.Close()
		var r api.Report
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Index != idx {
			t.Errorf("index %d (%v), want %d", r.Index, err, idx)
		}
	})
	t.Run("delete moves the index", func(t *testing.T) {
		board.Delete("web", "a")
		_, r, _ := get(t, srv.URL+"/v1/health?index="+strconv.FormatUint(idx, 10)+"&wait=1m")
		if r.Index != idx+1 || len(r.Members) != 0 {
			t.Errorf("after delete: index %d members %d", r.Index, len(r.Members))
		}
	})
}

func TestAPIProbes(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(NewHandler(NewBoard("r1"), ready.Load, nil))
	defer srv.Close()
	for _, tc := range []struct {
		path  string
		ready bool
		code  int
	}{
		{"/healthz", false, 200},
		{"/readyz", false, 503},
		{"/readyz", true, 200},
		{"/nope", true, 404},
	} {
		ready.Store(tc.ready)
		resp, _, _ := get(t, srv.URL+tc.path)
		if resp.StatusCode != tc.code {
			t.Errorf("%s (ready %v): %d, want %d", tc.path, tc.ready, resp.StatusCode, tc.code)
		}
	}
}

// TestAPIWatchAnswersOnShutdown: a blocked watch woken by healthd stopping (the server's
// base context, which Run cancels before it closes) gets the current report, not an empty
// 200 that its client would read as a broken report.
func TestAPIWatchAnswersOnShutdown(t *testing.T) {
	board := NewBoard("r1")
	board.Set(api.MemberReport{Pool: "web", Member: "a", Status: api.StatusUp})
	base, stop := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(NewHandler(board, nil, nil))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()
	idx, _ := board.Watch()
	done := make(chan api.Report, 1)
	go func() {
		_, r, _ := get(t, srv.URL+"/v1/health?index="+strconv.FormatUint(idx, 10)+"&wait=1m")
		done <- r
	}()
	time.Sleep(100 * time.Millisecond) // the watch is blocked by now, or answers at once anyway
	stop()
	select {
	case r := <-done:
		if r.Reporter != "r1" || len(r.Members) != 1 || r.Members[0].Status != api.StatusUp {
			t.Errorf("the watch woken by the shutdown answered %+v, want the current report", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not answer after the shutdown")
	}
}
