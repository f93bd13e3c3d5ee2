package dnsserver

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/dnssec"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/zones"
)

// Online signing (RFC 4035 Section 3.1), for a query with DO=1 whose answer comes from a
// zone with a dnssec block (policy.Snapshot.Signers). DO=0 queries are answered as before,
// unsigned. The fast path signs static A and AAAA answers and address services, appending
// the RRSIGs' wire form from the signature cache (appendSigs); everything else, and the
// apex's DNSKEY, CDS and CDNSKEY (which are not zone data), the general path answers
// (sign).
//
// - Every RRset of the answer and authority sections owned by a signed zone gets its
//   RRSIGs, the zone's keys' (dnssec.Signer: the KSK for the key RRsets, the ZSK for
//   the rest), from the signature cache (Config.SignatureCache) when the same RRset was
//   signed within the hour, else made for this reply and cached. A referral's NS set and glue are not signed (they are
//   the child's), and the additional section is left unsigned (RFC 4035 allows it; the
//   space goes to the answer).
// - Denial is compact (RFC 9824): a name that does not exist is answered NOERROR with no
//   data, and an NSEC at the name whose next name is the name right after it and whose
//   types are NXNAME, RRSIG and NSEC; a type absent at a name that exists, by the NSEC
//   of the name's other types. Each NSEC covers its own name only, so it proves nothing
//   of any other, and is made at query time; the zone is never walked.
// - A referral proves that the child is unsigned by the NSEC at the cut (NS, RRSIG,
//   NSEC), or passes on the DS the zone holds, signed.
// - A wildcard's answer is signed as the name asked, as if that name held the records
//   (the RRSIG's label count is the name's): a validator takes it as a plain answer and
//   needs no proof that the name does not exist, which an online signer would otherwise
//   have to make at every query. A type missing at such a name is denied with the
//   wildcard's other types.

// apexKeys is the DNSKEY, CDS or CDNSKEY RRset asked for at the apex of a signed zone,
// nil for any other question.
func apexKeys(snap *policy.Snapshot, z *zones.Zone, name string, qtype uint16) []dns.RR {
	if len(snap.Signers) == 0 || !keyType(qtype) {
		return nil
	}
	sg := snap.Signers[z.Origin()]
	if sg == nil || !strings.EqualFold(name, z.Origin()) {
		return nil
	}
	var rrs []dns.RR
	switch qtype {
	case dns.TypeDNSKEY:
		rrs = sg.DNSKEYs()
	case dns.TypeCDS:
		rrs = sg.CDSs()
	default:
		rrs = sg.CDNSKEYs()
	}
	for _, rr := range rrs {
		rr.Header().Name = name // as asked, case included
	}
	return rrs
}

// SignatureCache is the server's cache of signatures (nil: none).
func (s *Server) SignatureCache() *dnssec.Cache { return s.sigs }

// sign makes the reply resolve put in sc.resp a signed one, and returns its rcode (an
// NXDOMAIN of a signed zone becomes NOERROR: compact denial).
func (s *Server) sign(sc *scratch, st *state, q *query, rcode int) int {
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		return rcode
	}
	snap := st.snap
	r := &sc.resp
	now := time.Now()
	if z := sc.negZone; z != nil {
		if sg := snap.Signers[z.Origin()]; sg != nil {
			types, exists := z.Types(sc.negName)
			if rcode == dns.RcodeNameError || !exists {
				types, rcode = []uint16{dns.TypeNXNAME}, dns.RcodeSuccess
			} else {
				types = without(types, q.qtype)
				if strings.EqualFold(sc.negName, z.Origin()) {
					types = append(types, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY)
				}
			}
			r.Ns = append(r.Ns, dnssec.Denial(sc.negName, types, z.NegativeTTL()))
		}
	}
	if !r.Authoritative && len(r.Ns) > 0 && r.Ns[0].Header().Rrtype == dns.TypeNS {
		r.Ns = s.referralProof(snap, r.Ns, now)
	}
	r.Answer = s.signSection(snap, r.Answer, now)
	r.Ns = s.signSection(snap, r.Ns, now)
	return rcode
}

// referralProof adds to a referral's authority section (the child's NS set) the DS the
// zone holds at the cut, or the NSEC that proves it holds none: the child is then known
// to be unsigned (RFC 4035 Section 3.1.4).
func (s *Server) referralProof(snap *policy.Snapshot, ns []dns.RR, now time.Time) []dns.RR {
	cut := ns[0].Header().Name
	z := snap.Zones.Find(cut)
	if z == nil || snap.Signers[z.Origin()] == nil {
		return ns
	}
	if res := z.Lookup(cut, dns.TypeDS); res.Kind == zones.Answer && len(res.Answer) > 0 {
		return append(ns, res.Answer...)
	}
	return append(ns, dnssec.Denial(cut, []uint16{dns.TypeNS}, z.NegativeTTL()))
}

