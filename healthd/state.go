package healthd

import (
	"fmt"
)

// Status is a member's or a check's health verdict.
type Status uint8

const (
	// Unknown is the state before the first verdict: a member starts here and stays until
	// Rise consecutive successes or Fall consecutive failures decide. Clients choose how to
	// treat it (glbdns: as up by default, so a fresh healthd does not black-hole traffic).
	Unknown Status = iota
	// Up means the last Rise probes (at least) passed.
	Up
	// Down means the last Fall probes (at least) failed.
	Down
)

var statusNames = [...]string{Unknown: "unknown", Up: "up", Down: "down"}

// String returns "unknown", "up" or "down".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MarshalText encodes the status as its name for JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "unknown", "up" or "down".
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if string(b) == n {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Defaults of the thresholds when a check leaves them unset; they match the policy's
// defaults (quick to fail over, a little slower to trust a recovery).
const (
	DefaultRise = 2
	DefaultFall = 3
)

// Hysteresis is the rise/fall state machine of one check, kept pure (no clock, no I/O)
// so a table test can drive it through sequences. It follows gdnsd's up/down thresholds
// with one decision made explicit: the initial state is Unknown, and the first Rise
// consecutive successes make it Up, the first Fall consecutive failures make it Down —
// a single result never decides, so a daemon restart cannot flap a member on one
// unlucky probe. Once Up, Fall consecutive failures are needed to go Down, and once Down,
// Rise consecutive successes to come back Up.
type Hysteresis struct {
	// Rise and Fall are the thresholds (DefaultRise, DefaultFall when <= 0).
	Rise, Fall int
	// Status is the current verdict.
	Status Status
	// Successes and Failures count the current run of consecutive results; one of them
	// is always 0.
	Successes, Failures int
}

// Observe records one probe result and reports whether Status changed.
func (h *Hysteresis) Observe(ok bool) bool {
	rise, fall := h.Rise, h.Fall
	if rise <= 0 {
		rise = DefaultRise
	}
	if fall <= 0 {
		fall = DefaultFall
	}
	if ok {
		h.Successes++
		h.Failures = 0
		if h.Status != Up && h.Successes >= rise {
			h.Status = Up
			return true
		}
		return false
	}
	h.Failures++
	h.Successes = 0
	if h.Status != Down && h.Failures >= fall {
		h.Status = Down
		return true
	}
	return false
}

// combine folds check verdicts into a member verdict: a member is up only when every
// check is up, down as soon as one check is down, and unknown otherwise.
func combine(statuses []Status) Status {
	all := Up
	for _, s := range statuses {
		switch s {
		case Down:
			return Down
		case Unknown:
			all = Unknown
		}
	}
	return all
}
