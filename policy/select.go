package policy

import (
	"net/netip"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy/balance"
	"github.com/glbdns/glbdns/policy/geoip"
)

// Health is how selection sees member health. Implementations must be safe for concurrent
// lock-free reads (the DNS hot path calls Up for every candidate of every query).
type Health interface {
	Up(m *Member) bool
}

// AllUp is the Health that says every member is up: for glbctl explain without a health
// daemon, and for tests.
type AllUp struct{}

// Up implements Health.
func (AllUp) Up(*Member) bool { return true }

// Client is what selection may key on: the ECS address when the query carried ECS
// (already masked to SourcePrefix), else the query's source address (SourcePrefix =
// Addr.BitLen(), ECS = false).
//
// Geo is what the GeoIP databases say about Addr, valid when HasGeo. The server fills it
// once per query, and only for a service whose NeedsGeo is set, from the geoip.Watcher's
// current databases: a value (not a pointer or a callback) so that selection stays
// lock-free and allocation-free and a test can state a client's location directly.
// HasGeo false (no database open) makes geo services answer their default order and
// nearest services their pool order.
type Client struct {
	Addr         netip.Addr
	SourcePrefix int
	ECS          bool
	Geo          geoip.Info
	HasGeo       bool
}

// Selection is the answer Select chose.
// len(Members) == 0 && !ServFail means NODATA: the service has no member of the asked
// family.
type Selection struct {
	Members  []*Member // the chosen members, distinct, len <= svc.Answers
	CNAME    bool      // Members[0].Host is the CNAME target
	ServFail bool      // when_all_down = "servfail" and nothing usable
	AllDown  bool      // nothing was usable; when_all_down decided the answer
	Scope    int       // ECS scope prefix the answer depended on (0 if none)
}

var (
	weightOf = balance.Weighted[*Member]{Weight: func(m *Member) uint64 { return uint64(m.Weight) }}
	hrw      = balance.Rendezvous[*Member]{ID: func(m *Member) uint64 { return m.idHash }}
)

// family maps a qtype to the candidate family; ok is false for a qtype an address
// service has no members for (anything but A and AAAA: NODATA).
func (s *Service) family(qtype uint16) (int, bool) {
	switch {
	case s.host:
		// A CNAME owner answers every qtype with the CNAME (RFC 1034 section 3.6.2).
		return famHost, true
	case qtype == dns.TypeA:
		return famV4, true
	case qtype == dns.TypeAAAA:
		return famV6, true
	}
	return 0, false
}

// Select chooses the answer for one query. qtype A picks IPv4 members, AAAA IPv6 members;
// a service whose pools hold host-name members answers a CNAME for every qtype. dst is a
// reusable buffer: Select appends to dst[:0] and uses it as scratch, so once dst has the
// capacity of the service's largest candidate list the call allocates nothing.
//
// Usable members are those Health reports up and whose weight is not 0 (drained, for
// every method). When none is usable, WhenAllDown decides: AllDownAll answers as if every
// non-drained candidate were up (fail open; if all are drained, all of them),
// AllDownServFail sets ServFail, AllDownFallback answers from the fallback pool's usable
// members of the family, or all of them when none is usable either.
//
// A failover, geo or nearest service first orders its pools (see selectSteered) and
// answers from the first one with at least min_healthy usable members, chosen by that
// pool's method; WhenAllDown applies when every pool of the order is below it.
func (s *Service) Select(client Client, qtype uint16, h Health, dst []*Member) Selection {
	return s.SelectFor(&client, qtype, h, dst)
}

// SelectFor is Select for a Client the caller holds, which it reads and does not keep:
// the DNS fast path uses it so as not to copy the Client (some 200 bytes, with its GeoIP
// data) per query.
func (s *Service) SelectFor(client *Client, qtype uint16, h Health, dst []*Member) Selection {
	sel, _ := s.selectMembers(client, qtype, h, dst, nil)
	return sel
}

// trace receives Select's decisions for Explain; nil on the hot path.
type trace struct {
	path  string
	cands []*Member
	key   netip.Prefix
	// steering services only
	rule   string    // which geo rule matched, or how the order was made
	order  []uint8   // the pool order walked (indexes into Service.steer)
	scores []float64 // nearest: distance minus bias per pool (Inf: no location)
	chosen string    // the pool that answered
	method Method    // the chosen pool's method
}

