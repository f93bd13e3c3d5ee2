package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/glbdns/glbdns/api"
)

// The objects the store keeps are api.Pool and api.Service, one HCL document each, and
// api.Drain in the drains document. This file fills in their defaults on write and gives
// them their versions.

func intp(i int) *int { return &i }

// normalizePool fills the defaults of a pool and clears the read-only fields.
func normalizePool(p *api.Pool) {
	p.Managed, p.Version = false, ""
	if p.Members == nil {
		p.Members = []api.Member{}
	}
	if p.Checks == nil {
		p.Checks = []api.Check{}
	}
	for i := range p.Members {
		if p.Members[i].Weight == nil {
			p.Members[i].Weight = intp(api.DefaultWeight)
		}
	}
}

// normalizeService fills the defaults of a service, canonicalises its name and clears the
// read-only fields.
func normalizeService(s *api.Service) {
	s.Managed, s.Version = false, ""
	s.Name = api.ServiceName(s.Name)
	if s.Policy == "" {
		s.Policy = api.DefaultPolicy
	}
	if s.Pools == nil {
		s.Pools = []string{}
	}
	if s.TTL == nil {
		s.TTL = intp(api.DefaultTTL)
	}
	if s.Answers == nil {
		s.Answers = intp(api.DefaultAnswers)
	}
	if s.WhenAllDown == "" {
		s.WhenAllDown = api.DefaultWhenAllDown
	}
	if s.HashPrefixV4 == nil {
		s.HashPrefixV4 = intp(api.DefaultHashPrefixV4)
	}
	if s.HashPrefixV6 == nil {
		s.HashPrefixV6 = intp(api.DefaultHashPrefixV6)
	}
	if s.Geo != nil {
		if s.Geo.Rules == nil {
			s.Geo.Rules = []api.GeoRule{}
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

// poolVersion is p with its version set and Managed as given.
func poolVersion(p api.Pool, managed bool) api.Pool {
	p.Managed, p.Version = false, ""
	p.Version = version(p)
	p.Managed = managed
	return p
}

// serviceVersion is s with its version set and Managed as given.
func serviceVersion(s api.Service, managed bool) api.Service {
	s.Managed, s.Version = false, ""
	s.Version = version(s)
	s.Managed = managed
	return s
}
