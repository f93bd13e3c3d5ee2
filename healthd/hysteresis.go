package healthd

import (
	"github.com/glbdns/glbdns/api"
)

// Hysteresis is the rise/fall state machine of one check, kept pure (no clock, no I/O)
// so a table test can drive it through sequences. It follows gdnsd's up/down thresholds
// with one decision made explicit: the initial state is Unknown, and the first Rise
// consecutive successes make it Up, the first Fall consecutive failures make it Down —
// with the policy's thresholds a single result never decides, so a daemon restart cannot
// flap a member on one unlucky probe. Once Up, Fall consecutive failures are needed to go Down, and once Down,
// Rise consecutive successes to come back Up.
type Hysteresis struct {
	// Rise and Fall are the thresholds, the compiled check's (the policy defaults them to
	// api.DefaultCheckRise and api.DefaultCheckFall). A threshold below 1 counts as 1: a
	// run of no results cannot decide anything.
	Rise, Fall int
	// Status is the current verdict.
	Status api.Status
	// Successes and Failures count the current run of consecutive results; one of them
	// is always 0.
	Successes, Failures int
}

// Observe records one probe result and reports whether Status changed.
func (h *Hysteresis) Observe(ok bool) bool {
	rise, fall := max(h.Rise, 1), max(h.Fall, 1)
	if ok {
		h.Successes++
		h.Failures = 0
		if h.Status != api.StatusUp && h.Successes >= rise {
			h.Status = api.StatusUp
			return true
		}
		return false
	}
	h.Failures++
	h.Successes = 0
	if h.Status != api.StatusDown && h.Failures >= fall {
		h.Status = api.StatusDown
		return true
	}
	return false
}

// combine folds check verdicts into a member verdict: a member is up only when every
// check is up, down as soon as one check is down, and unknown otherwise.
func combine(statuses []api.Status) api.Status {
	all := api.StatusUp
	for _, s := range statuses {
		switch s {
		case api.StatusDown:
			return api.StatusDown
		case api.StatusUnknown:
			all = api.StatusUnknown
		}
	}
	return all
}
