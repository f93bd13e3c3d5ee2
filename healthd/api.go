package healthd

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/glbdns/glbdns/internal/httpserve"
)

// Blocking watch limits, as Consul's blocking queries: a watch with no wait parameter
// waits DefaultWait, a longer one is capped at MaxWait, and each wait gets up to 1/16 of
// random extra so that many watchers started together do not return together.
const (
	DefaultWait = 5 * time.Minute
	MaxWait     = 5 * time.Minute
)

// IndexHeader carries the report's index on every /v1/health response.
const IndexHeader = "X-Healthd-Index"

// NewHandler serves the health API from board:
//
//	GET /v1/health[?index=N&wait=30s][&history=1]  the Report as JSON (blocking watch)
//	GET /healthz                                   200 while the process serves
//	GET /readyz                                    200 once ready() is true, else 503
//
// ready may be nil (always ready). extra, when not nil, serves every other path (metrics).
func NewHandler(board *Board, ready func() bool, extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) { serveHealth(w, r, board) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil && !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if extra != nil {
		mux.Handle("/", extra)
	}
	return mux
}

// errBadWait and errBadIndex are the 400 reasons of a malformed watch.
var (
	errBadWait  = errors.New(`bad "wait": want a positive Go duration such as "30s"`)
	errBadIndex = errors.New(`bad "index": want a non-negative integer`)
)

// parseWatch reads ?index and ?wait. watch is false without an index parameter.
func parseWatch(r *http.Request) (index uint64, wait time.Duration, watch bool, err error) {
	q := r.URL.Query()
	if ws := q.Get("wait"); ws != "" {
		wait, err = time.ParseDuration(ws)
		if err != nil || wait <= 0 {
			return 0, 0, false, errBadWait
		}
		wait = min(wait, MaxWait)
	} else {
		wait = DefaultWait
	}
	is := q.Get("index")
	if is == "" {
		return 0, 0, false, nil
	}
	index, err = strconv.ParseUint(is, 10, 64)
	if err != nil {
		return 0, 0, false, errBadIndex
	}
	return index, wait, true, nil
}

func serveHealth(w http.ResponseWriter, r *http.Request, board *Board) {
	index, wait, watch, err := parseWatch(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Block while the index has not passed the client's. An index above ours means we
	// restarted (indexes began again at 1): answer at once so the client resets.
	if cur, changed := board.Watch(); watch && cur == index {
		wait += rand.N(wait/16 + 1)
		httpserve.ExtendWrite(w, wait+10*time.Second) // the answer comes late by design
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
			// The client left, or healthd is stopping (its base context wakes the
			// watches): answer the current report either way. An empty 200 would read as
			// a broken report to the client, which then logs healthd as unreachable.
		}
		t.Stop()
	}
	rep := board.Report(r.URL.Query().Get("history") != "")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(IndexHeader, strconv.FormatUint(rep.Index, 10))
	_ = json.NewEncoder(w).Encode(rep)
}
