package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/zones"
)

// SRV answers (RFC 2782) let clients that balance themselves discover a service's usable
// members: a query of type SRV at a service name answers one SRV record per chosen
// member, with
//   - priority: the rank of the member's pool among the pools of the walk that are up
//     (0 for the first, 1 for the next: a failover, geo or nearest order is handed to
//     the client), 0 for every member of a plain service and for an answer made by
//     when_all_down;
//   - weight: the member's weight, scaled into 1..65535 when a member of the service
//     weighs more than 65535 (weight 0 members are out of rotation and never answered);
//   - port: the member's port, else its pool's;
//   - target: "<member>.<pool>.<service name>" (lower case) for an address member, whose
//     A or AAAA record glbdns answers itself at that name, health-independent (see
//     Snapshot.Target); a host-name member's host.
//
// A service whose members have no port answers SRV with NODATA; a service some of whose
// members have a port and others none is refused at load.

// maxSRVWeight is the largest weight an SRV record carries (RFC 2782: a 16-bit field).
const maxSRVWeight = 65535

// srvTarget is a member as an SRV answer names it.
type srvTarget struct {
	target string // the SRV target: <member>.<pool>.<service name>, or the member's host
	weight uint16 // the SRV weight: the member's weight, scaled into 1..65535
}

// srvTable is a service's SRV data, compiled with it: nil for a service without ports.
type srvTable struct {
	// byMember is keyed by Member.Index (not by pointer, so that two compilations of one
	// policy give deeply equal snapshots).
	byMember map[int]srvTarget
	// byLabel finds an address member by the labels its target name adds in front of the
	// service name ("fra-1.web-eu."), for Snapshot.Target.
	byLabel map[string]*Member
}

// SRVRecord is one record of an SRV answer: the member and its priority. SRV gives the
// rest of the record (weight, port, target).
type SRVRecord struct {
	Member   *Member
	Priority uint16
}

// SRVSelection is the answer SelectSRV chose. len(Records) == 0 && !ServFail means NODATA.
type SRVSelection struct {
	Records  []SRVRecord
	ServFail bool // when_all_down = "servfail" and nothing was up
	AllDown  bool // nothing was up; when_all_down decided
	Scope    int  // ECS scope prefix the answer depended on (0 if none)
}

// HasSRV reports whether the service answers SRV queries: its members have ports.
func (s *Service) HasSRV() bool { return s.srv != nil }

// SRV returns the weight, port and target of the SRV record of member m, a member of one
// of the service's pools (or of its fallback pool); ok is false for any other member and
// for a service without SRV.
func (s *Service) SRV(m *Member) (weight, port uint16, target string, ok bool) {
	if s.srv == nil {
		return 0, 0, "", false
	}
	t, ok := s.srv.byMember[m.Index]
	return t.weight, m.Port, t.target, ok
}

