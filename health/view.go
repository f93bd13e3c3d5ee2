package health

import (
	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// View is the health of one snapshot's members at the moment it was built, indexed by
// Member.Index. It is immutable; Health builds a new one when anything it depends on
// changes. It implements policy.Health.
type View struct {
	snap      *policy.Snapshot
	up        []bool       // usable: the verdict (or unknown_is) says up and no drain is in force
	status    []api.Status // the merged verdict
	drain     []int32      // 1 + the index in drains of the member's drain, 0 for none
	drains    []api.Drain
	load      []float64 // merged load readings, NaN for none; nil when no member has one
	reason    []string  // why a member merged down is down; nil when none has a reason
	fresh     int       // fresh reporters when the view was built
	degraded  bool      // Grace had run out: unknown members count as unknown_is, loudly
	unknownUp bool      // how a member of no pool of snap counts (Config.UnknownIsDown)
}

// Up reports whether m is usable. It is one slice index: the DNS path calls it for every
// candidate of every query. A member outside the snapshot the view was built for counts as
// unknown.
func (v *View) Up(m *policy.Member) bool {
	if m.Index >= 0 && m.Index < len(v.up) {
		return v.up[m.Index]
	}
	return v.unknownUp
}

// Status is the merged verdict on m (api.StatusUnknown when no fresh reporter has one).
func (v *View) Status(m *policy.Member) api.Status {
	if m.Index >= 0 && m.Index < len(v.status) {
		return v.status[m.Index]
	}
	return api.StatusUnknown
}

// Reason is why m is down, as the reporter that says so gave it (its last failed probe),
// "" when m is not down or no reporter gave one.
func (v *View) Reason(m *policy.Member) string {
	if m.Index >= 0 && m.Index < len(v.reason) {
		return v.reason[m.Index]
	}
	return ""
}

// Degraded reports whether the view was built after Grace ran out with no fresh reporter:
// every member is unknown and counts as its pool's unknown_is (Health.GraceExpired).
func (v *View) Degraded() bool { return v.degraded }

// UnknownUp reports how an unknown member of p counts: p's unknown_is, else the
// configured default.
func (v *View) UnknownUp(p *policy.Pool) bool {
	if p != nil && p.UnknownIs != policy.UnknownDefault {
		return p.UnknownIs == policy.UnknownUp
	}
	return v.unknownUp
}

// Drain returns the drain in force on m when the view was built, if any.
func (v *View) Drain(m *policy.Member) (api.Drain, bool) {
	if m.Index >= 0 && m.Index < len(v.drain) && v.drain[m.Index] > 0 {
		return v.drains[v.drain[m.Index]-1], true
	}
	return api.Drain{}, false
}

// Load is the median of the fresh load readings of m (its active connections), and
// whether there is one. It is one slice index, as Up: least_connections calls it for every
// candidate. It implements policy.Loads.
func (v *View) Load(m *policy.Member) (float64, bool) {
	if m.Index >= 0 && m.Index < len(v.load) {
		if l := v.load[m.Index]; l == l { // not NaN
			return l, true
		}
	}
	return 0, false
}

// Fresh is the number of reporters that were fresh when the view was built.
func (v *View) Fresh() int { return v.fresh }

// Snapshot is the snapshot the view was built for.
func (v *View) Snapshot() *policy.Snapshot { return v.snap }

var _ policy.Loads = (*View)(nil)
