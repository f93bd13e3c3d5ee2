package dnsserver

import (
	"net"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/zones"
)

// maxCNAMEChain bounds how many CNAMEs are followed inside our zones for one query. Eight
// is what BIND and CoreDNS settle on; it stops loops (a → b → a) and chains that long are
// a configuration error anyway. The policy refuses longer chains and loops at load,
// through host-name services too (zones.Set.CheckCNAMEs), so the bound is a safety net.
const maxCNAMEChain = zones.MaxCNAMEChain

// anyOrder is the order in which a static name's RRsets are tried for a QTYPE=ANY query:
// RFC 8482 Section 4.1 lets a server answer one RRset of its choice, and the address
// records are the ones a client asking ANY most likely wants.
var anyOrder = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypeCAA,
	dns.TypeHTTPS, dns.TypeSVCB, dns.TypeNS, dns.TypeSOA, dns.TypePTR, dns.TypeNAPTR,
}

// resolve answers q from the snapshot into sc.resp (the sections and the AA bit) and
// returns the rcode and the ECS scope the answer depended on. It follows RFC 1034
// Section 4.3.2: find the zone, then the name in it; referral at a cut; CNAMEs chased
// while they stay in our zones; negative answers with the SOA (RFC 2308 Section 3).
func (s *Server) resolve(sc *scratch, st *state, q *query, client policy.Client) (rcode, scope int) {
	r := &sc.resp
	r.Answer, r.Ns, r.Extra = sc.answer[:0], sc.ns[:0], sc.extra[:0]
	defer func() {
		// Keep grown slices for the next query.
		sc.answer, sc.ns, sc.extra = r.Answer[:0], r.Ns[:0], r.Extra[:0]
	}()
	snap := st.snap
	name, qtype := q.qname, q.qtype
	for step := 0; step <= maxCNAMEChain; step++ {
		z := snap.Zones.Find(name)
		if z == nil {
			if step == 0 {
				// Not ours: REFUSED without AA (RFC 1035 Section 4.1.1 "refused" for
				// policy reasons; an authoritative-only server has nothing to say).
				return dns.RcodeRefused, 0
			}
			// The chain leaves our zones; the resolver continues from the last CNAME
			// (RFC 1034 Section 4.3.2 step 3a).
			return dns.RcodeSuccess, scope
		}
		if step == 0 {
			r.Authoritative = true
			sc.zone = st.zoneIndex(z)
			if keys := apexKeys(snap, z, name, qtype); keys != nil {
				r.Answer = append(r.Answer, keys...)
				return dns.RcodeSuccess, 0
			}
		}
		lt := qtype
		if qtype == dns.TypeANY {
			lt = dns.TypeA
		}
		res := z.Lookup(name, lt)
		switch res.Kind {
		case zones.Answer:
			r.Answer = append(r.Answer, res.Answer...)
			// The in-zone addresses of NS, MX and SRV targets (RFC 1034 Section 4.3.2
			// step 6): the first thing dropped when the reply is too big (pack).
			r.Extra = append(r.Extra, res.Extra...)
			sc.extraOptional = len(res.Extra) > 0
			q.wildcard = res.Wildcard
			return dns.RcodeSuccess, scope
		case zones.NoData:
			if qtype == dns.TypeANY && s.appendAny(sc, z, name) {
				return dns.RcodeSuccess, scope
			}
			s.negative(sc, z, name)
			return dns.RcodeSuccess, scope
		case zones.NXDomain:
			if svc, m := snap.Target(z, dns.CanonicalName(name)); m != nil {
				// An SRV target of a service: its member's address (srv.go in policy).
				if s.targetRR(sc, svc, m, name, qtype) == 0 {
					s.negative(sc, z, name)
				}
				return dns.RcodeSuccess, scope
			}
			// RFC 6604 Section 3: the rcode of a chain is that of its last name.
			s.negative(sc, z, name)
			return dns.RcodeNameError, scope
		case zones.Referral:
			// At or below a cut we are not authoritative (RFC 1034 Section 4.3.2 step
			// 3b): AA=0 when the query name itself is delegated; after a CNAME the
			// CNAMEs stay authoritative and the referral rides in authority.
			if step == 0 {
				r.Authoritative = false
			}
			r.Ns = append(r.Ns, res.Ns...)
			r.Extra = append(r.Extra, res.Extra...)
			return dns.RcodeSuccess, scope
		case zones.CNAME:
			r.Answer = append(r.Answer, res.Answer...)
			if qtype == dns.TypeCNAME {
				return dns.RcodeSuccess, scope
			}
			name = res.Target
		case zones.Service:
			if int(res.Service) < 0 || int(res.Service) >= len(snap.Services) {
				// A zone referring to a service the snapshot lacks is a compiler bug;
				// SERVFAIL rather than a wrong answer.
				return dns.RcodeServerFailure, 0
			}
			next, rc, sel := s.service(sc, st, z, snap.Services[res.Service], name, qtype, client)
			scope = max(scope, sel)
			if next == "" {
				return rc, scope
			}
			name = next
		default:
			return dns.RcodeServerFailure, 0
		}
	}
	// Chain too long (or a loop): stop here with what we have, as for a chain leaving
	// our zones; the resolver decides.
	return dns.RcodeSuccess, scope
}

