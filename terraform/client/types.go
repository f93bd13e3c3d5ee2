package client

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Pool is a pool of members as the admin API carries it (docs/admin-api.md, "Pool").
// Managed and Version are read-only: the client never sends them.
type Pool struct {
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	// Location ([latitude, longitude] in degrees), Bias (km), Method and MinHealthy are the
	// steering attributes: they matter only to failover, geo and nearest services. Unset,
	// they are omitted, and the server stores them unset (it fills in no default), so a
	// read returns what was written. Bias is a pointer because 0 may be written and is
	// then returned.
	Location   []float64  `json:"location,omitempty"`
	Bias       *float64   `json:"bias,omitempty"`
	Method     string     `json:"method,omitempty"`
	MinHealthy MinHealthy `json:"min_healthy,omitempty"`
	// UnknownIs is "up" or "down": how members of unknown health count; omitted, the
	// server's -health-unknown-is default (the server stores it as written).
	UnknownIs string   `json:"unknown_is,omitempty"`
	Members   []Member `json:"members"`
	Checks    []Check  `json:"checks,omitempty"`
	Managed   bool     `json:"managed,omitempty"`
	Version   string   `json:"version,omitempty"`
}

// MinHealthy is a pool's min_healthy: a whole number of members ("2") or a percentage
// ("50%"). The server writes a number of members as a JSON number and a percentage as a
// string, and accepts both on input; the client encodes them the same way.
type MinHealthy string

// UnmarshalJSON decodes a JSON number or string.
func (m *MinHealthy) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = MinHealthy(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("min_healthy %s: want a number or a string", b)
	}
	*m = MinHealthy(n.String())
	return nil
}

// MarshalJSON encodes a whole number as a JSON number and anything else as a string.
func (m MinHealthy) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(m), 10, 64); err == nil {
		return []byte(strconv.FormatInt(n, 10)), nil
	}
	return json.Marshal(string(m))
}

// Member is one pool member. It has exactly one of Address and Host. Weight is a pointer
// because 0 is meaningful (drained) and nil lets the server apply its default of 1.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Host    string `json:"host,omitempty"`
	Weight  *int64 `json:"weight,omitempty"`
}

// Check is a health check; its fields are the HCL check block's attributes with the same
// names. Zero values are omitted because the policy package refuses attributes that do not
// apply to the check's type (a "path" on a tcp check), so unset must stay absent.
// Durations are Go duration strings.
type Check struct {
	Name             string            `json:"name"`
	Type             string            `json:"type,omitempty"`
	Port             int64             `json:"port,omitempty"`
	Interval         string            `json:"interval,omitempty"`
	Timeout          string            `json:"timeout,omitempty"`
	Rise             int64             `json:"rise,omitempty"`
	Fall             int64             `json:"fall,omitempty"`
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

// StatusList is a check's expect_status: HTTP statuses ("404") and ranges ("200-299").
// The policy language accepts numbers and strings, so decoding accepts both; it is always
// encoded as strings, which the policy language also accepts.
type StatusList []string

// UnmarshalJSON decodes a list whose elements are numbers or strings.
func (s *StatusList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("expect_status: %w", err)
	}
	out := make(StatusList, 0, len(raw))
	for _, r := range raw {
		var str string
		if err := json.Unmarshal(r, &str); err == nil {
			out = append(out, str)
			continue
		}
		var n int64
		if err := json.Unmarshal(r, &n); err != nil {
			return fmt.Errorf("expect_status element %s: want a number or a string", r)
		}
		out = append(out, strconv.FormatInt(n, 10))
	}
	*s = out
	return nil
}

// Service is a DNS name answered from pools (docs/admin-api.md, "Service"). Zero values
// of the optional fields are omitted so that the server applies its defaults.
type Service struct {
	Name   string `json:"name"`
	Policy string `json:"policy,omitempty"`
	// Method is the member method inside the pools of a failover, geo or nearest service;
	// the server refuses it on other policies and fills in no default.
	Method       string   `json:"method,omitempty"`
	Pools        []string `json:"pools"`
	TTL          *int64   `json:"ttl,omitempty"`
	Answers      int64    `json:"answers,omitempty"`
	WhenAllDown  string   `json:"when_all_down,omitempty"`
	Fallback     string   `json:"fallback,omitempty"`
	HashPrefixV4 *int64   `json:"hash_prefix_v4,omitempty"`
	HashPrefixV6 *int64   `json:"hash_prefix_v6,omitempty"`
	// Geo is the rules of a service with policy "geo"; the server refuses it on others.
	Geo     *Geo   `json:"geo,omitempty"`
	Managed bool   `json:"managed,omitempty"`
	Version string `json:"version,omitempty"`
}

// Geo is a geo service's rules and the order for clients no rule matches (omitted: the
// service's pools order).
type Geo struct {
	Rules        []GeoRule `json:"rules"`
	DefaultPools []string  `json:"default_pools,omitempty"`
}

// GeoRule is one rule: at least one match list (omitted when unset), and its pool order.
type GeoRule struct {
	Networks   []string `json:"networks,omitempty"`
	ASNs       []int64  `json:"asns,omitempty"`
	Countries  []string `json:"countries,omitempty"`
	Continents []string `json:"continents,omitempty"`
	Pools      []string `json:"pools"`
}

// DrainRequest is the body of POST /v1/pools/{pool}/members/{member}/drain.
type DrainRequest struct {
	Duration string `json:"duration"`
	Reason   string `json:"reason,omitempty"`
}

// Drain is a member taken out of the answers until Until (RFC 3339).
type Drain struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
	Until  string `json:"until"`
	Reason string `json:"reason,omitempty"`
}

// MemberHealth is one member's entry in GET /v1/health: the live view merged over every
// fresh healthd reporter.
type MemberHealth struct {
	Pool      string `json:"pool"`
	Member    string `json:"member"`
	Status    string `json:"status"`
	Drained   bool   `json:"drained"`
	Reporters int64  `json:"reporters"`
}