func (s *Service) selectMembers(client *Client, qtype uint16, h Health, dst []*Member, tr *trace) (Selection, []*Member) {
	if s.Steering != SteerNone {
		return s.selectSteered(client, qtype, h, dst, tr)
	}
	var sel Selection
	sel.CNAME = s.host
	fam, ok := s.family(qtype)
	if !ok || len(s.cands[fam]) == 0 {
		if tr != nil {
			tr.path = "no member of the asked family: NODATA"
		}
		sel.Members = dst[:0]
		return sel, dst
	}
	cands := s.cands[fam]
	if tr != nil {
		tr.cands = cands
	}
	dst = usable(dst[:0], cands, h)
	if len(dst) == 0 {
		sel.AllDown = true
		switch s.WhenAllDown {
		case AllDownServFail:
			if tr != nil {
				tr.path = "all down: when_all_down = servfail"
			}
			sel.ServFail = true
			sel.Members = dst[:0]
			return sel, dst
		case AllDownFallback:
			fb := s.fallback[fam]
			dst = usable(dst[:0], fb, h)
			if tr != nil {
				tr.cands = fb
				tr.path = "all down: when_all_down = fallback, pool " + s.Fallback.Name + " (usable members)"
			}
			if len(dst) == 0 {
				dst = append(dst[:0], fb...)
				if tr != nil {
					tr.path = "all down: when_all_down = fallback, pool " + s.Fallback.Name + " (none usable either: all its members)"
				}
			}
		default:
			dst = failOpen(dst[:0], cands)
			if tr != nil {
				tr.path = "all down: when_all_down = all, answering as if every member were up"
			}
		}
	} else if tr != nil {
		tr.path = "usable members"
	}
	sel.Members, sel.Scope = s.pick(client, dst, tr)
	return sel, dst
}

// usable appends the candidates that are up and not drained.
func usable(dst, cands []*Member, h Health) []*Member {
	for _, m := range cands {
		if m.Weight > 0 && h.Up(m) {
			dst = append(dst, m)
		}
	}
	return dst
}

// failOpen appends every non-drained candidate, or every candidate when all are drained.
func failOpen(dst, cands []*Member) []*Member {
	for _, m := range cands {
		if m.Weight > 0 {
			dst = append(dst, m)
		}
	}
	if len(dst) == 0 {
		dst = append(dst, cands...)
	}
	return dst
}

// pick runs the service's method over the usable members (reordering them in place).
func (s *Service) pick(client *Client, items []*Member, tr *trace) ([]*Member, int) {
	n := s.Answers
	if s.host {
		n = 1 // one CNAME per name (RFC 2181 section 10.1)
	}
	switch s.Method {
	case Weighted:
		w := weightOf
		w.Rand = s.rand
		return w.Pick(items, n), 0
	case ClientSubnetHash:
		key, bits, scope := s.hashKey(client)
		if tr != nil {
			tr.key = netip.PrefixFrom(client.Addr, bits).Masked()
		}
		return hrw.Pick(key, items, n), scope
	default:
		return s.rr.Pick(items, n), 0
	}
}

// hashKey hashes the client address truncated to min(hash prefix, source prefix) of its
// family. The scope returned is that prefix when the client sent ECS (RFC 7871 section
// 7.2.1: the answer depends on exactly those bits), else 0.
func (s *Service) hashKey(c *Client) (key uint64, bits, scope int) {
	if !c.Addr.IsValid() {
		return balance.KeyHash(nil), 0, 0
	}
	addr := c.Addr.Unmap()
	bits = s.HashPrefix6
	if addr.Is4() {
		bits = s.HashPrefix4
	}
	if c.ECS {
		// Without ECS the source address is whole; SourcePrefix is not trusted then.
		bits = min(bits, c.SourcePrefix)
	}
	bits = max(min(bits, addr.BitLen()), 0)
	p, _ := addr.Prefix(bits)
	var buf [17]byte
	if addr.Is4() {
		a := p.Addr().As4()
		copy(buf[:], a[:])
		buf[4] = byte(bits)
		key = balance.KeyHash(buf[:5])
	} else {
		a := p.Addr().As16()
		copy(buf[:], a[:])
		buf[16] = byte(bits)
		key = balance.KeyHash(buf[:17])
	}
	if c.ECS {
		scope = bits
	}
	return key, bits, scope
}
