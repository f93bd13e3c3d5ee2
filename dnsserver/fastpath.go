package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/zones"
)

// The fast path answers the common query without miekg/dns: from what parse read, it looks
// the name up without allocating and writes the reply straight into the output buffer
// from wire data compiled when the snapshot was installed. It takes a query only when it
// can produce exactly the bytes the general path would (see doc.go, "Fast path");
// anything else returns ok = false before any side effect, and handle runs the general
// path on the same parse.

// fastData is the wire data compiled for one snapshot, swapped with it in state.
type fastData struct {
	// members holds, by Member.Index, each address member's A or AAAA record as packed
	// in an answer owned by the question name: 0xC00C, TYPE, CLASS IN, TTL (0, patched
	// with the service's TTL per query), RDLENGTH, RDATA. n is 0 for host-name members.
	members []memberWire
	// host marks, by Service.Ref, the services answered with a CNAME (host-name members):
	// they go to the general path, which chases the target.
	host []bool
	// soas holds each zone's negative SOA template (negsoa.go), in the order of
	// Set.Zones: state.zonePos finds a zone's.
	soas []negSOA
	// srv holds, by Service.Ref, what the fast path needs to answer SRV at the service
	// (fastsrv.go); nil when no service of the snapshot answers SRV.
	srv []srvService
	// wire holds the names srv and members point into: each SRV service's name and
	// each of its members' first two target labels, in wire form.
	wire []byte
}

// memberWire is one member's pre-packed answer record.
type memberWire struct {
	rr    [2 + 10 + 16]byte
	n     uint8
	qtype uint16
	// labn bytes at lab in fastData.wire are the member's name and pool as the first two
	// labels of its SRV target, lower case ("\x02a1\x01a"); labn is 0 until a service
	// that answers SRV with the member has compiled them.
	lab  uint32
	labn uint8
}

// ttlOffset is where the TTL sits in a memberWire record (after the 2-byte pointer,
// TYPE and CLASS).
const ttlOffset = 6

// compileFast builds the fast path's wire data for snap. prev is the state being
// replaced: when it serves the same snapshot (a health change), its data is reused.
func compileFast(snap *policy.Snapshot, prev *state) *fastData {
	if snap == nil {
		return nil
	}
	if prev != nil && prev.snap == snap && prev.fast != nil {
		return prev.fast
	}
	fd := &fastData{members: make([]memberWire, len(snap.Members)), host: make([]bool, len(snap.Services))}
	for i, m := range snap.Members {
		if m == nil || m.Index != i || !m.Addr.IsValid() {
			continue
		}
		w := &fd.members[i]
		b := w.rr[:0]
		b = append(b, 0xC0, 0x0C)
		a := m.Addr.Unmap()
		if a.Is4() {
			w.qtype = dns.TypeA
			v := a.As4()
			b = appendUint16(b, dns.TypeA)
			b = appendUint16(b, dns.ClassINET)
			b = appendUint32(b, 0)
			b = appendUint16(b, 4)
			b = append(b, v[:]...)
		} else {
			w.qtype = dns.TypeAAAA
			v := a.As16()
			b = appendUint16(b, dns.TypeAAAA)
			b = appendUint16(b, dns.ClassINET)
			b = appendUint32(b, 0)
			b = appendUint16(b, 16)
			b = append(b, v[:]...)
		}
		w.n = uint8(len(b))
	}
	if snap.Zones != nil {
		zs := snap.Zones.Zones()
		fd.soas = make([]negSOA, len(zs))
		for i, z := range zs {
			fd.soas[i] = compileNegSOA(z)
		}
	}
	for i, svc := range snap.Services {
		if svc == nil {
			continue
		}
		for _, p := range svc.Pools {
			for _, m := range p.Members {
				if m.Host != "" {
					fd.host[i] = true
				}
			}
		}
		if fb := svc.Fallback; fb != nil {
			for _, m := range fb.Members {
				if m.Host != "" {
					fd.host[i] = true
				}
			}
		}
		if !fd.host[i] && svc.HasSRV() {
			if fd.srv == nil {
				fd.srv = make([]srvService, len(snap.Services))
			}
			fd.srv[i] = fd.compileSRV(svc)
		}
	}
	return fd
}

// fastScratch is handle's pooled working memory: the question name, which parse writes
// and both paths read, and the fast path's selection buffer and compressor.
type fastScratch struct {
	name     nameBuf
	members  []*policy.Member
	srv      []policy.SRVRecord // SelectSRV's records
	selected bool               // members and srv hold a selection, to be cleared by release
	comp     compressor
}

// fastPool holds fastScratch values for UDP workers and TCP connections alike; sync.Pool's
// per-P cache makes Get/Put a few nanoseconds without locks. A scratch comes out of it
// clean: new, or emptied by release before Put.
var fastPool = sync.Pool{New: func() any {
	return &fastScratch{members: make([]*policy.Member, 0, 16), srv: make([]policy.SRVRecord, 0, 16)}
}}

