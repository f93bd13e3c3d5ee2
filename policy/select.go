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
	Members  []*Member // the chosen members, distinct, len <= svc.MaxAnswers()
	CNAME    bool      // Members[0].Host is the CNAME target
	ServFail bool      // when_all_down = "servfail" and nothing was up
	AllDown  bool      // nothing was up (no pool at min_healthy; no member usable); when_all_down decided
	Scope    int       // ECS scope prefix the answer depended on (0 if none)
}

var (
	weightOf = balance.Weighted[*Member]{Weight: func(m *Member) uint64 { return uint64(m.Weight) }}
	hrw      = balance.Rendezvous[*Member]{ID: func(m *Member) uint64 { return m.idHash }, Weight: func(m *Member) uint64 { return uint64(m.Weight) }}
)

// family maps a qtype to the candidate family; ok is false for a qtype an address
// service has no members for (anything but A and AAAA: NODATA).
func (s *Service) family(qtype uint16) (int, bool) {
	switch {
	case s.cname:
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
// Usable members are those Health reports up (a drained member is not) and whose weight
// is not 0 (out of rotation, for every method). The service's steering orders its pools for the client, and the first
// pool of the order with at least min_healthy usable members answers, chosen by that
// pool's method; a plain service (round_robin, weighted, client_subnet_hash) has one
// order of one entry, all its pools' members, up while one of them is usable. When no
// entry of the order is up, WhenAllDown decides: AllDownAll answers from the first entry
// that still has usable members, else as if every member of the first entry with a weight
// above 0 were up (fail open; if all have weight 0, all of them), AllDownServFail sets ServFail,
// AllDownFallback answers from the fallback pool's usable members of the family, or all
// of them when none is usable either.
func (s *Service) Select(client Client, qtype uint16, h Health, dst []*Member) Selection {
	return s.SelectFor(&client, qtype, h, dst)
}

// SelectFor is Select for a Client the caller holds, which it reads and does not keep:
// the DNS fast path uses it so as not to copy the Client (some 200 bytes, with its GeoIP
// data) per query.
func (s *Service) SelectFor(client *Client, qtype uint16, h Health, dst []*Member) Selection {
	return s.selectMembers(client, qtype, h, dst, nil)
}

// trace receives the walk's decisions for Explain; nil on the hot path.
type trace struct {
	path pathKind
	// answered is the entry that answered: a pool of the order, a plain service's
	// members or the fallback pool; nil for NODATA and SERVFAIL.
	answered *entry
	key      netip.Prefix // the client prefix client_subnet_hash hashed
	rule     string       // steering services: which geo rule matched, or how the order was made
	order    []uint8      // the order walked (indexes into Service.entries)
	scores   []float64    // nearest: distance minus bias per pool (Inf: no location)
}

// pathKind is how the walk reached its answer.
type pathKind uint8

const (
	pathNoData      pathKind = iota // no member of the asked family
	pathUp                          // an entry of the order had its min_healthy usable members
	pathServFail                    // when_all_down = "servfail"
	pathFallback                    // when_all_down = "fallback", its usable members
	pathFallbackAll                 // when_all_down = "fallback", none usable: all its members
	pathDegraded                    // when_all_down = "all", an entry below min_healthy
	pathFailOpen                    // when_all_down = "all", nothing usable
)

// record notes how the walk answered; a no-op on the hot path (tr nil).
func (tr *trace) record(path pathKind, e *entry) {
	if tr != nil {
		tr.path, tr.answered = path, e
	}
}

// selectMembers is the one selection walk, for every service. (The Selection is built
// in the return statements, not in a variable: a struct variable of this size is copied
// through memory on return, a measurable part of a plain service's Select.)
func (s *Service) selectMembers(client *Client, qtype uint16, h Health, dst []*Member, tr *trace) Selection {
	fam, ok := s.family(qtype)
	if !ok || !s.hasFam[fam] {
		tr.record(pathNoData, nil)
		return Selection{Members: dst[:0], CNAME: s.cname}
	}
	var buf [maxSteerPools]uint8
	order, scope := s.order(client, &buf, tr)
	if tr != nil {
		tr.order = append(tr.order[:0], order...)
	}
	var chosen *entry
	path := pathUp
	for _, i := range order {
		e := &s.entries[i]
		if len(e.cands[fam]) == 0 {
			continue // no member of the family: the entry is skipped for it
		}
		if dst = usable(dst[:0], e.cands[fam], h); len(dst) >= e.need[fam] {
			chosen = e
			break
		}
	}
	if chosen == nil {
		switch s.WhenAllDown {
		case AllDownServFail:
			tr.record(pathServFail, nil)
			return Selection{Members: dst[:0], CNAME: s.cname, ServFail: true, AllDown: true}
		case AllDownFallback:
			chosen, path = s.fallback, pathFallback
			if dst = usable(dst[:0], chosen.cands[fam], h); len(dst) == 0 {
				dst, path = append(dst, chosen.cands[fam]...), pathFallbackAll
			}
		default:
			chosen, dst, path = s.degrade(order, fam, h, dst)
		}
	}
	tr.record(path, chosen)
	members, pickScope := s.pick(chosen, client, dst, h, tr)
	return Selection{Members: members, CNAME: s.cname, AllDown: path != pathUp, Scope: finalScope(client, max(scope, pickScope))}
}

// degrade is when_all_down = "all" once no entry of the order is up: the first entry that
// still has usable members (below its min_healthy) answers with them; when nothing at all
// is usable, the first entry with members of the family answers as if they were up.
func (s *Service) degrade(order []uint8, fam int, h Health, dst []*Member) (*entry, []*Member, pathKind) {
	var first *entry
	for _, i := range order {
		e := &s.entries[i]
		if len(e.cands[fam]) == 0 {
			continue
		}
		if dst = usable(dst[:0], e.cands[fam], h); len(dst) > 0 {
			return e, dst, pathDegraded
		}
		if first == nil {
			first = e
		}
	}
	if first == nil {
		// A geo rule's order may leave out every pool with members of the family; the
		// service has some (else the answer was NODATA): its first such pool answers.
		for i := range s.entries {
			if len(s.entries[i].cands[fam]) > 0 {
				first = &s.entries[i]
				break
			}
		}
	}
	return first, failOpen(dst[:0], first.cands[fam]), pathFailOpen
}

// usable appends the candidates that are up and of a weight above 0.
func usable(dst, cands []*Member, h Health) []*Member {
	for _, m := range cands {
		if m.Weight > 0 && h.Up(m) {
			dst = append(dst, m)
		}
	}
	return dst
}

// failOpen appends every candidate of a weight above 0, or every candidate when all have
// weight 0.
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

// pick runs the entry's method over the members it answers with (reordering them in
// place), and returns the chosen ones and how many leading client address bits the
// choice depended on.
func (s *Service) pick(chosen *entry, client *Client, items []*Member, h Health, tr *trace) ([]*Member, int) {
	n := s.Answers
	if n == 0 {
		n = len(items) // answers = 0: every usable member
	}
	if s.cname {
		n = 1 // one CNAME per name (RFC 2181 section 10.1)
	}
	return s.pickN(chosen, client, items, n, h, tr)
}

// pickN is pick of n members.
func (s *Service) pickN(chosen *entry, client *Client, items []*Member, n int, h Health, tr *trace) ([]*Member, int) {
	switch chosen.method {
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
	case LeastConnections:
		return s.leastConn(items, n, h), 0
	default:
		return chosen.rr.Pick(items, n), 0
	}
}

// finalScope is the ECS scope prefix length of an answer that depended on the first
// scope bits of the client address: never longer than the source prefix the client sent
// (RFC 7871 section 7.2.1), and 0 without ECS, where a scope means nothing.
func finalScope(c *Client, scope int) int {
	if !c.ECS {
		return 0
	}
	return max(0, min(scope, c.SourcePrefix))
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

// MaxAnswers is the most members one answer of the service carries: Answers, or with
// answers = 0 (every usable member) the most candidates of one family that any entry of
// its walk (a pool, the plain service's members, the fallback pool) holds. The DNS fast
// path bounds a reply's size with it before selecting.
func (s *Service) MaxAnswers() int {
	if s.Answers > 0 {
		return s.Answers
	}
	n := 0
	for i := range s.entries {
		n = max(n, len(s.entries[i].cands[famV4]), len(s.entries[i].cands[famV6]), len(s.entries[i].cands[famHost]))
	}
	if f := s.fallback; f != nil {
		n = max(n, len(f.cands[famV4]), len(f.cands[famV6]), len(f.cands[famHost]))
	}
	return n
}

// HasFamily reports whether the service has members that answer qtype (A: IPv4 members,
// AAAA: IPv6 ones): without, its answer is NODATA whatever their health.
func (s *Service) HasFamily(qtype uint16) bool {
	fam, ok := s.family(qtype)
	return ok && s.hasFam[fam]
}
