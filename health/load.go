package health

import (
	"slices"
	"time"

	"github.com/glbdns/glbdns/api"
)

// LoadCoalesce is the delay healthd may add to a load reading before a watcher sees it
// (healthd.LoadCoalesce): part of a reading's staleness bound.
const LoadCoalesce = time.Second

// loadReading is one reporter's load reading of a member, dated on glbdns's clock.
type loadReading struct {
	value float64
	at    time.Time     // when it was taken: receipt minus its age in the report
	stale time.Duration // how long it counts: three intervals plus LoadCoalesce
}

// readings keeps the load readings of rep, received at at. A reading is dated by its age
// in the report, not by its timestamp, so that a skew between healthd's clock and ours
// does not make every reading stale (or fresh for ever).
func readings(rep *api.Report, at time.Time) map[memberKey]loadReading {
	var out map[memberKey]loadReading
	for i := range rep.Members {
		m := &rep.Members[i]
		l := m.Load
		if l == nil || l.IntervalSeconds <= 0 || l.Value != l.Value || l.Value < 0 {
			continue
		}
		if out == nil {
			out = map[memberKey]loadReading{}
		}
		out[memberKey{m.Pool, m.Member}] = loadReading{
			value: l.Value,
			at:    at.Add(-time.Duration(max(0, l.AgeSeconds) * float64(time.Second))),
			stale: 3*time.Duration(l.IntervalSeconds*float64(time.Second)) + LoadCoalesce,
		}
	}
	return out
}

// mergeLoads is the median of the fresh readings of every member, over the fresh
// reporters: one reporter whose view of a member is odd (a proxy in front of it, a
// partition) moves it no further than the middle. A reading older than its stale bound
// counts for nothing; a member with no fresh reading is absent, and least_connections
// answers it by its weight.
func mergeLoads(reporters []*reporter, now time.Time, staleAfter time.Duration) map[memberKey]float64 {
	var all map[memberKey][]float64
	for _, r := range reporters {
		if !r.fresh(now, staleAfter) {
			continue
		}
		for k, l := range r.loads {
			if now.Sub(l.at) >= l.stale {
				continue
			}
			if all == nil {
				all = map[memberKey][]float64{}
			}
			all[k] = append(all[k], l.value)
		}
	}
	if all == nil {
		return nil
	}
	out := make(map[memberKey]float64, len(all))
	for k, vs := range all {
		slices.Sort(vs)
		n := len(vs)
		if n%2 == 1 {
			out[k] = vs[n/2]
		} else {
			out[k] = (vs[n/2-1] + vs[n/2]) / 2
		}
	}
	return out
}