// release drops what the scratch points at (aliases of the scratch buffers in the
// compressor, the members of the last selection), so that the pool holds no references.
func (fs *fastScratch) release() {
	fs.comp.reset()
	if fs.selected {
		clear(fs.members[:cap(fs.members)])
		clear(fs.srv[:cap(fs.srv)])
		fs.selected = false
	}
}

// fastReply is a fast-path reply being written: the message so far (header and question
// copied from the query, then records) and what finishFast puts in the header and OPT.
type fastReply struct {
	msg    []byte
	rcode  int
	an, ns int  // records in answer and authority
	ar     int  // records in additional, the OPT left out
	scope  int  // the ECS scope the answer depended on
	tc     bool // truncated: finishFast sends the header and question only, TC=1
	// reserve is room kept for the answer's signatures (sign.go) when the size is
	// bounded before a selection.
	reserve int
}

// fastPath answers q, parsed from req, when it is the common query; ok = false leaves it
// to the general path, with nothing changed (no selection made, no metric recorded).
// There is no defer here nor below: with this many returns the compiler cannot open-code
// them, and the runtime's defer records cost more than a static answer.
func (s *Server) fastPath(st *state, q *query, fs *fastScratch, req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) ([]byte, bool) {
	if !fastQuery(st, q, &fs.name, len(req)) {
		return nil, false
	}
	// The strings alias the scratch buffers: they live until fastPool.Put and are never
	// stored beyond this call.
	lname := unsafe.String(&fs.name.lower[0], fs.name.n)
	z := st.snap.Zones.FindCanonical(lname)
	if z == nil {
		return nil, false
	}
	sg, decline := s.fastSigner(st, z, q)
	if decline {
		return nil, false
	}
	var res zones.Result
	z.LookupCanonical(lname, q.qtype, &res)

	r := fastReply{msg: append(out[:0], req[:q.qEnd]...), rcode: dns.RcodeSuccess}
	fs.comp.question = unsafe.String(&fs.name.asked[0], fs.name.n)
	zpos := st.zonePos(z)
	neg := false
	ans := len(r.msg) // where the answer's records start
	if sg != nil && !fastSignable(st, &res, q) {
		return nil, false // a signed negative answer, a referral...: the general path signs it
	}
	if sg != nil {
		r.reserve = sigRoom(sg)
	}
	switch res.Kind {
	case zones.Answer:
		if res.Wildcard || len(res.Extra) != 0 || len(res.Answer) == 0 {
			return nil, false
		}
		var ok bool
		if r.msg, ok = appendStatic(r.msg, &fs.comp, res.Answer, lname); !ok {
			return nil, false
		}
		r.an = len(res.Answer)
	case zones.NoData:
		neg = true
	case zones.NXDomain:
		neg, r.rcode = true, dns.RcodeNameError
		if svc, m := st.snap.Target(z, lname); m != nil {
			// An SRV target: its member's record, as a service member's, or NODATA.
			r.rcode = dns.RcodeSuccess
			s.appendTarget(st, svc, m, q.qtype, &r)
			neg = r.an == 0
		}
	case zones.Service:
		if res.Wildcard && q.qtype == dns.TypeSRV {
			// A name a wildcard service covers could equal one of its targets, which
			// miekg would then compress against the question: the general path.
			return nil, false
		}
		if !s.fastService(st, q, fs, res.Service, &r, src, tcp, sh) {
			return nil, false
		}
		neg = r.rcode == dns.RcodeSuccess && r.an == 0 && !r.tc
	default:
		// CNAME chains and referrals: the general path.
		return nil, false
	}
	if neg && sg != nil {
		// A service with no member to answer, found after selection (rare: the family
		// was checked before): the general path makes the signed denial.
		return nil, false
	}
	if neg && !fastNegative(st, fs, z, zpos, lname, &r) {
		return nil, false
	}
	if sg != nil && r.an > 0 && r.rcode == dns.RcodeSuccess && !r.tc {
		s.appendSigs(sg, q, lname, ans, &r)
	}
	finishFast(&r, q)
	if len(r.msg) > replyLimit(q, tcp) {
		return nil, false
	}
	return s.send(sh, st.zoneSlot(zpos), q, r.rcode, tcp, r.msg, r.tc), true
}

