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

	if n := z.nodes[q]; n != nil {
		if n.cut != nil {
			if n.cut == n && qtype == dns.TypeDS {
				// DS belongs to the parent side of the cut (RFC 4035 section 3.1.4.1).
				// Without DNSSEC there is none: NODATA, with this zone's SOA.
				return Result{Kind: NoData, Service: NoService}
			}
			return referral(n.cut)
		}
		return z.answer(n, qtype)
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
		return referral(ce.cut)
	}
	if ce.wild == nil {
		return Result{Kind: NXDomain, Service: NoService}
	}
	r := z.answer(ce.wild, qtype)
	r.Wildcard = true
	switch r.Kind {
	case Answer, CNAME:
		r.Answer = synthesise(r.Answer, qname)
		r.Extra = nil
	}
	return r
}

// answer is the result for an existing, authoritative node.
func (z *Zone) answer(n *node, qtype uint16) Result {
	if n.service != NoService {
		return Result{Kind: Service, Service: n.service}
	}
	if n.cname != "" {
		rrs := n.rrsets[0].rrs
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			return Result{Kind: Answer, Answer: rrs[:1:1], Service: NoService}
		}
		return Result{Kind: CNAME, Answer: rrs[:1:1], Target: n.cname, Service: NoService}
	}
	if qtype == dns.TypeANY {
		if len(n.all) == 0 {
			return Result{Kind: NoData, Service: NoService}
		}
		return Result{Kind: Answer, Answer: n.all[:len(n.all):len(n.all)], Service: NoService}
	}
	rrs := n.get(qtype)
	if rrs == nil {
		return Result{Kind: NoData, Service: NoService}
	}
	r := Result{Kind: Answer, Answer: rrs, Service: NoService}
	if qtype == dns.TypeNS && n == z.apex && len(n.glue) > 0 {
		r.Extra = n.glue[:len(n.glue):len(n.glue)]
	}
	return r
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
