package zones

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Set is the collection of zones a server is authoritative for. Zones may nest (a child
// zone served beside its parent): the longest origin that matches a name wins, as a
// resolver following the delegation would reach the child's servers. A Set is immutable.
type Set struct {
	byOrigin map[string]*Zone
	zones    []*Zone // in canonical order (RFC 4034 section 6.1), for stable listings
}

// NewSet returns a set of the zones; two zones with the same origin are refused.
func NewSet(zs ...*Zone) (*Set, error) {
	s := &Set{byOrigin: make(map[string]*Zone, len(zs))}
	for _, z := range zs {
		if z == nil {
			return nil, fmt.Errorf("new zone set: nil zone")
		}
		if _, ok := s.byOrigin[z.origin]; ok {
			return nil, fmt.Errorf("new zone set: %s: %w", z.origin, ErrDuplicateZone)
		}
		s.byOrigin[z.origin] = z
		s.zones = append(s.zones, z)
	}
	slices.SortFunc(s.zones, func(a, b *Zone) int { return canonicalCompare(a.origin, b.origin) })
	return s, nil
}

// scanZones is the largest set Find searches by comparing suffixes; larger sets are
// searched through the map, one lookup per label of the name.
const scanZones = 8

// Find returns the zone whose origin is the longest suffix of qname (case-insensitive),
// or nil when no zone holds it; the server then answers REFUSED. It does not allocate
// when qname is lower case and fully qualified.
func (s *Set) Find(qname string) *Zone {
	if s == nil || len(s.byOrigin) == 0 {
		return nil
	}
	if qname == "" || qname[len(qname)-1] != '.' {
		qname += "."
	}
	q := lower(qname)
	if strings.IndexByte(q, '\\') >= 0 {
		return s.findLabels(q)
	}
	return s.FindCanonical(q)
}

// FindCanonical is Find for a name the caller knows is lower case, fully qualified and
// free of escapes (the fast path builds such a name from the wire): it skips the checks
// Find makes on any name.
func (s *Set) FindCanonical(q string) *Zone {
	if s == nil || len(s.byOrigin) == 0 {
		return nil
	}
	if len(s.zones) <= scanZones {
		return s.findScan(q)
	}
	return s.findLabels(q)
}

// findScan compares each origin with the end of q: for a few zones that beats hashing
// every label suffix of q. q must hold no escapes, so that a '.' before the origin is a
// label boundary (which inZone checks).
func (s *Set) findScan(q string) *Zone {
	var best *Zone
	for _, z := range s.zones {
		if (best == nil || len(z.origin) > len(best.origin)) && z.inZone(q) {
			best = z
		}
	}
	return best
}

// findLabels walks the labels of q with dns.NextLabel (which knows escapes), one map
// lookup per label suffix, longest first.
func (s *Set) findLabels(q string) *Zone {
	for off, end := 0, false; !end; off, end = dns.NextLabel(q, off) {
		if z := s.byOrigin[q[off:]]; z != nil {
			return z
		}
	}
	return s.byOrigin["."]
}

// Zones returns the zones of the set in canonical order of their origins (RFC 4034
// section 6.1: a parent before its children, so nested zones follow their parent), in a
// new slice.
func (s *Set) Zones() []*Zone {
	if s == nil {
		return nil
	}
	return slices.Clone(s.zones)
}

// canonicalCompare orders lower-case names by their labels read from the right.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}