// fastQuery reports whether the fast path takes q, as far as that is decided before the
// lookup (doc.go, "Fast path"): a state with fast-path data; a query parse accepted with
// nothing in answer and authority, at most the OPT in additional, no other EDNS option
// than ECS, nothing after the last record; a question of plain labels, not the root, that
// the compressor can record; class IN and a type the general path has no rule of its own
// for.
func fastQuery(st *state, q *query, nb *nameBuf, size int) bool {
	if st == nil || st.fast == nil || st.snap == nil || st.snap.Zones == nil {
		return false
	}
	if q.act != actAccept || q.hdr.ancount != 0 || q.hdr.nscount != 0 || q.end != size || q.optOther {
		return false
	}
	if q.hdr.arcount > 1 || q.hdr.arcount == 1 && !q.edns {
		return false
	}
	// The compressor records the question only when a name is written, after selection:
	// a question with more labels than it holds is declined now, before any side effect.
	if !nb.plain || nb.n == 0 || nb.labels > maxCompEntries || q.qclass != dns.ClassINET {
		return false
	}
	switch q.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return false
	}
	return true
}

// fastService answers a load-balanced name into r: GeoIP lookup when the service steers
// by location, selection, then the selected members' records. It reports false, before
// selecting, for what the general path answers: a host-name service (its CNAME is
// chased) and an answer that might not fit.
//
// Steering services (failover, geo, nearest) take this path too: their Select is
// allocation-free, makes the pool spill and the when_all_down decision itself, and returns
// the ECS scope the pool order and the member pick depended on. locate looks the client up
// exactly as the general path does (one lookup, only for the services that need it), so
// both paths select from the same Client.
func (s *Server) fastService(st *state, q *query, fs *fastScratch, ref zones.ServiceRef, r *fastReply, src netip.AddrPort, tcp bool, sh int) bool {
	i := int(ref)
	if i < 0 || i >= len(st.snap.Services) || i >= len(st.fast.host) {
		return false
	}
	svc := st.snap.Services[i]
	if svc == nil || st.fast.host[i] {
		return false // a CNAME to chase
	}
	if q.qtype == dns.TypeSRV && svc.HasSRV() {
		return s.fastSRV(st, q, fs, svc, r, src, tcp, sh)
	}
	address := q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA
	// Selection has side effects (the round-robin cursor): the size is bounded first, so
	// that the fast path never selects and then gives up.
	if address && len(r.msg)+svc.MaxAnswers()*len(memberWire{}.rr)+r.reserve+optLen(q, dns.RcodeSuccess) > replyLimit(q, tcp) {
		return false
	}
	var client policy.Client
	setClient(&client, q, src)
	locate(st, svc, &client)
	sel := svc.SelectFor(&client, q.qtype, st.health, fs.members[:0])
	if cap(sel.Members) > cap(fs.members) {
		fs.members = sel.Members[:0]
	}
	fs.selected = true
	switch {
	case sel.ServFail:
		r.rcode = dns.RcodeServerFailure
		return true
	case sel.CNAME:
		return false // not reached: host-name services were declined above
	}
	r.scope = sel.Scope
	if address {
		s.appendMembers(st, svc, sel.Members, q.qtype, r, sh)
	}
	return true
}

// appendMembers appends the records of the members of the asked family, copied from the
// wire compiled at SetSnapshot with the service TTL patched in, and counts each as
// answered.
func (s *Server) appendMembers(st *state, svc *policy.Service, members []*policy.Member, qtype uint16, r *fastReply, sh int) {
	for _, m := range members {
		if m.Index < 0 || m.Index >= len(st.fast.members) {
			continue
		}
		w := &st.fast.members[m.Index]
		if w.n == 0 || w.qtype != qtype {
			continue
		}
		start := len(r.msg)
		r.msg = append(r.msg, w.rr[:w.n]...)
		binary.BigEndian.PutUint32(r.msg[start+ttlOffset:], svc.TTL)
		s.metrics.answered(sh, st.answers, svc, m)
		r.an++
	}
}

// appendTarget appends the A or AAAA record of the member an SRV target name names, when
// qtype asks for its family, from the wire compiled at SetSnapshot with the service TTL;
// it is no selection, so it counts no answer.
func (s *Server) appendTarget(st *state, svc *policy.Service, m *policy.Member, qtype uint16, r *fastReply) {
	if m.Index < 0 || m.Index >= len(st.fast.members) {
		return
	}
	w := &st.fast.members[m.Index]
	if w.n == 0 || w.qtype != qtype {
		return
	}
	start := len(r.msg)
	r.msg = append(r.msg, w.rr[:w.n]...)
	binary.BigEndian.PutUint32(r.msg[start+ttlOffset:], svc.TTL)
	r.an++
}

// fastNegative appends the zone's SOA to the authority section of NXDOMAIN and NODATA
// (nothing for a zone without one): from the zone's template (negsoa.go) for a question
// asked in lower case, which is what the template assumes the compressor recorded, else
// written by the compressor. It reports false when neither can write it as miekg would.
func fastNegative(st *state, fs *fastScratch, z *zones.Zone, zpos int, lname string, r *fastReply) bool {
	if z.SOA() == nil {
		return true
	}
	r.ns = 1
	if fs.comp.question == lname && zpos >= 0 && zpos < len(st.fast.soas) {
		if msg, ok := st.fast.soas[zpos].appendTo(r.msg, lname); ok {
			r.msg = msg
			return true
		}
	}
	var ok bool
	r.msg, ok = appendNegativeSOA(r.msg, &fs.comp, z)
	return ok
}

