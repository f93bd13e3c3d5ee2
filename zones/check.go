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
// data, is missing, is delegated, is a service, or leaves our zones). The server follows
// at most max CNAMEs for a query, so a longer chain would be answered cut short, and a
// loop as max repeated CNAMEs: both are refused at load instead. Wildcard CNAMEs count as
// the names they synthesise. Each error is a *RecordError naming the chain's owners (the
// wildcard's owner for a synthesised step) and wraps ErrCNAMELoop or ErrCNAMEChain; a loop
// is reported once, a long chain once from each name no CNAME points to.
func (s *Set) CheckCNAMEs(max int) []error {
	if s == nil {
		return nil
	}
	pointed := map[string]bool{}
	var starts []string
	for _, z := range s.zones {
		for name, n := range z.nodes {
			if n.cname != "" && n.cut == nil {
				starts = append(starts, name)
				pointed[n.cname] = true
			}
		}
	}
	slices.SortFunc(starts, canonicalCompare)
	var errs []error
	seen := map[string]bool{}
	for _, start := range starts {
		var owners, names []string
		looped := false
		for q := start; len(owners) <= maxLoopWalk; {
			z := s.Find(q)
			if z == nil {
				break
			}
			owner, target, ok := z.cnameAt(q)
			if !ok {
				break
			}
			if i := slices.Index(names, q); i >= 0 {
				looped = true
				cycle := slices.Clone(owners[i:])
				if key := strings.Join(sortedCopy(cycle), " "); !seen[key] {
					seen[key] = true
					path := append(slices.Clone(cycle), owners[i])
					errs = append(errs, &RecordError{Name: cycle[0], Type: dns.TypeCNAME, Names: cycle,
						Err: fmt.Errorf("%w: %s", ErrCNAMELoop, strings.Join(path, " → "))})
				}
				break
			}
			owners, names = append(owners, owner), append(names, q)
			q = target
		}
		if !looped && len(owners) > max && !pointed[start] {
			shown := owners
			if len(shown) > max+1 {
				shown = shown[:max+1]
			}
			errs = append(errs, &RecordError{Name: start, Type: dns.TypeCNAME, Names: shown,
				Err: fmt.Errorf("%w: %d cnames from %s, more than the %d followed: %s", ErrCNAMEChain, len(owners), start, max, strings.Join(shown, " → "))})
		}
	}
	return errs
}

// maxLoopWalk is how far a chain is followed to tell a loop from a long chain: beyond
// it, it is reported as too long (a loop longer than this is one too).
const maxLoopWalk = 1024

// cnameAt reports the CNAME that answers the lower-case, in-zone name q, as Lookup would
// find it: the owner (q, or the wildcard that synthesises it) and the target.
func (z *Zone) cnameAt(q string) (owner, target string, ok bool) {
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
			return "", "", false
		}
		n = n.wild
	}
	if n.cut != nil || n.cname == "" || n.service != NoService {
		return "", "", false
	}
	return n.name, n.cname, true
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
