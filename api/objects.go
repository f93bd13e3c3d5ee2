package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Service defaults, the policy language's (docs/policy.md, "service"): the policy package
// compiles an unset attribute to them, and the store writes them into a service the API
// stores, so that a read shows what the DNS server does.
const (
	// DefaultPolicy is the member selection of a service that names none.
	DefaultPolicy = "round_robin"
	// DefaultTTL, in seconds, bounds how long resolvers keep sending clients to a member
	// that just went down.
	DefaultTTL = 30
	// DefaultAnswers is how many distinct members an answer carries.
	DefaultAnswers = 1
	// DefaultWhenAllDown fails open: with every member down, answer them all.
	DefaultWhenAllDown = "all"
	// DefaultHashPrefixV4 and DefaultHashPrefixV6 are the widest ECS source prefixes
	// RFC 7871 Section 11.1 recommends resolvers send, so hashing finer gains nothing.
	DefaultHashPrefixV4 = 24
	DefaultHashPrefixV6 = 56
	// DefaultWeight is a member's weight when it names none (0 drains it for good).
	DefaultWeight = 1
)

// Check defaults (docs/policy.md, "check"): probe every 5s with a 2s timeout; 2 successes
// to come up, 3 failures to go down (gdnsd's up_thresh/down_thresh spirit: a little slower
// to trust a recovery than to fail over, but not flapping on one lost packet). An HTTP check
// asks GET / and expects a status from 200 to 399.
const (
	DefaultCheckInterval = 5 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultCheckRise     = 2
	DefaultCheckFall     = 3
	DefaultHTTPMethod    = "GET"
	DefaultHTTPPath      = "/"
	DefaultExpectStatus  = "200-399"
)

// Pool is a pool as the admin API carries it (docs/admin-api.md, "Pool"). Its fields are the
// HCL pool block's attributes with the same names; members, checks and load are its blocks.
// Optional fields left out (nil or "") are stored unset: the server fills in no default
// for them, so a read returns what was written.
type Pool struct {
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	// Location ([latitude, longitude] in degrees), Bias (km), Method and MinHealthy matter
	// only to steering services (failover, geo, nearest); see docs/policy.md. Bias is a
	// pointer because 0 may be written and is then returned.
	Location   []float64  `json:"location,omitempty"`
	Bias       *float64   `json:"bias,omitempty"`
	Method     string     `json:"method,omitempty"`
	MinHealthy MinHealthy `json:"min_healthy,omitempty"`
	// UnknownIs is "up" or "down": how the members count while their health is unknown;
	// omitted, the server's -health-unknown-is default.
	UnknownIs string `json:"unknown_is,omitempty"`
	// Port (1-65535) is the members' port in SRV answers, unless a member sets its own;
	// omitted, none (a service answers SRV only when every member has a port).
	Port    *int     `json:"port,omitempty"`
	Members []Member `json:"members"`
	Checks  []Check  `json:"checks"`
	// Load is the pool's load block, which least_connections needs; omitted, none.
	Load *Load `json:"load,omitempty"`
	// ColdStart is the pool's cold_start block: its members may scale to zero
	// (docs/policy.md); omitted, none.
	ColdStart *ColdStart `json:"cold_start,omitempty"`
	// Managed is false for pools defined in the operator's files (read-only); ignored on
	// input.
	Managed bool `json:"managed"`
	// Version is a hash of the pool's canonical JSON; ignored on input.
	Version string `json:"version"`
}

// Member is one backend of a pool: exactly one of Address and Host.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Host    string `json:"host,omitempty"`
	// Weight defaults to DefaultWeight; 0 drains the member for good (a Drain is the
	// temporary kind). A pointer, because 0 is meaningful.
	Weight *int `json:"weight,omitempty"`
	// Port (1-65535) is the member's port in SRV answers; omitted, the pool's.
	Port *int `json:"port,omitempty"`
}

