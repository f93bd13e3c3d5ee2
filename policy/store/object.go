package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pool is a pool as the admin API carries it (docs/admin-api.md, "Pool"). Its fields are the
// HCL pool block's attributes with the same names; members and checks are its blocks.
type Pool struct {
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	// Location, Bias, Method and MinHealthy matter only to steering services (failover,
	// geo, nearest); see docs/policy.md.
	Location   []float64  `json:"location,omitempty"`
	Bias       *float64   `json:"bias,omitempty"`
	Method     string     `json:"method,omitempty"`
	MinHealthy MinHealthy `json:"min_healthy,omitempty"`
	// UnknownIs is "up" or "down": how the members count while their health is unknown;
	// omitted, the server's -health-unknown-is default.
	UnknownIs string   `json:"unknown_is,omitempty"`
	Members   []Member `json:"members"`
	Checks    []Check  `json:"checks"`
	// Managed is false for pools defined in the operator's files (read-only); ignored on input.
	Managed bool `json:"managed"`
	// Version is a hash of the pool's canonical JSON; ignored on input.
	Version string `json:"version"`
}

// Member is one backend of a pool: exactly one of Address and Host.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Host    string `json:"host,omitempty"`
	// Weight defaults to 1; 0 drains the member for good (a Drain is the temporary kind).
	Weight *int `json:"weight,omitempty"`
}

// Check is one health check of a pool; the fields are the HCL check block's attributes.
// Unset fields take the policy language's defaults (docs/policy.md, "check").
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
	Insecure         bool              `json:"insecure,omitempty"`
	FollowRedirects  bool              `json:"follow_redirects,omitempty"`
	Send             string            `json:"send,omitempty"`
	Expect           string            `json:"expect,omitempty"`
	QName            string            `json:"qname,omitempty"`
	QType            string            `json:"qtype,omitempty"`
	ExpectRcode      string            `json:"expect_rcode,omitempty"`
	ExpectAnswer     string            `json:"expect_answer,omitempty"`
}

// Service is a load-balanced name as the admin API carries it (docs/admin-api.md,
// "Service"). Unset optional fields are filled with the policy language's defaults on
// write, so a read always shows every field.
type Service struct {
	// Name is lower case without the trailing dot ("www.glb.example.com").
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Method is the member method inside the pools of a failover, geo or nearest service.
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

// Drain takes a member out of the answers (as if down) until Until.
type Drain struct {
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// StatusList is expect_status: each element a status ("301") or a range ("200-299"). On
// input JSON numbers are accepted too, as the HCL attribute accepts them.
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
// may be a number or a string; a number of members is written back as a number.
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
	if n, ok := m.count(); ok {
		return []byte(strconv.Itoa(n)), nil
	}
	return json.Marshal(string(m))
}

func (m MinHealthy) count() (int, bool) {
	n, err := strconv.Atoi(string(m))
	return n, err == nil
}

// Service defaults, the policy language's (policy/service.go): written out explicitly so
// that what the API returns is what the DNS server does.
const (
	defaultTTL     = 30
	defaultAnswers = 1
	defaultPrefix4 = 24
	defaultPrefix6 = 56
)

func intp(i int) *int { return &i }

// normalize fills the defaults of a pool and clears the read-only fields.
func (p *Pool) normalize() {
	p.Managed, p.Version = false, ""
	if p.Members == nil {
		p.Members = []Member{}
	}
	if p.Checks == nil {
		p.Checks = []Check{}
	}
	for i := range p.Members {
		if p.Members[i].Weight == nil {
			p.Members[i].Weight = intp(1)
		}
	}
}

// normalize fills the defaults of a service, canonicalises its name and clears the
// read-only fields.
func (s *Service) normalize() {
	s.Managed, s.Version = false, ""
	s.Name = ServiceName(s.Name)
	if s.Policy == "" {
		s.Policy = "round_robin"
	}
	if s.Pools == nil {
		s.Pools = []string{}
	}
	if s.TTL == nil {
		s.TTL = intp(defaultTTL)
	}
	if s.Answers == nil {
		s.Answers = intp(defaultAnswers)
	}
	if s.WhenAllDown == "" {
		s.WhenAllDown = "all"
	}
	if s.HashPrefixV4 == nil {
		s.HashPrefixV4 = intp(defaultPrefix4)
	}
	if s.HashPrefixV6 == nil {
		s.HashPrefixV6 = intp(defaultPrefix6)
	}
	if s.Geo != nil {
		if s.Geo.Rules == nil {
			s.Geo.Rules = []GeoRule{}
		}
		for i := range s.Geo.Rules {
			r := &s.Geo.Rules[i]
			if r.Pools == nil {
				r.Pools = []string{}
			}
			// An empty match list is an absent one (as a read shows it), so that a rule
			// with none left is refused as empty.
			if len(r.Networks) == 0 {
				r.Networks = nil
			}
			if len(r.ASNs) == 0 {
				r.ASNs = nil
			}
			if len(r.Countries) == 0 {
				r.Countries = nil
			}
			if len(r.Continents) == 0 {
				r.Continents = nil
			}
		}
	}
}

// ServiceName is the API's canonical form of a service name: lower case, no trailing dot
// (DNS names compare case-insensitively, RFC 4343).
func ServiceName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// version hashes an object's canonical JSON (encoding/json writes struct fields in order
// and map keys sorted) with its read-only fields cleared: equal content, equal version.
func version(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("store: marshal %T: %v", v, err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:8])
}

func (p Pool) withVersion(managed bool) Pool {
	p.Managed, p.Version = false, ""
	p.Version = version(p)
	p.Managed = managed
	return p
}

func (s Service) withVersion(managed bool) Service {
	s.Managed, s.Version = false, ""
	s.Version = version(s)
	s.Managed = managed
	return s
}
