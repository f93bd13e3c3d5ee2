package admin

import (
	"net/http"
	"time"

	"github.com/glbdns/glbdns/api"
)

// Activity is which pools this node answered, and when last, for healthd's cold_start
// pools (GET /v1/activity, docs/health-api.md): healthd probes an idle pool less often.
//
// A pool counts as answered when a service that uses it (one of its pools or its
// fallback) put any member in an answer: a failover service whose first pool is down still
// keeps that pool active through the pool that answers, so it is probed at its interval
// and seen when it comes back. It is read from the answer counters (no work on the DNS
// path), every SampleEvery and at every request, so it is at most SampleEvery behind.

// readActivity reads the answer counters now and dates the pools of every service whose
// answers grew since the last reading.
func (a *Admin) readActivity(now time.Time) {
	v := a.view()
	if v == nil || a.cfg.Server == nil {
		return
	}
	counts := a.cfg.Server.AnswerCounts()
	snap := v.Snapshot()
	a.actMu.Lock()
	defer a.actMu.Unlock()
	sums := make(map[string]uint64, len(snap.Services))
	for _, svc := range snap.Services {
		pools := svc.Pools
		if svc.Fallback != nil {
			pools = append(pools[:len(pools):len(pools)], svc.Fallback)
		}
		var sum uint64
		for _, p := range pools {
			for _, m := range p.Members {
				n, _ := counts.Get(svc.Name, p.Name, m.Name)
				sum += n
			}
		}
		sums[svc.Name] = sum
		if sum > a.actSums[svc.Name] { // absent: 0, so a new service answered counts too
			for _, p := range pools {
				a.actLast[p.Name] = now
			}
		}
	}
	a.actSums = sums
}

// Activity is GET /v1/activity's answer as of now: every pool of the serving policy, with
// the last time this node answered it.
func (a *Admin) Activity() api.Activity {
	now := time.Now()
	a.readActivity(now)
	out := api.Activity{Since: a.actSince.UTC(), Pools: []api.PoolActivity{}}
	v := a.view()
	if v == nil {
		return out
	}
	a.actMu.Lock()
	defer a.actMu.Unlock()
	for _, p := range v.Snapshot().Pools {
		pa := api.PoolActivity{Pool: p.Name}
		if t, ok := a.actLast[p.Name]; ok {
			t = t.UTC()
			pa.LastAnswered = &t
		}
		out.Pools = append(out.Pools, pa)
	}
	return out
}

// activity is GET /v1/activity. Without an admin token reads are open, as every read is;
// with one, the admin token or the report token (a healthd that pushes may read it too:
// it says nothing of the backends but when they were answered).
func (a *Admin) activity(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Token != "" && !a.reporterAuthorized(w, r, "wrong admin or report token") {
		return
	}
	writeJSON(w, http.StatusOK, a.Activity())
}
