package zones

import (
	"github.com/miekg/dns"
)

// Lookup answers qname/qtype from the zone's data (RFC 1034 section 4.3.2, with RFC 4592
// wildcards). qname is matched case-insensitively; it need not be fully qualified.
// Exact, non-wildcard hits do not allocate when qname is already lower case and fully
// qualified. Synthesised (wildcard) answers are fresh copies owned by qname as given.
// The slices of the Result are shared with the zone: copy before modifying.
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	if qname == "" || qname[len(qname)-1] != '.' {
		qname += "."
	}
	q := lower(qname)
	if !z.inZone(q) {
		return Result{Kind: NXDomain, Service: NoService}
	}
	var r Result
	z.lookup(q, qname, qtype, &r)
	return r
}

// LookupCanonical is Lookup for a name the caller has already put in the form the zone
// stores: lower case, fully qualified, and at or below the origin (Set.Find or
// Set.FindCanonical returned z for it). It skips the three steps Lookup repeats for
// any name, and writes the result to r: the fast path's whole lookup was a quarter of
// its time, a third of that copying the 112-byte Result from callee to caller.
func (z *Zone) LookupCanonical(q string, qtype uint16, r *Result) {
	z.lookup(q, q, qtype, r)
}

// lookup is Lookup after the name is canonical (q) and known to be in the zone; qname is
// the name as asked, the owner of synthesised answers. It sets every field of r.
func (z *Zone) lookup(q, qname string, qtype uint16, r *Result) {
	if n := z.nodes[q]; n != nil {
		if n.cut != nil {
			if n.cut == n && qtype == dns.TypeDS {
				// DS belongs to the parent side of the cut (RFC 4035 section 3.1.4.1):
				// answered here, authoritatively, or NODATA with this zone's SOA.
				*r = Result{Kind: NoData, Service: NoService}
				if ds := n.get(dns.TypeDS); ds != nil {
					r.Kind, r.Answer = Answer, ds
				}
				return
			}
			*r = referral(n.cut)
			return
		}
		z.answer(n, qtype, r)
		return
	}

	// The name does not exist: find its closest encloser (RFC 4592 section 3.3.1).
	ce := z.apex
	for off, end := dns.NextLabel(q, 0); !end; off, end = dns.NextLabel(q, off) {
		if n := z.nodes[q[off:]]; n != nil {
			ce = n
			break
		}
	}
	if ce.cut != nil {
		*r = referral(ce.cut)
		return
	}
	if ce.wild == nil {
		*r = Result{Kind: NXDomain, Service: NoService}
		return
	}
	z.answer(ce.wild, qtype, r)
	r.Wildcard = true
	switch r.Kind {
	case Answer, CNAME:
		// The additional data (of a wildcard MX, say) is the targets', not synthesised.
		r.Answer = synthesise(r.Answer, qname)
	}
}

// answer sets r to the result for an existing, authoritative node.
func (z *Zone) answer(n *node, qtype uint16, r *Result) {
	*r = Result{Service: NoService}
	switch {
	case n.service != NoService:
		r.Kind, r.Service = Service, n.service
	case n.cname != "":
		rrs := n.rrsets[0].rrs
		r.Kind, r.Answer = CNAME, rrs[:1:1]
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			r.Kind = Answer
		} else {
			r.Target = n.cname
		}
	case qtype == dns.TypeANY:
		if len(n.all) == 0 {
			r.Kind = NoData
		} else {
			r.Kind, r.Answer = Answer, n.all[:len(n.all):len(n.all)]
		}
	default:
		rrs := n.get(qtype)
		if rrs == nil {
			r.Kind = NoData
			return
		}
		r.Kind, r.Answer = Answer, rrs
		switch {
		case qtype == dns.TypeNS && n == z.apex && len(n.glue) > 0:
			r.Extra = n.glue[:len(n.glue):len(n.glue)]
		case (qtype == dns.TypeMX || qtype == dns.TypeSRV) && z.extra != nil:
			if x := z.extra[extraKey{n, qtype}]; len(x) > 0 {
				r.Extra = x[:len(x):len(x)]
			}
		}
	}
}

// referral is the delegation answer for a name at or below the cut.
func referral(cut *node) Result {
	r := Result{Kind: Referral, Ns: cut.get(dns.TypeNS), Service: NoService}
	if len(cut.glue) > 0 {
		r.Extra = cut.glue[:len(cut.glue):len(cut.glue)]
	}
	return r
}

// synthesise copies the wildcard's RRs with the owner set to qname (RFC 4592 section
// 3.3.1: the synthesised RRs are owned by the query name, not by "*").
func synthesise(rrs []dns.RR, qname string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = qname
		out[i] = c
	}
	return out
}

// Types lists the RR types at name, for the type bitmap of a denial (RFC 9824): its
// RRsets, and A and AAAA at a service's name, whichever families its members have now
// (a denial leaves out the type it denies, which is all a validator checks). A name that
// a wildcard covers has the wildcard's types: its answers are synthesised from them.
// exists is false when no node has the name and no wildcard covers it; an empty
// non-terminal exists with no types.
func (z *Zone) Types(name string) (types []uint16, exists bool) {
	q := dns.CanonicalName(name)
	n := z.nodes[q]
	if n == nil {
		ce := z.apex
		for off, end := dns.NextLabel(q, 0); !end; off, end = dns.NextLabel(q, off) {
			if m := z.nodes[q[off:]]; m != nil {
				ce = m
				break
			}
		}
		if ce.cut != nil || ce.wild == nil {
			return nil, false
		}
		n = ce.wild
	}
	for i := range n.rrsets {
		types = append(types, n.rrsets[i].typ)
	}
	if n.service != NoService {
		types = append(types, dns.TypeA, dns.TypeAAAA)
	}
	return types, true
}