// service answers a load-balanced name. It returns the next name to chase (a CNAME to a
// host-name member), or "" with the rcode when the answer is complete, and the ECS scope
// the selection depended on.
func (s *Server) service(sc *scratch, st *state, z *zones.Zone, svc *policy.Service, name string, qtype uint16, client policy.Client) (next string, rcode, scope int) {
	r := &sc.resp
	st2 := qtype
	if qtype == dns.TypeANY {
		// RFC 8482: one RRset; the IPv4 selection (the IPv6 one when there is no IPv4).
		st2 = dns.TypeA
	}
	locate(st, svc, &client)
	if qtype == dns.TypeSRV && svc.HasSRV() {
		return s.srvAnswer(sc, st, z, svc, name, &client)
	}
	sel := svc.Select(client, st2, st.health, sc.members[:0])
	if qtype == dns.TypeANY && !sel.CNAME && !sel.ServFail && len(sel.Members) == 0 {
		st2 = dns.TypeAAAA
		sel = svc.Select(client, st2, st.health, sel.Members[:0])
	}
	sc.members = sel.Members[:0]
	scope = sel.Scope
	switch {
	case sel.ServFail:
		return "", dns.RcodeServerFailure, 0
	case sel.CNAME && len(sel.Members) > 0:
		sc.cnames = append(sc.cnames, dns.CNAME{
			Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: svc.TTL},
			Target: sel.Members[0].Host,
		})
		r.Answer = append(r.Answer, &sc.cnames[len(sc.cnames)-1])
		s.metrics.answered(sc.shard, st.answers, svc, sel.Members[0])
		if qtype == dns.TypeCNAME {
			return "", dns.RcodeSuccess, scope
		}
		return sel.Members[0].Host, dns.RcodeSuccess, scope
	case st2 == dns.TypeA || st2 == dns.TypeAAAA:
		if s.memberRRs(sc, st, svc, name, st2, sel.Members) == 0 {
			s.negative(sc, z, name) // no member of this family: NODATA
		}
		return "", dns.RcodeSuccess, scope
	default:
		// Other types at an address service: the name exists, the type does not.
		s.negative(sc, z, name)
		return "", dns.RcodeSuccess, scope
	}
}

// memberRRs turns selected members into A or AAAA records owned by name, with the service
// TTL, and appends them to the answer; it returns how many it added. The records come
// from slabs in the scratch, so that no allocation is made once the slabs have grown.
func (s *Server) memberRRs(sc *scratch, st *state, svc *policy.Service, name string, qtype uint16, members []*policy.Member) int {
	ttl := svc.TTL
	r := &sc.resp
	n := 0
	for _, m := range members {
		a := m.Addr.Unmap()
		switch {
		case qtype == dns.TypeA && a.Is4():
			b := a.As4()
			off := len(sc.ipbuf)
			sc.ipbuf = append(sc.ipbuf, b[:]...)
			sc.as = append(sc.as, dns.A{
				Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
				A:   net.IP(sc.ipbuf[off : off+4 : off+4]),
			})
			r.Answer = append(r.Answer, &sc.as[len(sc.as)-1])
			s.metrics.answered(sc.shard, st.answers, svc, m)
			n++
		case qtype == dns.TypeAAAA && a.Is6():
			b := a.As16()
			off := len(sc.ipbuf)
			sc.ipbuf = append(sc.ipbuf, b[:]...)
			sc.aaaas = append(sc.aaaas, dns.AAAA{
				Hdr:  dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl},
				AAAA: net.IP(sc.ipbuf[off : off+16 : off+16]),
			})
			r.Answer = append(r.Answer, &sc.aaaas[len(sc.aaaas)-1])
			s.metrics.answered(sc.shard, st.answers, svc, m)
			n++
		}
	}
	return n
}

