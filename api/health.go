package api

import (
	"fmt"
	"time"
)

// Status is a member's or a check's health verdict, written in JSON as its name.
type Status uint8

const (
	// StatusUnknown is the state before the first verdict: a member starts here and stays
	// until Rise consecutive successes or Fall consecutive failures decide. glbdns treats
	// it as its pool's unknown_is says (up by default, so that a fresh healthd does not
	// black-hole traffic).
	StatusUnknown Status = iota
	// StatusUp means the last Rise probes (at least) passed.
	StatusUp
	// StatusDown means the last Fall probes (at least) failed.
	StatusDown
)

var statusNames = [...]string{StatusUnknown: "unknown", StatusUp: "up", StatusDown: "down"}

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

// Report is the body of healthd's GET /v1/health (docs/health-api.md): one reporter's
// verdicts on every member it checks.
type Report struct {
	// Reporter names the healthd instance (its -id).
	Reporter string `json:"reporter"`
	// Index grows by one with every status change (member or check), never with a probe
	// that changes nothing; blocking watches wait for it to pass a value.
	Index uint64 `json:"index"`
	// Members sorted by pool, then member name.
	Members []MemberReport `json:"members"`
}

// MemberReport is one member's entry in a Report.
type MemberReport struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
	// Status is "up" only when every check is up, "down" when any check is down.
	Status Status `json:"status"`
	// Since is when Status last changed (or when healthd started tracking the member).
	Since time.Time `json:"since"`
	// LastResult is the most recent probe of any of the member's checks.
	LastResult *ResultReport `json:"last_result,omitempty"`
	// Reason is the reason of the most recent failed probe ("" if none yet).
	Reason string        `json:"reason,omitempty"`
	Checks []CheckReport `json:"checks"`
	// Load is the member's latest load reading (its pool's load block), omitted for a
	// member without a load signal or before its first good reading.
	Load *LoadReport `json:"load,omitempty"`
}

// LoadReport is a member's latest load reading: the number the pool's load block reads
// from the member (its active connections), for least_connections.
type LoadReport struct {
	// Value is the last good reading.
	Value float64 `json:"value"`
	// At is when the reading was taken (healthd's clock).
	At time.Time `json:"at"`
	// AgeSeconds is how old the reading was when the report was written: glbdns dates
	// the reading by it (its own clock at receipt minus the age), so that a clock skew
	// between the hosts does not make readings stale or fresh.
	AgeSeconds float64 `json:"age_seconds"`
	// IntervalSeconds is the load block's interval; glbdns counts a reading older than
	// three intervals (plus healthd's one-second coalescing) as stale.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Reason says why the latest reading failed, when it did ("" when it succeeded): Value
	// is then the last good one, ageing.
	Reason string `json:"reason,omitempty"`
}

// ID is the member's stable identity, "pool/member".
func (m *MemberReport) ID() string { return m.Pool + "/" + m.Member }

// CheckReport is one check of a member.
type CheckReport struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Target string    `json:"target"`
	Status Status    `json:"status"`
	Since  time.Time `json:"since"`
	// Successes and Failures count the current run of consecutive results.
	Successes  int           `json:"successes"`
	Failures   int           `json:"failures"`
	LastResult *ResultReport `json:"last_result,omitempty"`
	// Reason is the reason of this check's most recent failure.
	Reason string `json:"reason,omitempty"`
	// History is the check's recent results, oldest first; only with ?history=1.
	History []ResultReport `json:"history,omitempty"`
}

// ResultReport is one probe result.
type ResultReport struct {
	OK             bool      `json:"ok"`
	At             time.Time `json:"at"`
	LatencySeconds float64   `json:"latency_seconds"`
	Reason         string    `json:"reason,omitempty"`
}

// MemberHealth is one member in the admin API's GET /v1/health: the health glbdns answers
// with, merged over every fresh reporter.
type MemberHealth struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
	// Status is the merged verdict: "up", "down" or "unknown" (no fresh reporter has one).
	Status string `json:"status"`
	// Drained is true while a drain (POST .../drain) is in force, whatever Status says.
	Drained bool `json:"drained"`
	// Reporters is the number of fresh reporters behind Status.
	Reporters int `json:"reporters"`
	// Load is the median of the fresh load readings (least_connections), omitted when
	// there is none.
	Load *float64 `json:"load,omitempty"`
}

// HealthList is the body of the admin API's GET /v1/health.
type HealthList struct {
	Members []MemberHealth `json:"members"`
}

// PushedReport is the body of glbdns's POST /v1/health/report (docs/health-api.md): a
// report pushed by a reporter that is not a watched healthd (a function, a cron job,
// healthd -once, the backend itself), counting for TTL.
type PushedReport struct {
	// Reporter names the pusher: letters, digits, '.', '_' and '-', at most 64. glbdns
	// lists it among its reporters as "push:" and the name.
	Reporter string `json:"reporter"`
	// TTL is how long the report counts, a Go duration from "1s" to "1h": renew it before
	// then, or the pusher goes stale (its verdicts stop counting), never down.
	TTL string `json:"ttl"`
	// Members are the verdicts, up or down, on members of the serving policy; a member
	// left out keeps the pusher's last verdict on it.
	Members []PushedMember `json:"members"`
}

// PushedMember is one verdict of a PushedReport.
type PushedMember struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
	Status Status `json:"status"`
	// Reason says why a member is down; the status page and /v1/state show it.
	Reason string `json:"reason,omitempty"`
}

// PushAccepted answers a PushedReport.
type PushAccepted struct {
	Reporter string    `json:"reporter"` // as glbdns lists it: "push:" and the name
	Members  int       `json:"members"`
	Expires  time.Time `json:"expires"` // when the pusher goes stale without a renewal
}

// Activity is the body of glbdns's GET /v1/activity (docs/health-api.md): when this node
// last answered each pool of its policy, which healthd reads to slow its probes of idle
// cold_start pools.
type Activity struct {
	// Since is when the node began counting: a pool it has not answered since has no
	// LastAnswered, and was perhaps answered before.
	Since time.Time      `json:"since"`
	Pools []PoolActivity `json:"pools"`
}

// PoolActivity is one pool of an Activity.
type PoolActivity struct {
	Pool string `json:"pool"`
	// LastAnswered is when a service using the pool (one of its pools or its fallback)
	// last put a member in an answer, at the resolution of the node's sampling (5 s);
	// omitted when not since Since.
	LastAnswered *time.Time `json:"last_answered,omitempty"`
}