// Check is one health check of a pool; the fields are the HCL check block's attributes.
// Unset fields (nil or "") take the policy language's defaults (the Default* constants),
// and stay unset in what is stored: the policy package refuses attributes that do not
// apply to the check's type (a "path" on a tcp check). Durations are Go duration strings.
//
// Headers are write-only: health-check credentials (Authorization, API keys) live there,
// so a read returns every header name with the value HeaderMask, and a write that sends
// HeaderMask for a name keeps the value stored for it (see HeaderMask).
type Check struct {
	Name             string            `json:"name"`
	Type             string            `json:"type,omitempty"`
	Port             *int              `json:"port,omitempty"`
	Interval         string            `json:"interval,omitempty"`
	Timeout          string            `json:"timeout,omitempty"`
	Rise             *int              `json:"rise,omitempty"`
	Fall             *int              `json:"fall,omitempty"`
	Method           string            `json:"method,omitempty"`
	Path             string            `json:"path,omitempty"`
	Host             string            `json:"host,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
	ExpectStatus     StatusList        `json:"expect_status,omitempty"`
	ExpectBody       string            `json:"expect_body,omitempty"`
	ExpectBodyRegexp string            `json:"expect_body_regexp,omitempty"`
	ServerName       string            `json:"server_name,omitempty"`
	Insecure         *bool             `json:"insecure,omitempty"`
	FollowRedirects  *bool             `json:"follow_redirects,omitempty"`
	Send             string            `json:"send,omitempty"`
	Expect           string            `json:"expect,omitempty"`
	QName            string            `json:"qname,omitempty"`
	QType            string            `json:"qtype,omitempty"`
	ExpectRcode      string            `json:"expect_rcode,omitempty"`
	ExpectAnswer     string            `json:"expect_answer,omitempty"`
}

// Load is how healthd reads the members' load (their active connections) for the
// least_connections method: the HCL load block's attributes with the same names
// (docs/policy.md, "load"). As for checks, unset fields (nil or "") take the policy
// language's defaults when the pool is compiled (type "prometheus"; port, scheme, path
// and timing from the pool's first http or https check, else 80, "http", "/metrics" for
// prometheus or "/", "5s" and "2s"), and stay unset in what is stored. Metric and Labels
// apply to a prometheus signal only, Field to a json one; a number signal has neither.
type Load struct {
	Type     string            `json:"type,omitempty"`
	Metric   string            `json:"metric,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Field    string            `json:"field,omitempty"`
	Port     *int              `json:"port,omitempty"`
	Path     string            `json:"path,omitempty"`
	Scheme   string            `json:"scheme,omitempty"`
	Interval string            `json:"interval,omitempty"`
	Timeout  string            `json:"timeout,omitempty"`
}

// ColdStart is a pool's cold_start block: Go durations, each omitted for its default
// (timeout 10s, idle_after 1h, idle_interval 10m).
type ColdStart struct {
	Timeout      string `json:"timeout,omitempty"`
	IdleAfter    string `json:"idle_after,omitempty"`
	IdleInterval string `json:"idle_interval,omitempty"`
}

// HeaderMask is the value a read returns for every header of a check, whatever the stored
// value (docs/admin-api.md, "Check headers"). A write that sends it for a header name keeps
// the value stored under that name in the same check (matched by check name), so that a
// client can read a pool, change it and write it back without knowing its secrets; a new
// value replaces the stored one, and a name left out is removed. A header whose value is
// literally "(set)" therefore cannot be written through the API. The parentheses make it
// read as a placeholder rather than a credential.
const HeaderMask = "(set)"

// MaskHeaders returns p with the value of every check header replaced by HeaderMask. The
// maps are copied: p, which may be the store's own, is not changed.
func MaskHeaders(p Pool) Pool {
	if len(p.Checks) == 0 {
		return p
	}
	checks := make([]Check, len(p.Checks))
	for i, c := range p.Checks {
		if c.Headers != nil {
			hs := make(map[string]string, len(c.Headers))
			for k := range c.Headers {
				hs[k] = HeaderMask
			}
			c.Headers = hs
		}
		checks[i] = c
	}
	p.Checks = checks
	return p
}