// finishFast sets the header of r.msg and appends the OPT, as pack does for the general
// path: QR, AA for answers from our zones, RD and CD copied, RA clear, the counts; the OPT
// from appendOPT. Error replies (SERVFAIL) carry no records and no AA.
func finishFast(r *fastReply, q *query) {
	bits := uint16(flagQR) | q.hdr.bits&(flagRD|flagCD) | uint16(r.rcode&0xF)
	an, ns, ar := r.an, r.ns, r.ar
	if r.tc {
		// Too big: no records at all (RFC 2181 Section 9), as pack truncates.
		bits |= flagTC
		r.msg = r.msg[:q.qEnd]
		an, ns, ar = 0, 0, 0
	}
	if r.rcode == dns.RcodeSuccess || r.rcode == dns.RcodeNameError {
		bits |= flagAA
	} else {
		r.msg = r.msg[:q.qEnd]
		an, ns, ar = 0, 0, 0
	}
	binary.BigEndian.PutUint16(r.msg[2:], bits)
	binary.BigEndian.PutUint16(r.msg[6:], uint16(an))
	binary.BigEndian.PutUint16(r.msg[8:], uint16(ns))
	binary.BigEndian.PutUint16(r.msg[10:], uint16(ar)) // appendOPT counts the OPT
	r.msg = appendOPT(r.msg, q, r.rcode, r.scope)
}

// appendStatic writes a static RRset of A or AAAA records (the owner compressed as miekg
// would, the rest as miekg packs it); lname is the lower-case question name. ok is false
// for any other type, which the general path packs: names in RDATA (MX, NS, SOA, SRV,
// CNAME) compress against the whole message, and text types are packed from presentation
// form.
func appendStatic(msg []byte, c *compressor, rrs []dns.RR, lname string) ([]byte, bool) {
	for _, rr := range rrs {
		h := rr.Header()
		var rdata []byte
		var a4 [4]byte
		switch v := rr.(type) {
		case *dns.A:
			ip := v.A.To4()
			if ip == nil {
				return msg, false
			}
			copy(a4[:], ip)
			rdata = a4[:]
		case *dns.AAAA:
			if len(v.AAAA) != 16 {
				return msg, false
			}
			rdata = v.AAAA
		default:
			return msg, false
		}
		if h.Name != lname && !isPlainName(h.Name) { // an exact hit's owner is the plain qname
			return msg, false
		}
		var ok bool
		if msg, ok = c.writeName(msg, h.Name); !ok {
			return msg, false
		}
		msg = appendUint16(msg, h.Rrtype)
		msg = appendUint16(msg, h.Class)
		msg = appendUint32(msg, h.Ttl)
		msg = appendUint16(msg, uint16(len(rdata)))
		msg = append(msg, rdata...)
	}
	return msg, true
}

// appendNegativeSOA writes the zone's SOA for the authority section of NXDOMAIN and
// NODATA, with the negative TTL (RFC 2308 Section 3), owner, MNAME and RNAME compressed
// as miekg would. A zone without a SOA writes nothing, as negative() does.
func appendNegativeSOA(msg []byte, c *compressor, z *zones.Zone) ([]byte, bool) {
	soa := z.SOA()
	if soa == nil {
		return msg, true
	}
	if !isPlainName(soa.Hdr.Name) || !isPlainName(soa.Ns) || !isPlainName(soa.Mbox) {
		return msg, false
	}
	var ok bool
	if msg, ok = c.writeName(msg, soa.Hdr.Name); !ok {
		return msg, false
	}
	msg = appendUint16(msg, dns.TypeSOA)
	msg = appendUint16(msg, soa.Hdr.Class)
	msg = appendUint32(msg, z.NegativeTTL())
	rdlenAt := len(msg)
	msg = appendUint16(msg, 0)
	if msg, ok = c.writeName(msg, soa.Ns); !ok {
		return msg, false
	}
	if msg, ok = c.writeName(msg, soa.Mbox); !ok {
		return msg, false
	}
	msg = appendUint32(msg, soa.Serial)
	msg = appendUint32(msg, soa.Refresh)
	msg = appendUint32(msg, soa.Retry)
	msg = appendUint32(msg, soa.Expire)
	msg = appendUint32(msg, soa.Minttl)
	binary.BigEndian.PutUint16(msg[rdlenAt:], uint16(len(msg)-rdlenAt-2))
	return msg, true
}