// srvAnswer answers an SRV query at a service with ports (RFC 2782): one SRV record per
// member SelectSRV chose, and the A or AAAA record of each address member's target in the
// additional section, which pack drops rather than truncate the answer. A host-name
// member's target is its host, whose addresses are not ours to give.
func (s *Server) srvAnswer(sc *scratch, st *state, z *zones.Zone, svc *policy.Service, name string, client *policy.Client) (next string, rcode, scope int) {
	sel := svc.SelectSRV(client, st.health, sc.members[:0], sc.srvSel[:0])
	sc.members, sc.srvSel = sc.members[:0], sel.Records[:0]
	if sel.ServFail {
		return "", dns.RcodeServerFailure, 0
	}
	r := &sc.resp
	for _, rec := range sel.Records {
		weight, port, target, ok := svc.SRV(rec.Member)
		if !ok {
			continue
		}
		sc.srvs = append(sc.srvs, dns.SRV{
			Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: svc.TTL},
			Priority: rec.Priority, Weight: weight, Port: port, Target: target,
		})
		s.metrics.answered(sc.shard, st.answers, svc, rec.Member)
	}
	if len(sc.srvs) == 0 {
		s.negative(sc, z, name)
		return "", dns.RcodeSuccess, sel.Scope
	}
	// The slab is complete: pointers into it stay valid.
	for i := range sc.srvs {
		r.Answer = append(r.Answer, &sc.srvs[i])
	}
	for i, rec := range sel.Records[:len(sc.srvs)] {
		if m := rec.Member; m.Host == "" {
			s.addrRR(sc, &r.Extra, m, sc.srvs[i].Target, svc.TTL)
		}
	}
	sc.extraOptional = true
	return "", dns.RcodeSuccess, sel.Scope
}

// targetRR answers a query for an SRV target name: the member's A or AAAA record, when
// qtype asks for its family (or ANY), owned by name as asked, with the service TTL. It
// returns how many records it added (0: NODATA).
func (s *Server) targetRR(sc *scratch, svc *policy.Service, m *policy.Member, name string, qtype uint16) int {
	a := m.Addr.Unmap()
	if !a.IsValid() || !(qtype == dns.TypeANY || qtype == dns.TypeA && a.Is4() || qtype == dns.TypeAAAA && a.Is6()) {
		return 0
	}
	s.addrRR(sc, &sc.resp.Answer, m, name, svc.TTL)
	return 1
}

// addrRR appends the member's A or AAAA record, owned by name, to the section sec, from
// the scratch slabs.
func (s *Server) addrRR(sc *scratch, sec *[]dns.RR, m *policy.Member, name string, ttl uint32) {
	a := m.Addr.Unmap()
	off := len(sc.ipbuf)
	if a.Is4() {
		b := a.As4()
		sc.ipbuf = append(sc.ipbuf, b[:]...)
		sc.as = append(sc.as, dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   net.IP(sc.ipbuf[off : off+4 : off+4]),
		})
		*sec = append(*sec, &sc.as[len(sc.as)-1])
		return
	}
	b := a.As16()
	sc.ipbuf = append(sc.ipbuf, b[:]...)
	sc.aaaas = append(sc.aaaas, dns.AAAA{
		Hdr:  dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl},
		AAAA: net.IP(sc.ipbuf[off : off+16 : off+16]),
	})
	*sec = append(*sec, &sc.aaaas[len(sc.aaaas)-1])
}

// appendAny answers QTYPE=ANY at a static name with the first RRset present in anyOrder
// (RFC 8482 Section 4.1), never the whole node. It reports whether it found one.
func (s *Server) appendAny(sc *scratch, z *zones.Zone, name string) bool {
	for _, t := range anyOrder[1:] { // A was tried by the caller
		res := z.Lookup(name, t)
		if res.Kind == zones.Answer && len(res.Answer) > 0 {
			sc.resp.Answer = append(sc.resp.Answer, res.Answer...)
			return true
		}
	}
	return false
}

// negative puts the zone's SOA in authority for NXDOMAIN and NODATA, with the negative
// TTL as its TTL (RFC 2308 Section 3: the SOA's TTL is the minimum of its own TTL and its
// MINIMUM field, so that the negative answer is not cached longer than allowed).
func (s *Server) negative(sc *scratch, z *zones.Zone, name string) {
	sc.negZone, sc.negName = z, name // what a signed reply denies (sign.go)
	soa := z.SOA()
	if soa == nil {
		return
	}
	sc.soa = *soa
	sc.soa.Hdr.Ttl = z.NegativeTTL()
	sc.resp.Ns = append(sc.resp.Ns, &sc.soa)
}