// Service is a load-balanced name as the admin API carries it (docs/admin-api.md,
// "Service"). A write fills the unset optional fields with the service defaults above, so
// a read always shows every field; a client leaves them unset (nil or "") for the defaults.
type Service struct {
	// Name is lower case without the trailing dot ("www.glb.example.com"); see
	// ServiceName.
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Method is the member method inside the pools of a failover, geo or nearest service;
	// the server refuses it on other policies and fills in no default.
	Method       string   `json:"method,omitempty"`
	Pools        []string `json:"pools"`
	TTL          *int     `json:"ttl"`
	Answers      *int     `json:"answers"`
	WhenAllDown  string   `json:"when_all_down"`
	Fallback     string   `json:"fallback"`
	HashPrefixV4 *int     `json:"hash_prefix_v4"`
	HashPrefixV6 *int     `json:"hash_prefix_v6"`
	// Geo is the geo block of a service with policy "geo" (omitted otherwise).
	Geo     *Geo   `json:"geo,omitempty"`
	Managed bool   `json:"managed"`
	Version string `json:"version"`
}

// Geo is a geo service's rules (docs/policy.md, "geo"): the first rule the client matches
// gives the pool order, else DefaultPools (omitted: the service's pools in order).
type Geo struct {
	Rules        []GeoRule `json:"rules"`
	DefaultPools []string  `json:"default_pools,omitempty"`
}

// GeoRule is one rule: at least one of the match lists, and the pool order it gives.
// Omitted lists match nothing.
type GeoRule struct {
	Networks   []string `json:"networks,omitempty"`
	ASNs       []int64  `json:"asns,omitempty"`
	Countries  []string `json:"countries,omitempty"`
	Continents []string `json:"continents,omitempty"`
	Pools      []string `json:"pools"`
}

// Drain takes a member out of the answers (as if down) until Until, after which it comes
// back by itself.
type Drain struct {
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// DrainRequest is the body of POST /v1/pools/{pool}/members/{member}/drain.
type DrainRequest struct {
	// Duration is a positive Go duration ("10m") of at most 366 days.
	Duration string `json:"duration"`
	Reason   string `json:"reason,omitempty"`
}

// PoolList, ServiceList and DrainList are the bodies of GET /v1/pools, /v1/services and
// /v1/drains; DrainList is also the managed drains document.
type (
	PoolList struct {
		Pools []Pool `json:"pools"`
	}
	ServiceList struct {
		Services []Service `json:"services"`
	}
	DrainList struct {
		Drains []Drain `json:"drains"`
	}
)

// StatusList is expect_status: each element a status ("301") or a range ("200-299"). On
// input JSON numbers are accepted too, as the HCL attribute accepts them; it is always
// written as strings.
type StatusList []string

// UnmarshalJSON accepts strings and whole numbers.
func (l *StatusList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(StatusList, 0, len(raw))
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			out = append(out, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil {
			return fmt.Errorf("expect_status elements must be strings or numbers")
		}
		out = append(out, n.String())
	}
	*l = out
	return nil
}

// MinHealthy is min_healthy: a number of members ("2") or a percentage ("50%"). JSON input
// may be a number or a string; a number of members is written as a JSON number.
type MinHealthy string

// UnmarshalJSON accepts a number or a string.
func (m *MinHealthy) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = MinHealthy(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("min_healthy must be a number or a percentage string")
	}
	*m = MinHealthy(n.String())
	return nil
}

// MarshalJSON writes a whole number as a JSON number, anything else as a string.
func (m MinHealthy) MarshalJSON() ([]byte, error) {
	if n, ok := m.Count(); ok {
		return []byte(strconv.Itoa(n)), nil
	}
	return json.Marshal(string(m))
}

// Count is the number of members when m is a whole number rather than a percentage.
func (m MinHealthy) Count() (int, bool) {
	n, err := strconv.Atoi(string(m))
	return n, err == nil
}

// ServiceName is the API's canonical form of a service name: lower case, no trailing dot
// (DNS names compare case-insensitively, RFC 4343).
func ServiceName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
