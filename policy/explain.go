package policy

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy/balance"
)

// Explanation says how Select answered one query, for glbctl explain.
type Explanation struct {
	Service string
	Method  Method
	Pools   []string
	Client  Client
	QType   uint16
	// Candidates are the members considered, of the asked family: those of the pool that
	// answered (all the service's members for a plain service, the fallback pool's when
	// that path was taken), or for SERVFAIL those of every pool of the order; with their
	// health and weight, and for client_subnet_hash their rendezvous score.
	Candidates []Candidate
	// HashKey is the client prefix hashed by client_subnet_hash (invalid otherwise).
	HashKey netip.Prefix
	// Path is the when_all_down decision in words ("usable members", "all down: ...").
	Path string
	// Selection is the answer, as Select returns it.
	Selection Selection

	// Steering services only (failover, geo, nearest).
	Steering Steering
	// Rule says what ordered the pools: the geo rule that matched (and on what), or the
	// nearest/failover ordering.
	Rule string
	// Order is the pool order walked, each pool with its health against min_healthy.
	Order []PoolState
	// ChosenPool is the pool that answered: one of the order's or the fallback pool ("" when
	// none did, or when a plain service answered from all its members).
	ChosenPool string
	// CandidateMethod is the method that chose among Candidates (the chosen pool's).
	CandidateMethod Method
}

// PoolState is one pool of a steering service's order, for the asked family.
type PoolState struct {
	Name    string
	Method  Method
	Members int // members of the asked family
	Usable  int // of them, up and of a weight above 0
	Need    int // min_healthy for this family (0: no member of the family)
	Up      bool
	// Score is the nearest policy's distance in km minus the pool's bias (+Inf without a
	// location); valid when HasScore.
	Score    float64
	HasScore bool
}

// Candidate is one member Explain considered.
type Candidate struct {
	Member *Member
	Up     bool
	Weight uint32
	Score  uint64 // rendezvous score (client_subnet_hash only)
	Chosen bool
}

// Explain runs the same selection as Select and records why it chose what it did. It
// allocates and, for round_robin, advances the rotation like any query.
func (s *Service) Explain(client Client, qtype uint16, h Health) *Explanation {
	tr := &trace{}
	sel := s.selectMembers(&client, qtype, h, nil, tr)
	sel.Members = append([]*Member(nil), sel.Members...)
	ex := &Explanation{Service: s.Name, Method: s.Method, Client: client, QType: qtype,
		Path: s.pathText(tr), Selection: sel, Steering: s.Steering, Rule: tr.rule}
	for _, p := range s.Pools {
		ex.Pools = append(ex.Pools, p.Name)
	}
	fam, _ := s.family(qtype)
	if s.Steering != SteerNone {
		for _, i := range tr.order {
			e := &s.entries[i]
			st := PoolState{Name: e.pool.Name, Method: e.method, Members: len(e.cands[fam]), Need: e.need[fam]}
			st.Usable = len(usable(nil, e.cands[fam], h))
			st.Up = st.Members > 0 && st.Usable >= st.Need
			if int(i) < len(tr.scores) {
				st.Score, st.HasScore = tr.scores[i], true
			}
			ex.Order = append(ex.Order, st)
		}
	}
	method, cands := s.Method, []*Member(nil)
	switch {
	case tr.answered != nil:
		method, cands = tr.answered.method, tr.answered.cands[fam]
		if tr.answered.pool != nil {
			ex.ChosenPool = tr.answered.pool.Name
		}
	case tr.path == pathServFail:
		for _, i := range tr.order {
			cands = append(cands, s.entries[i].cands[fam]...)
		}
	}
	ex.CandidateMethod = method
	var key uint64
	if method == ClientSubnetHash {
		// The scores are those of the client's key whether or not a pick used it (under
		// SERVFAIL none did, and HashKey stays unset).
		key, _, _ = s.hashKey(&client)
		ex.HashKey = tr.key
	}
	for _, m := range cands {
		c := Candidate{Member: m, Up: h.Up(m), Weight: m.Weight}
		if method == ClientSubnetHash {
			c.Score = balance.Score(key, m.idHash)
		}
		for _, ch := range sel.Members {
			c.Chosen = c.Chosen || ch == m
		}
		ex.Candidates = append(ex.Candidates, c)
	}
	return ex
}

// pathText words the walk's decision. A plain service's one entry is its members, and
// "all down" says of it what "every pool below min_healthy" says of a steering service.
func (s *Service) pathText(tr *trace) string {
	plain := s.Steering == SteerNone
	below := "every pool below min_healthy"
	if plain {
		below = "all down"
	}
	switch tr.path {
	case pathNoData:
		return "no member of the asked family: NODATA"
	case pathUp:
		if plain {
			return "usable members"
		}
		return "pool " + tr.answered.pool.Name + " is up"
	case pathServFail:
		return below + ": when_all_down = servfail"
	case pathFallback:
		return below + ": when_all_down = fallback, pool " + s.Fallback.Name + " (usable members)"
	case pathFallbackAll:
		return below + ": when_all_down = fallback, pool " + s.Fallback.Name + " (none usable either: all its members)"
	case pathDegraded:
		return below + ": when_all_down = all, pool " + tr.answered.pool.Name + " with its usable members"
	}
	if plain {
		return "all down: when_all_down = all, answering as if every member were up"
	}
	return "every pool below min_healthy, none usable: when_all_down = all, pool " + tr.answered.pool.Name + " as if every member were up"
}