// signSection returns rrs with the RRSIGs of each of its RRsets owned by a signed zone
// after it. A referral's NS set is the child's, not ours to sign.
func (s *Server) signSection(snap *policy.Snapshot, rrs []dns.RR, now time.Time) []dns.RR {
	if len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, 0, 2*len(rrs))
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && strings.EqualFold(rrs[j].Header().Name, h.Name) {
			j++
		}
		set := rrs[i:j]
		out = append(out, set...)
		if sg := signerOf(snap, h.Name, h.Rrtype); sg != nil {
			sigs, err := s.sigs.Sign(sg, set, now)
			if err != nil {
				s.log.Error("signing failed", "name", h.Name, "type", dns.TypeToString[h.Rrtype], "err", err)
			}
			out = append(out, sigs...)
		}
		i = j
	}
	return out
}

// signerOf is the Signer of the zone authoritative for an RRset of name and type, nil
// when that zone is unsigned or the RRset is a delegation's (NS below the apex, its
// glue), which the parent does not sign.
func signerOf(snap *policy.Snapshot, name string, typ uint16) *dnssec.Signer {
	z := snap.Zones.Find(name)
	if z == nil {
		return nil
	}
	sg := snap.Signers[z.Origin()]
	if sg == nil {
		return nil
	}
	if typ == dns.TypeNS && !strings.EqualFold(name, z.Origin()) {
		return nil
	}
	if typ != dns.TypeDS && typ != dns.TypeNSEC {
		if res := z.Lookup(name, dns.TypeNS); res.Kind == zones.Referral {
			return nil // at or below a cut: the child's data (glue)
		}
	}
	return sg
}

// without is types less t.
func without(types []uint16, t uint16) []uint16 {
	out := types[:0:0]
	for _, x := range types {
		if x != t {
			out = append(out, x)
		}
	}
	return out
}

// presignEvery is how often the presigner signs the single answers again: within each
// signature window (an hour), for that window and the next, so that the hour's turn never
// finds them unsigned.
const presignEvery = 30 * time.Minute

// presignDelay lets a burst of snapshots (API writes) be signed for once.
const presignDelay = time.Second

// presignLoop signs ahead, into the signature cache, the one-record answers of every
// service of a signed zone that answers one member (answers = 1, the default): each
// member's A, AAAA or CNAME at the service's name, for the current window and the next.
// A single-answer service then never signs at query time; answers of several members
// are signed on demand. It runs for the server's life, when a snapshot with signed zones
// is installed and every presignEvery.
func (s *Server) presignLoop(ctx context.Context) {
	t := time.NewTicker(presignEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done: // Shutdown
			return
		case <-s.presignKick:
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-time.After(presignDelay):
			}
		case <-t.C:
		}
		if st := s.state.Load(); st != nil && st.snap != nil && len(st.snap.Signers) > 0 {
			s.presign(ctx, st.snap, time.Now())
		}
	}
}

// presign is one pass of presignLoop over snap.
func (s *Server) presign(ctx context.Context, snap *policy.Snapshot, now time.Time) {
	for _, svc := range snap.Services {
		if ctx.Err() != nil || s.isClosed() {
			return
		}
		if svc.Answers != 1 {
			continue
		}
		sg := signerOf(snap, svc.Name, dns.TypeA)
		if sg == nil {
			continue
		}
		for _, p := range svc.Pools {
			for _, m := range p.Members {
				rr := memberRR(svc, m)
				if rr == nil {
					continue
				}
				for _, at := range []time.Time{now, now.Add(time.Hour)} {
					if _, err := s.sigs.Sign(sg, []dns.RR{rr}, at); err != nil {
						s.log.Error("presigning failed", "name", svc.Name, "err", err)
						return
					}
				}
			}
		}
	}
}

// memberRR is the record answering member m of svc alone, as the general path makes it
// (answer.go): nil for a member of no kind it answers.
func memberRR(svc *policy.Service, m *policy.Member) dns.RR {
	hdr := dns.RR_Header{Name: svc.Name, Class: dns.ClassINET, Ttl: svc.TTL}
	switch a := m.Addr.Unmap(); {
	case m.Host != "":
		hdr.Rrtype = dns.TypeCNAME
		return &dns.CNAME{Hdr: hdr, Target: m.Host}
	case a.Is4():
		b := a.As4()
		return addrRR(svc.Name, dns.TypeA, svc.TTL, b[:])
	case a.Is6():
		b := a.As16()
		return addrRR(svc.Name, dns.TypeAAAA, svc.TTL, b[:])
	}
	return nil
}

