package healthd

import (
	"slices"
	"strings"
	"sync"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
)

// NewResultReport converts a probe result for the API.
func NewResultReport(r probe.Result) api.ResultReport {
	return api.ResultReport{OK: r.OK, At: r.At.UTC(), LatencySeconds: r.Latency.Seconds(), Reason: r.Reason}
}

// Store is the published health state: what the health API serves. The scheduler writes
// it; tests (and the client's tests) may write it directly to serve a controlled state.
// It is versioned by an index that grows only when a status changes, so a blocking
// watcher wakes for news and not for every probe (Consul's X-Consul-Index semantics).
type Store struct {
	reporter string

	mu      sync.Mutex
	index   uint64
	members map[string]api.MemberReport
	changed chan struct{} // closed and replaced when index grows
}

// NewStore returns an empty store for the reporter id. Its index starts at 1, so that a
// watch from index 0 (a client's first request) returns at once.
func NewStore(reporter string) *Store {
	return &Store{reporter: reporter, index: 1, members: map[string]api.MemberReport{}, changed: make(chan struct{})}
}

// Reporter is the id the store publishes.
func (s *Store) Reporter() string { return s.reporter }

// Set publishes m, replacing the member's previous entry. The index grows when the
// member is new or its status or any check's status changed.
func (s *Store) Set(m api.MemberReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := m.ID()
	old, ok := s.members[id]
	s.members[id] = m
	if !ok || statusChanged(old, m) {
		s.bump()
	}
}

// Delete removes a member; the index grows if it was present.
func (s *Store) Delete(pool, member string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := pool + "/" + member
	if _, ok := s.members[id]; ok {
		delete(s.members, id)
		s.bump()
	}
}

func (s *Store) bump() {
	s.index++
	close(s.changed)
	s.changed = make(chan struct{})
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
func (s *Store) Watch() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index, s.changed
}

// Report returns a copy of the published state, members sorted by pool then name. With
// history false, per-check histories are left out.
func (s *Store) Report(history bool) api.Report {
	s.mu.Lock()
	r := api.Report{Reporter: s.reporter, Index: s.index, Members: make([]api.MemberReport, 0, len(s.members))}
	for _, m := range s.members {
		r.Members = append(r.Members, m)
	}
	s.mu.Unlock()
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
