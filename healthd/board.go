package healthd

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
)

// NewResultReport converts a probe result for the API.
func NewResultReport(r probe.Result) api.ResultReport {
	return api.ResultReport{OK: r.OK, At: r.At.UTC(), LatencySeconds: r.Latency.Seconds(), Reason: r.Reason}
}

// Board holds the published report of every member: what the health API serves. The
// scheduler writes it; tests (and the client's tests) may write it directly to serve a
// report they control.
// It is versioned by an index that grows only when a status changes, so a blocking
// watcher wakes for news and not for every probe (Consul's X-Consul-Index semantics).
type Board struct {
	reporter string

	mu      sync.Mutex
	index   uint64
	members map[string]api.MemberReport
	changed chan struct{} // closed and replaced when index grows
	// loadBump is set while a bump for load readings alone is waiting (LoadCoalesce);
	// lastLoadBump is when the last one happened.
	loadBump     bool
	lastLoadBump time.Time
}

// LoadCoalesce bounds how often a change of load readings alone moves the index:
// readings arrive every interval from every member, and waking every watcher for each
// would send the whole report as often as there are members. The first change after a
// quiet LoadCoalesce moves it at once, later ones wait for the end of the window: at most
// one such wake a second (gdnsd coalesces health bursts the same way), and a reading at
// most a second late.
var LoadCoalesce = time.Second

// NewBoard returns an empty board for the reporter id. Its index starts at 1, so that a
// watch from index 0 (a client's first request) returns at once.
func NewBoard(reporter string) *Board {
	return &Board{reporter: reporter, index: 1, members: map[string]api.MemberReport{}, changed: make(chan struct{})}
}

// Reporter is the id the board publishes.
func (b *Board) Reporter() string { return b.reporter }

// Set publishes m, replacing the member's previous entry. The index grows when the
// member is new or its status or any check's status changed.
func (b *Board) Set(m api.MemberReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := m.ID()
	old, ok := b.members[id]
	b.members[id] = m
	switch {
	case !ok || statusChanged(old, m):
		b.bump()
	case loadChanged(old.Load, m.Load) && !b.loadBump:
		now := time.Now()
		if wait := b.lastLoadBump.Add(LoadCoalesce).Sub(now); wait > 0 {
			b.loadBump = true
			time.AfterFunc(wait, func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				b.loadBump = false
				b.lastLoadBump = time.Now()
				b.bump()
			})
			return
		}
		b.lastLoadBump = now
		b.bump()
	}
}

// loadChanged reports whether a member's load reading is news to a watcher.
func loadChanged(a, b *api.LoadReport) bool {
	if a == nil || b == nil {
		return a != b
	}
	return a.Value != b.Value || !a.At.Equal(b.At) || a.Reason != b.Reason
}

// Delete removes a member; the index grows if it was present.
func (b *Board) Delete(pool, member string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := pool + "/" + member
	if _, ok := b.members[id]; ok {
		delete(b.members, id)
		b.bump()
	}
}

func (b *Board) bump() {
	b.index++
	close(b.changed)
	b.changed = make(chan struct{})
}

func statusChanged(a, b api.MemberReport) bool {
	if a.Status != b.Status || len(a.Checks) != len(b.Checks) {
		return true
	}
	for i := range a.Checks {
		if a.Checks[i].Name != b.Checks[i].Name || a.Checks[i].Status != b.Checks[i].Status {
			return true
		}
	}
	return false
}

// Watch returns the current index and a channel closed when it next grows.
func (b *Board) Watch() (uint64, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.index, b.changed
}

// Report returns a copy of the board, members sorted by pool then name. With
// history false, per-check histories are left out.
func (b *Board) Report(history bool) api.Report {
	b.mu.Lock()
	r := api.Report{Reporter: b.reporter, Index: b.index, Members: make([]api.MemberReport, 0, len(b.members))}
	for _, m := range b.members {
		r.Members = append(r.Members, m)
	}
	b.mu.Unlock()
	now := time.Now()
	for i := range r.Members {
		if l := r.Members[i].Load; l != nil {
			c := *l // the board's entry is shared: fill in the age on a copy
			c.AgeSeconds = max(0, now.Sub(c.At).Seconds())
			r.Members[i].Load = &c
		}
	}
	slices.SortFunc(r.Members, func(a, b api.MemberReport) int {
		if c := strings.Compare(a.Pool, b.Pool); c != 0 {
			return c
		}
		return strings.Compare(a.Member, b.Member)
	})
	if !history {
		for i := range r.Members {
			m := &r.Members[i]
			if hasHistory(m.Checks) {
				checks := slices.Clone(m.Checks)
				for j := range checks {
					checks[j].History = nil
				}
				m.Checks = checks
			}
		}
	}
	return r
}

func hasHistory(cs []api.CheckReport) bool {
	for _, c := range cs {
		if len(c.History) > 0 {
			return true
		}
	}
	return false
}
