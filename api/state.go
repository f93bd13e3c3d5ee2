package api

import "time"

// State is the body of the admin listener's GET /v1/state: the serving policy, every
// service with its pools and members as the DNS server answers them, and the health
// reporters glbdns listens to. The status page renders the same value.
type State struct {
	Policy PolicyStatus `json:"policy"`
	// WindowSeconds is the span the answer shares are measured over.
	WindowSeconds float64         `json:"window_seconds"`
	Services      []ServiceState  `json:"services"`
	Reporters     []ReporterState `json:"reporters"`
}

// PolicyStatus describes the serving policy and the last reload attempt.
type PolicyStatus struct {
	Hash       string    `json:"hash"`
	Generation uint64    `json:"generation"`
	Files      []string  `json:"files"`
	LastReload time.Time `json:"last_reload"`
	// LastResult is "success" or "failure"; LastError holds the diagnostics of a failure.
	LastResult string `json:"last_result"`
	LastError  string `json:"last_error,omitempty"`
	// Quarantined are the managed documents left out of the serving policy because they
	// do not load (a file of the managed folder, a key in etcd), with why.
	Quarantined []QuarantinedDoc `json:"quarantined,omitempty"`
}

// QuarantinedDoc is a managed document left out of the policy.
type QuarantinedDoc struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// ServiceState is one load-balanced name in State.
type ServiceState struct {
	Name   string `json:"name"`
	Zone   string `json:"zone"`
	Method string `json:"method"`
	TTL    uint32 `json:"ttl"`
	// WhenAllDown is the service's all-down behaviour (all, servfail, fallback).
	WhenAllDown string      `json:"when_all_down"`
	Pools       []PoolState `json:"pools"`
	// Answers is the number of member answers in the window.
	Answers uint64 `json:"answers"`
}

// PoolState is one of a service's pools (Fallback marks the fallback pool).
type PoolState struct {
	Name     string        `json:"name"`
	Region   string        `json:"region,omitempty"`
	Fallback bool          `json:"fallback,omitempty"`
	Members  []MemberState `json:"members"`
}

// MemberState is one backend of a pool, as the service answers it.
type MemberState struct {
	Name    string `json:"name"`
	ID      string `json:"id"` // "pool/member"
	Address string `json:"address,omitempty"`
	Host    string `json:"host,omitempty"`
	Weight  uint32 `json:"weight"`
	// State is the one word an operator reads (MemberState* constants): drained, disabled,
	// down, degraded, unknown or up, the first that applies in that order. Reason says why
	// for drained (the drain's reason), down (the failed check's reason, from the reporter
	// that says down) and degraded; DrainedUntil is when a drain ends.
	State        string     `json:"state"`
	Reason       string     `json:"reason,omitempty"`
	DrainedUntil *time.Time `json:"drained_until,omitempty"`
	// Health is the merged verdict of the fresh reporters: up, down or unknown.
	Health string `json:"health"`
	// Status is "up" when the member is answered (healthy, or unknown and counted as up,
	// and not drained), else "down". Drained is true while a drain is in force (a weight
	// of 0 is shown as Weight, not as a drain). Both predate State and are kept for the
	// tools that read them.
	Status  string `json:"status"`
	Drained bool   `json:"drained"`
	// Answers in the window and Share of the service's answers in the window (0..1).
	Answers uint64  `json:"answers"`
	Share   float64 `json:"share"`
	// Total is the cumulative answer count (glbdns_policy_answers_total).
	Total uint64 `json:"total"`
}

// The values of MemberState.State, in the order they take precedence.
const (
	// MemberDrained: a drain is in force (POST .../drain); not answered until it ends.
	MemberDrained = "drained"
	// MemberDisabled: the member's weight is 0, so it is answered only when the service
	// fails open over members that all have weight 0.
	MemberDisabled = "disabled"
	// MemberDown: the fresh reporters' majority says down.
	MemberDown = "down"
	// MemberDegraded: no healthd reporter was fresh for the grace period, and the member
	// counts as its pool's unknown_is (Status says which) rather than by any check.
	MemberDegraded = "degraded"
	// MemberUnknown: no reporter has a verdict yet; the member counts as unknown_is.
	MemberUnknown = "unknown"
	// MemberUp: the fresh reporters' majority says up.
	MemberUp = "up"
)

// ReporterState describes one healthd glbdns subscribes to.
type ReporterState struct {
	URL string `json:"url"`
	// ID is the reporter id the healthd announced ("" before its first answer).
	ID string `json:"id"`
	// Fresh is true when the reporter answered within the staleness bound.
	Fresh bool `json:"fresh"`
	// LastContact is when it last answered (zero if never).
	LastContact time.Time `json:"last_contact"`
	// Index is the last report index received.
	Index uint64 `json:"index"`
	// Members is how many members the last report listed.
	Members int `json:"members"`
	// LastError is the last request error ("" after a success).
	LastError string `json:"last_error,omitempty"`
}

// Cluster is the body of the admin listener's GET /v1/cluster: every live glbdns node and
// healthd reporter of the cluster, as registered under their leases in etcd (a node without
// etcd lists itself and its own reporters).
type Cluster struct {
	// Nodes sorted by id.
	Nodes []NodeState `json:"nodes"`
	// Reporters are the healthd reporters registered (sorted by id); the -health URLs a
	// node is given are listed in its NodeState.Reporters.
	Reporters []ReporterInfo `json:"reporters"`
	// PolicyHashes is how many different policies the nodes serve: 1 when they agree.
	PolicyHashes int `json:"policy_hashes"`
}

// NodeState is what a glbdns node says of itself in the cluster.
type NodeState struct {
	ID string `json:"id"`
	// DNS and Admin are the addresses it answers DNS and the admin API on.
	DNS   string `json:"dns"`
	Admin string `json:"admin,omitempty"`
	// PolicyHash and Generation are the serving policy's (PolicyStatus).
	PolicyHash string `json:"policy_hash"`
	Generation uint64 `json:"generation"`
	// FromCache is set while the node serves its cached policy (the store is unavailable).
	FromCache bool `json:"from_cache,omitempty"`
	// Reporters are the healthd reporters it listens to, fresh or not.
	Reporters []ReporterState `json:"reporters"`
	Version   string          `json:"version"`
	Started   time.Time       `json:"started"`
	Updated   time.Time       `json:"updated"`
}

// ReporterInfo is a healthd reporter as it registers itself.
type ReporterInfo struct {
	ID string `json:"id"`
	// URL is where glbdns watches its reports (GET URL/v1/health).
	URL     string    `json:"url"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// History is the body of the admin listener's GET /v1/history: every service's answer
// shares and member states, sampled every IntervalSeconds over the last 15 minutes at
// most, oldest first. The status page draws it.
type History struct {
	IntervalSeconds float64        `json:"interval_seconds"`
	Points          []HistoryPoint `json:"points"`
}

// HistoryPoint is one sample: per service, each member's answers since the sample before
// it, their share of the service's, and its State.
type HistoryPoint struct {
	At       time.Time        `json:"at"`
	Services []HistoryService `json:"services"`
}

// HistoryService is one service in a HistoryPoint.
type HistoryService struct {
	Name    string          `json:"name"`
	Answers uint64          `json:"answers"`
	Members []HistoryMember `json:"members"`
}

// HistoryMember is one member in a HistoryService.
type HistoryMember struct {
	ID      string  `json:"id"` // "pool/member"
	Answers uint64  `json:"answers"`
	Share   float64 `json:"share"`
	State   string  `json:"state"`
}