// String renders the explanation as text.
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service   %s\n", e.Service)
	fmt.Fprintf(&b, "query     %s from %s", dns.TypeToString[e.QType], e.Client.Addr)
	if e.Client.ECS {
		fmt.Fprintf(&b, " (ECS /%d)", e.Client.SourcePrefix)
	}
	b.WriteString("\n")
	if e.Steering != SteerNone {
		e.writeSteering(&b)
	} else {
		fmt.Fprintf(&b, "method    %s\npools     %s\n", e.Method, strings.Join(e.Pools, ", "))
	}
	if e.HashKey.IsValid() {
		fmt.Fprintf(&b, "hash key  %s\n", e.HashKey)
	}
	fmt.Fprintf(&b, "path      %s\n", e.Path)
	b.WriteString("candidates\n")
	for _, c := range e.Candidates {
		mark := " "
		if c.Chosen {
			mark = "*"
		}
		state := "up"
		switch {
		case !c.Up:
			state = "down"
		case c.Weight == 0:
			state = "weight 0"
		}
		target := c.Member.Host
		if target == "" {
			target = c.Member.Addr.String()
		}
		fmt.Fprintf(&b, "  %s %-24s %-28s %-7s weight=%d", mark, c.Member.ID(), target, state, c.Weight)
		if e.CandidateMethod == ClientSubnetHash {
			fmt.Fprintf(&b, " score=%016x", c.Score)
		}
		b.WriteString("\n")
	}
	sel := e.Selection
	switch {
	case sel.ServFail:
		b.WriteString("answer    SERVFAIL\n")
	case len(sel.Members) == 0:
		b.WriteString("answer    NODATA\n")
	default:
		b.WriteString("answer   ")
		for _, m := range sel.Members {
			if sel.CNAME {
				fmt.Fprintf(&b, " CNAME %s", m.Host)
			} else {
				fmt.Fprintf(&b, " %s", m.Addr)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "scope     /%d\n", sel.Scope)
	return b.String()
}

// writeSteering renders what a steering service looked at: the client's GeoIP data, the
// rule, and the pool order with each pool's usable members against min_healthy.
func (e *Explanation) writeSteering(b *strings.Builder) {
	fmt.Fprintf(b, "policy    %s (members: %s unless the pool sets its method)\n", e.Steering, e.Method)
	if e.Steering != SteerFailover {
		c := e.Client
		if !c.HasGeo {
			b.WriteString("geoip     no data (no database open)\n")
		} else {
			g := c.Geo
			fmt.Fprintf(b, "geoip     country=%s continent=%s", orDash(g.Country), orDash(g.Continent))
			if g.ASN != 0 {
				fmt.Fprintf(b, " asn=AS%d", g.ASN)
				if g.ASOrg != "" {
					fmt.Fprintf(b, " (%s)", g.ASOrg)
				}
			} else {
				b.WriteString(" asn=-")
			}
			if g.HasLocation {
				fmt.Fprintf(b, " location=%.4f,%.4f", g.Lat, g.Lon)
			}
			b.WriteString("\n")
			fmt.Fprintf(b, "network   city=%s asn=%s\n", prefixOrDash(g.CityNetwork), prefixOrDash(g.ASNNetwork))
		}
	}
	fmt.Fprintf(b, "rule      %s\n", e.Rule)
	b.WriteString("order\n")
	for i, p := range e.Order {
		mark := " "
		if p.Name == e.ChosenPool {
			mark = "*"
		}
		state := "up"
		switch {
		case p.Members == 0:
			state = "no members of this family"
		case !p.Up:
			state = "below min_healthy"
		}
		fmt.Fprintf(b, "  %s %d. %-16s usable %d/%d, min_healthy %d: %s, method %s", mark, i+1, p.Name, p.Usable, p.Members, p.Need, state, p.Method)
		if p.HasScore {
			if math.IsInf(p.Score, 1) {
				b.WriteString(", no location")
			} else {
				fmt.Fprintf(b, ", distance-bias %.0f km", p.Score)
			}
		}
		b.WriteString("\n")
	}
	if e.ChosenPool != "" {
		fmt.Fprintf(b, "pool      %s\n", e.ChosenPool)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func prefixOrDash(p netip.Prefix) string {
	if !p.IsValid() {
		return "-"
	}
	return p.String()
}