// SelectSRV chooses the SRV answer of one query: the usable members (health up, weight
// above 0) of every entry of the walk that is up, in the walk's order, each entry's own
// method picking up to Answers of them (every one with answers = 0), the entry's rank
// among the up entries as their priority. An entry is up when one of its families has its
// min_healthy usable members, as for A or AAAA. When none is up, when_all_down decides as
// for A and AAAA: the degraded or failed-open members (all), SERVFAIL (servfail), or the
// fallback pool's usable members, else all of them (fallback), at priority 0. members and
// dst are reusable buffers (appended to from [:0]): once they have grown to the service's
// member count the call allocates nothing.
func (s *Service) SelectSRV(client *Client, h Health, members []*Member, dst []SRVRecord) SRVSelection {
	dst = dst[:0]
	if s.srv == nil {
		return SRVSelection{Records: dst}
	}
	var buf [maxSteerPools]uint8
	order, scope := s.order(client, &buf, nil)
	prio := uint16(0)
	for _, i := range order {
		e := &s.entries[i]
		members = members[:0]
		up := false
		for f := range numFamilies {
			n0 := len(members)
			members = usable(members, e.cands[f], h)
			up = up || len(e.cands[f]) > 0 && len(members)-n0 >= e.need[f]
		}
		if !up {
			continue
		}
		var sc int
		dst, sc = s.srvPick(dst, e, client, members, prio, h)
		scope = max(scope, sc)
		prio++
	}
	if prio > 0 {
		return SRVSelection{Records: dst, Scope: finalScope(client, scope)}
	}
	var chosen *entry
	members = members[:0]
	switch s.WhenAllDown {
	case AllDownServFail:
		return SRVSelection{Records: dst, ServFail: true, AllDown: true}
	case AllDownFallback:
		chosen = s.fallback
		for f := range numFamilies {
			members = usable(members, chosen.cands[f], h)
		}
		if len(members) == 0 {
			for f := range numFamilies {
				members = append(members, chosen.cands[f]...)
			}
		}
	default:
		// As degrade: the first entry with usable members, else the first entry failed
		// open (its members of a weight above 0, or all when all weigh 0).
		for _, i := range order {
			e := &s.entries[i]
			for f := range numFamilies {
				members = usable(members, e.cands[f], h)
			}
			if len(members) > 0 {
				chosen = e
				break
			}
		}
		if chosen == nil {
			for i := range s.entries {
				e := &s.entries[i]
				for f := range numFamilies {
					members = failOpen(members, e.cands[f])
				}
				if len(members) > 0 {
					chosen = e
					break
				}
			}
		}
	}
	if chosen == nil {
		return SRVSelection{Records: dst, AllDown: true}
	}
	dst, sc := s.srvPick(dst, chosen, client, members, 0, h)
	return SRVSelection{Records: dst, AllDown: true, Scope: finalScope(client, max(scope, sc))}
}

// srvPick appends to dst the members e's method picks from items (Answers of them, or all
// with answers = 0), at priority prio, and returns the ECS scope the pick depended on.
func (s *Service) srvPick(dst []SRVRecord, e *entry, client *Client, items []*Member, prio uint16, h Health) ([]SRVRecord, int) {
	n := s.Answers
	if n == 0 {
		n = len(items)
	}
	picked, scope := s.pickN(e, client, items, n, h, nil)
	for _, m := range picked {
		dst = append(dst, SRVRecord{Member: m, Priority: prio})
	}
	return dst, scope
}

// Target is the member whose SRV target name is name, a lower-case, fully qualified name
// in zone z for which z has no data ("fra-1.web-eu.www.glb.example.com."), with the
// service that names it; nil when name is no target. The DNS server answers a target's
// A or AAAA record itself, health-independent: the SRV answer is what follows health,
// and a client holding a cached SRV set must still be able to reach each target it
// names. It does not allocate.
func (s *Snapshot) Target(z *zones.Zone, name string) (*Service, *Member) {
	off1, end := dns.NextLabel(name, 0)
	if end {
		return nil, nil
	}
	off2, end := dns.NextLabel(name, off1)
	if end || len(name)-off2 <= len(z.Origin()) {
		return nil, nil // a service is below the origin: so must be what is left of name
	}
	var r zones.Result
	z.LookupCanonical(name[off2:], dns.TypeA, &r)
	if r.Kind != zones.Service || r.Wildcard || int(r.Service) < 0 || int(r.Service) >= len(s.Services) {
		return nil, nil
	}
	svc := s.Services[r.Service]
	if svc == nil || svc.srv == nil {
		return nil, nil
	}
	if m := svc.srv.byLabel[name[:off2]]; m != nil {
		return svc, m
	}
	return nil, nil
}

// srvMembers calls f for every member the service may answer: those of its pools, then
// those of its fallback pool when that is not one of them.
func (s *Service) srvMembers(f func(*Member)) {
	for _, p := range s.Pools {
		for _, m := range p.Members {
			f(m)
		}
	}
	if fb := s.Fallback; fb != nil {
		for _, p := range s.Pools {
			if p == fb {
				return
			}
		}
		for _, m := range fb.Members {
			f(m)
		}
	}
}

