package zones

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// MaxCNAMEChain is the most CNAMEs the server follows inside our zones for one query;
// Set.CheckCNAMEs refuses longer chains. Eight is what BIND and CoreDNS settle on: it
// stops loops, and chains that long are a configuration error anyway.
const MaxCNAMEChain = 8

// CheckCNAMEs returns an error for every CNAME loop in the set's zones, and for every
// chain of more than max CNAMEs that stays in them (a chain ends where a name has other
// data, is missing, is delegated, is an address service, or leaves our zones). The server
// follows at most max CNAMEs for a query, so a longer chain would be answered cut short,
// and a loop as max repeated CNAMEs: both are refused at load instead. Wildcard CNAMEs
// count as the names they synthesise. hosts, when not nil, gives the CNAME targets of a
// service answered with a CNAME (its members' host names, lower case), which the server
// chases like a static CNAME: a chain may branch there, and every branch is followed.
// Each error is a *RecordError naming the chain's owners (the wildcard's owner for a
// synthesised step) and wraps ErrCNAMELoop or ErrCNAMEChain; a loop is reported once, a
// long chain once from each name no CNAME points to.
func (s *Set) CheckCNAMEs(max int, hosts func(ServiceRef) []string) []error {
	if s == nil {
		return nil
	}
	pointed := map[string]bool{}
	var starts []string
	for _, z := range s.zones {
		for name, n := range z.nodes {
			if n.cut != nil {
				continue
			}
			targets := cnameTargets(n, hosts)
			if len(targets) == 0 {
				continue
			}
			starts = append(starts, name)
			for _, t := range targets {
				pointed[t] = true
			}
		}
	}
	slices.SortFunc(starts, canonicalCompare)
	w := cnameWalk{s: s, hosts: hosts, max: max, seen: map[string]bool{}}
	for _, start := range starts {
		w.long, w.steps = nil, 0
		w.walk(start, nil, nil)
		if w.long != nil && !pointed[start] {
			shown := w.long
			if len(shown) > max+1 {
				shown = shown[:max+1]
			}
			w.errs = append(w.errs, &RecordError{Name: start, Type: dns.TypeCNAME, Names: shown,
				Err: fmt.Errorf("%w: %d cnames from %s, more than the %d followed: %s", ErrCNAMEChain, len(w.long), start, max, strings.Join(shown, " → "))})
		}
	}
	return w.errs
}

// cnameTargets is where the node sends a query by CNAME: its CNAME's target, or the hosts
// of the host-name service it holds.
func cnameTargets(n *node, hosts func(ServiceRef) []string) []string {
	switch {
	case n.cname != "":
		return []string{n.cname}
	case n.service != NoService && hosts != nil:
		return hosts(n.service)
	}
	return nil
}

// cnameWalk follows the CNAMEs of CheckCNAMEs depth first, every branch of a host-name
// service in turn, at most maxLoopWalk steps from one start.
type cnameWalk struct {
	s     *Set
	hosts func(ServiceRef) []string
	max   int
	seen  map[string]bool // loops reported, by their sorted owners
	errs  []error
	long  []string // the first chain from this start longer than max
	steps int
}

// walk takes the step from q, after the owners and names of the chain so far.
func (w *cnameWalk) walk(q string, owners, names []string) {
	if w.steps++; w.steps > maxLoopWalk {
		return
	}
	z := w.s.Find(q)
	if z == nil {
		return
	}
	owner, targets := z.cnameAt(q, w.hosts)
	if len(targets) == 0 {
		return
	}
	if i := slices.Index(names, q); i >= 0 {
		cycle := slices.Clone(owners[i:])
		if key := strings.Join(sortedCopy(cycle), " "); !w.seen[key] {
			w.seen[key] = true
			path := append(slices.Clone(cycle), owners[i])
			w.errs = append(w.errs, &RecordError{Name: cycle[0], Type: dns.TypeCNAME, Names: cycle,
				Err: fmt.Errorf("%w: %s", ErrCNAMELoop, strings.Join(path, " → "))})
		}
		return
	}
	owners, names = append(slices.Clip(owners), owner), append(slices.Clip(names), q)
	if len(owners) > w.max && w.long == nil {
		w.long = owners
	}
	for _, t := range targets {
		w.walk(t, owners, names)
	}
}

// maxLoopWalk is how far a chain is followed to tell a loop from a long chain: beyond
// it, it is reported as too long (a loop longer than this is one too).
const maxLoopWalk = 1024

// cnameAt reports where the lower-case, in-zone name q sends a query by CNAME, as Lookup
// would find it: the owner (q, or the wildcard that synthesises it) and the targets (a
// CNAME's, or a host-name service's hosts).
func (z *Zone) cnameAt(q string, hosts func(ServiceRef) []string) (owner string, targets []string) {
	n := z.nodes[q]
	if n == nil {
		n = z.apex
		for off, end := dns.NextLabel(q, 0); !end; off, end = dns.NextLabel(q, off) {
			if m := z.nodes[q[off:]]; m != nil {
				n = m
				break
			}
		}
		if n.cut != nil || n.wild == nil {
			return "", nil
		}
		n = n.wild
	}
	if n.cut != nil {
		return "", nil
	}
	return n.name, cnameTargets(n, hosts)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
