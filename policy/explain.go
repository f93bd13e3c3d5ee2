package policy

import (
	"fmt"
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
	// Candidates are the members considered (the service's members of the asked family,
	// or the fallback pool's when that path was taken), with their health and weight, and
	// for client_subnet_hash their rendezvous score.
	Candidates []Candidate
	// HashKey is the client prefix hashed by client_subnet_hash (invalid otherwise).
	HashKey netip.Prefix
	// Path is the when_all_down decision in words ("usable members", "all down: ...").
	Path string
	// Selection is the answer, as Select returns it.
	Selection Selection
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
	sel, _ := s.selectMembers(client, qtype, h, nil, tr)
	ex := &Explanation{Service: s.Name, Method: s.Method, Client: client, QType: qtype,
		Path: tr.path, Selection: sel}
	sel.Members = append([]*Member(nil), sel.Members...)
	ex.Selection = sel
	for _, p := range s.Pools {
		ex.Pools = append(ex.Pools, p.Name)
	}
	var key uint64
	if s.Method == ClientSubnetHash && tr.key.IsValid() {
		ex.HashKey = tr.key
		key, _, _ = s.hashKey(client)
	}
	for _, m := range tr.cands {
		c := Candidate{Member: m, Up: h.Up(m), Weight: m.Weight}
		if s.Method == ClientSubnetHash {
			c.Score = balance.Score(key, m.idHash)
		}
		for _, ch := range sel.Members {
			c.Chosen = c.Chosen || ch == m
		}
		ex.Candidates = append(ex.Candidates, c)
	}
	return ex
}

// String renders the explanation as text.
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service   %s\n", e.Service)
	fmt.Fprintf(&b, "query     %s from %s", dns.TypeToString[e.QType], e.Client.Addr)
	if e.Client.ECS {
		fmt.Fprintf(&b, " (ECS /%d)", e.Client.SourcePrefix)
	}
	fmt.Fprintf(&b, "\nmethod    %s\npools     %s\n", e.Method, strings.Join(e.Pools, ", "))
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
			state = "drained"
		}
		target := c.Member.Host
		if target == "" {
			target = c.Member.Addr.String()
		}
		fmt.Fprintf(&b, "  %s %-24s %-28s %-7s weight=%d", mark, c.Member.ID(), target, state, c.Weight)
		if e.Method == ClientSubnetHash {
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