// addrRR is an A (qtype A) or AAAA record of owner with a copy of ip.
func addrRR(owner string, qtype uint16, ttl uint32, ip []byte) dns.RR {
	hdr := dns.RR_Header{Name: owner, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	if qtype == dns.TypeA {
		return &dns.A{Hdr: hdr, A: net.IP(append([]byte(nil), ip...))}
	}
	return &dns.AAAA{Hdr: hdr, AAAA: net.IP(append([]byte(nil), ip...))}
}

// keyType reports whether qtype is one of the apex's key RRsets, answered from the keys.
func keyType(qtype uint16) bool {
	return qtype == dns.TypeDNSKEY || qtype == dns.TypeCDS || qtype == dns.TypeCDNSKEY
}

// fastSigner is the Signer of z for the fast path's answer to q: nil for a zone that is
// not signed, or a DO=0 query (unsigned, as before). decline leaves q to the general path:
// the apex's key RRsets, and signed answers without a signature cache.
func (s *Server) fastSigner(st *state, z *zones.Zone, q *query) (sg *dnssec.Signer, decline bool) {
	if len(st.snap.Signers) == 0 {
		return nil, false
	}
	sg = st.snap.Signers[z.Origin()]
	switch {
	case sg == nil:
		return nil, false
	case keyType(q.qtype):
		return nil, true
	case !q.do:
		return nil, false
	case s.sigs == nil:
		return nil, true
	}
	return sg, false
}

// fastSignable reports whether the fast path signs the answer of res: a static A or AAAA
// RRset, or an address service with members of the family asked (so that its selection,
// which cannot be undone, gives records to sign). Negative answers and everything else
// are signed by the general path.
func fastSignable(st *state, res *zones.Result, q *query) bool {
	switch res.Kind {
	case zones.Answer:
		return !res.Wildcard && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA)
	case zones.Service:
		i := int(res.Service)
		return (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA) && !res.Wildcard &&
			i >= 0 && i < len(st.snap.Services) && st.snap.Services[i] != nil && st.snap.Services[i].HasFamily(q.qtype)
	}
	return false
}

// sigRoom bounds the bytes of an answer's RRSIGs by sg: per key, the owner pointer, the
// fixed fields, the signer's name and a signature of at most 64 bytes (both algorithms').
func sigRoom(sg *dnssec.Signer) int {
	return len(sg.Keys()) * (2 + 10 + 18 + len(sg.Zone()) + 1 + 64)
}

// appendSigs appends to the fast path's reply the RRSIGs of its answer, the records from
// r.msg[from:] (one RRset: the question's name and type): from the signature cache, with
// no allocation, or signed now and cached. The owner is written as a pointer to the
// question, which the answer's owner is.
func (s *Server) appendSigs(sg *dnssec.Signer, q *query, lname string, from int, r *fastReply) {
	now := time.Now()
	kb := dnssec.GetKeyBuilder()
	defer dnssec.PutKeyBuilder(kb)
	var ttl uint32
	first := true
	for off := from; off < len(r.msg); {
		data, t, next, ok := rdataAt(r.msg, off)
		if !ok {
			return // not reached: the fast path wrote these records
		}
		if first {
			kb.Begin(sg, now, lname, q.qtype, dns.ClassINET, t)
			ttl, first = t, false
		}
		kb.Add(data)
		off = next
	}
	if first {
		return
	}
	wire, n, err := s.sigs.Wire(sg, kb.Sum(), func() []dns.RR { return rrsetAt(r.msg, from, lname, q.qtype, ttl) }, now)
	if err != nil {
		s.log.Error("signing failed", "name", lname, "type", dns.TypeToString[q.qtype], "err", err)
		return
	}
	for i := 0; i < n; i++ {
		l := 10 + int(binary.BigEndian.Uint16(wire[8:10]))
		r.msg = append(append(r.msg, 0xC0, 0x0C), wire[:l]...)
		wire = wire[l:]
	}
	r.an += n
}

// rdataAt reads the record at msg[off:] that the fast path wrote (its owner a pointer or
// labels): its data, TTL and the offset after it.
func rdataAt(msg []byte, off int) (data []byte, ttl uint32, next int, ok bool) {
	for off < len(msg) { // the owner
		c := msg[off]
		if c&0xC0 == 0xC0 {
			off += 2
			break
		}
		off += 1 + int(c)
		if c == 0 {
			break
		}
	}
	if off+10 > len(msg) {
		return nil, 0, 0, false
	}
	ttl = binary.BigEndian.Uint32(msg[off+4:])
	l := int(binary.BigEndian.Uint16(msg[off+8:]))
	if off+10+l > len(msg) {
		return nil, 0, 0, false
	}
	return msg[off+10 : off+10+l], ttl, off + 10 + l, true
}

// rrsetAt is the answer of msg[from:] as records to sign (a cache miss: it allocates).
// The owner is copied: the fast path's names alias its scratch, and the records and their
// signatures outlive it in the cache.
func rrsetAt(msg []byte, from int, owner string, qtype uint16, ttl uint32) []dns.RR {
	owner = strings.Clone(owner)
	var rrs []dns.RR
	for off := from; off < len(msg); {
		data, _, next, ok := rdataAt(msg, off)
		if !ok {
			break
		}
		rrs = append(rrs, addrRR(owner, qtype, ttl, data))
		off = next
	}
	return rrs
}