// buildSRV compiles the service's SRV table from its members' ports (nil when no member
// has one). It returns the members without a port when some have one, and the member
// names that cannot be a DNS label of a target name; the table is nil then.
func (s *Service) buildSRV() (noPort, badName []*Member) {
	s.srv = nil
	var withPort int
	var maxW uint32
	s.srvMembers(func(m *Member) {
		if m.Port > 0 {
			withPort++
		} else {
			noPort = append(noPort, m)
		}
		maxW = max(maxW, m.Weight)
	})
	if withPort == 0 {
		return nil, nil
	}
	if len(noPort) > 0 {
		return noPort, nil
	}
	t := &srvTable{byMember: map[int]srvTarget{}, byLabel: map[string]*Member{}}
	s.srvMembers(func(m *Member) {
		w := m.Weight
		if maxW > maxSRVWeight {
			w = max(1, uint32(uint64(w)*maxSRVWeight/uint64(maxW)))
		}
		st := srvTarget{target: m.Host, weight: uint16(w)}
		if m.Host == "" {
			label := strings.ToLower(m.Name) + "." + strings.ToLower(m.Pool) + "."
			st.target = label + s.Name
			if !validLabel(m.Name) || !validLabel(m.Pool) || !validName(st.target) || t.byLabel[label] != nil {
				badName = append(badName, m)
			}
			t.byLabel[label] = m
		}
		t.byMember[m.Index] = st
	})
	if len(badName) > 0 {
		return nil, badName
	}
	s.srv = t
	return nil, nil
}

// validLabel reports whether s is one DNS label that needs no escaping (letters, digits,
// '-' and '_', at most 63 octets): a member or pool name that can name an SRV target.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-' || s[i] == '_') {
			return false
		}
	}
	return true
}

// serviceSRV compiles the service's SRV table and reports why it cannot have one: some of
// its members have a port and others none, or a member's target name is not a name.
func (c *compilation) serviceSRV(s *Service, pa *hcl.Attribute) {
	noPort, badName := s.buildSRV()
	if len(noPort) > 0 {
		c.errf(pa.Expr.Range(), "Missing port", "Service %q answers SRV queries (some of its members have a port), but member %q has no port, nor has its pool %q; set port on the member or on the pool.", s.Name, noPort[0].ID(), noPort[0].Pool)
	}
	if len(badName) > 0 {
		m := badName[0]
		c.errf(pa.Expr.Range(), "Invalid SRV target", "Service %q names the SRV target of member %q %q, which is not a valid host name: member and pool names must be DNS labels (letters, digits, '-', '_'; at most 63 octets), distinct without regard to case, and the whole name at most 255 octets.", s.Name, m.ID(), fmt.Sprintf("%s.%s.%s", m.Name, m.Pool, s.Name))
	}
}

// checkSRVTargets refuses a service one of whose SRV target names its zone answers with
// something else (a record, a service, a name below it, a wildcard): the target would
// not resolve to its member. It runs once every service is inserted.
func (c *compilation) checkSRVTargets() {
	for k := range c.pending {
		p := &c.pending[k]
		if p.s.srv == nil || p.zone == nil || p.zone.z == nil {
			continue
		}
		var clash []string
		for label := range p.s.srv.byLabel {
			if r := p.zone.z.Lookup(label+p.s.Name, dns.TypeA); r.Kind != zones.NXDomain {
				clash = append(clash, label+p.s.Name)
			}
		}
		if len(clash) > 0 {
			slices.Sort(clash)
			c.errf(*p.rng, "SRV target taken", "Service %q names the SRV target %q, but its zone has data at that name (or below it, or a wildcard covering it), so the target would not resolve to its member; rename the member or the pool, or move that data.", p.s.Name, clash[0])
		}
	}
}
