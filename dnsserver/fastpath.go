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

// The fast path answers the common query without miekg/dns: it reads the header,
// question and OPT in place, looks the name up without allocating, and writes the reply
// straight into the output buffer from wire data compiled when the snapshot was
// installed. It takes a query only when it can produce exactly the bytes the general path
// would (see doc.go, "Fast path"); anything else returns ok = false before any side
// effect, and Handle runs the general path.

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
}

// memberWire is one member's pre-packed answer record.
type memberWire struct {
	rr    [2 + 10 + 16]byte
	n     uint8
	qtype uint16
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
	}
	return fd
}

// fastScratch is the fast path's working memory: the question name in lower case (for
// lookups) and as asked (for compression), the selection buffer and the compressor.
type fastScratch struct {
	lname    [maxNameLen + 1]byte
	oname    [maxNameLen + 1]byte
	members  []*policy.Member
	selected bool // members holds a selection, to be cleared by release
	comp     compressor
}

// fastPool holds fastScratch values for UDP workers and TCP connections alike; sync.Pool's
// per-P cache makes Get/Put a few nanoseconds without locks. A scratch comes out of it
// clean: new, or emptied by release before Put.
var fastPool = sync.Pool{New: func() any {
	return &fastScratch{members: make([]*policy.Member, 0, 16)}
}}

// fastQueryMax is the largest query the fast path parses: a question and an OPT with
// one ECS option fit easily; bigger messages carry something else and go the general way.
const fastQueryMax = 512

// fastPath answers req when it is the common query; ok = false leaves it to the general
// path, with nothing changed (no selection made, no metric recorded).
func (s *Server) fastPath(req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) (reply []byte, ok bool) {
	if len(req) < headerLen || len(req) > fastQueryMax {
		return nil, false
	}
	st := s.state.Load()
	if st == nil || st.fast == nil || st.snap == nil || st.snap.Zones == nil {
		return nil, false
	}
	q := query{hdr: parseHeader(req)}
	// QR=0 and opcode QUERY; one question, nothing in answer or authority, at most one
	// additional record (the OPT). Other flags are ignored by both paths alike.
	if q.hdr.bits&(flagQR|0x7800) != 0 || q.hdr.qdcount != 1 || q.hdr.ancount != 0 ||
		q.hdr.nscount != 0 || q.hdr.arcount > 1 {
		return nil, false
	}

	// No defer here or in fastAnswer: with this many returns the compiler cannot open-code
	// them, and the runtime's defer records cost more than the rest of the header parse.
	// A panic skips the release, and the scratch goes to the garbage collector.
	fs := fastPool.Get().(*fastScratch)
	reply, ok = s.fastAnswer(st, &q, fs, req, src, tcp, out, sh)
	fs.release()
	fastPool.Put(fs)
	return reply, ok
}

// release drops what the scratch points at (aliases of the scratch buffers in the
// compressor, the members of the last selection), so that the pool holds no references.
func (fs *fastScratch) release() {
	fs.comp.reset()
	if fs.selected {
		clear(fs.members[:cap(fs.members)])
		fs.selected = false
	}
}

// fastAnswer is the fast path after the header checks, with scratch memory fs.
func (s *Server) fastAnswer(st *state, q *query, fs *fastScratch, req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) ([]byte, bool) {
	// The question: plain labels only (no pointer, no byte that needs escaping), so that
	// the presentation name is the labels joined by dots.
	off := headerLen
	n := 0
	labels := 0
	for {
		if off >= len(req) {
			return nil, false
		}
		c := int(req[off])
		if c == 0 {
			off++
			break
		}
		if c > maxLabelLen || off+1+c > len(req) || n+c+1 > maxNameLen-1 {
			return nil, false
		}
		for _, b := range req[off+1 : off+1+c] {
			l := plainLower[b]
			if l == 0 {
				return nil, false
			}
			fs.oname[n], fs.lname[n] = b, l
			n++
		}
		fs.oname[n], fs.lname[n] = '.', '.'
		n++
		off += 1 + c
		labels++
	}
	if n == 0 || off+4 > len(req) {
		return nil, false // the root, or a short message
	}
	if labels > maxCompEntries {
		// The compressor could not record the question, and it records it only when a
		// name is written, after selection: decline now, before any side effect.
		return nil, false
	}
	qEnd := off + 4
	q.qtype = binary.BigEndian.Uint16(req[off:])
	q.qclass = binary.BigEndian.Uint16(req[off+2:])
	if q.qclass != dns.ClassINET {
		return nil, false
	}
	switch q.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return nil, false
	}
	// The strings alias the scratch buffers: they live until fastPool.Put and are never
	// stored beyond this call.
	lname := unsafe.String(&fs.lname[0], n)
	oname := unsafe.String(&fs.oname[0], n)

	// The OPT, when there is one: root owner, EDNS version 0, only an ECS option (a
	// message with other options goes the general way, which knows them all).
	off = qEnd
	if q.hdr.arcount == 1 {
		if off+11 > len(req) || req[off] != 0 || binary.BigEndian.Uint16(req[off+1:]) != dns.TypeOPT {
			return nil, false
		}
		q.udpSize = binary.BigEndian.Uint16(req[off+3:])
		ttl := binary.BigEndian.Uint32(req[off+5:])
		q.version = uint8(ttl >> 16)
		q.do = ttl&0x8000 != 0
		rdlen := int(binary.BigEndian.Uint16(req[off+9:]))
		q.optStart, q.optEnd = off+11, off+11+rdlen
		if q.version != 0 || q.optEnd != len(req) {
			return nil, false
		}
		for b := req[q.optStart:q.optEnd]; len(b) >= 4; {
			if binary.BigEndian.Uint16(b) != ednsOptionECS {
				return nil, false
			}
			b = b[min(4+int(binary.BigEndian.Uint16(b[2:])), len(b)):]
		}
		if err := parseOptions(req, q); err != nil {
			return nil, false
		}
		q.edns = true
	} else if off != len(req) {
		return nil, false
	}

	limit := tcpMaxMsg
	if !tcp {
		limit = minUDPSize
		if q.edns {
			limit = min(max(int(q.udpSize), minUDPSize), ednsUDPSize)
		}
	}

	snap := st.snap
	z := snap.Zones.FindCanonical(lname)
	if z == nil {
		return nil, false
	}
	var res zones.Result
	z.LookupCanonical(lname, q.qtype, &res)

	// Header and question; counts and flags are filled in at the end.
	msg := append(out[:0], req[:qEnd]...)
	fs.comp.question = oname
	zpos := st.zonePos(z)
	var (
		rcode   = dns.RcodeSuccess
		ancount int
		neg     bool
		scope   int
	)
	switch res.Kind {
	case zones.Answer:
		if res.Wildcard || len(res.Extra) != 0 || len(res.Answer) == 0 {
			return nil, false
		}
		var okw bool
		if msg, okw = appendStatic(msg, &fs.comp, res.Answer, lname); !okw {
			return nil, false
		}
		ancount = len(res.Answer)
	case zones.NoData:
		neg = true
	case zones.NXDomain:
		neg, rcode = true, dns.RcodeNameError
	case zones.Service:
		if int(res.Service) < 0 || int(res.Service) >= len(snap.Services) || int(res.Service) >= len(st.fast.host) {
			return nil, false
		}
		svc := snap.Services[res.Service]
		if svc == nil || st.fast.host[res.Service] {
			return nil, false
		}
		// Decide the size before selecting: selection has side effects (the
		// round-robin cursor), so the fast path must not select and then give up.
		if q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA {
			if len(msg)+svc.Answers*(2+10+16)+optLen(q) > limit {
				return nil, false
			}
		}
		// Steering services (failover, geo, nearest) take this path too: their Select is
		// allocation-free, makes the pool spill and the when_all_down decision itself,
		// and returns the ECS scope the pool order and the member pick depended on, which
		// finishFast echoes as the general path does. Geo and nearest services need the
		// client's GeoIP data first: locate looks it up exactly as the general path does
		// (one lookup, only for those services, allocation-free), so both paths select
		// from the same Client.
		var client policy.Client
		setClient(&client, q, src)
		locate(st, svc, &client)
		sel := svc.SelectFor(&client, q.qtype, st.health, fs.members[:0])
		if cap(sel.Members) > cap(fs.members) {
			fs.members = sel.Members[:0]
		}
		fs.selected = true
		if sel.ServFail {
			msg = finishFast(msg, q, dns.RcodeServerFailure, false, 0, 0, 0)
			return s.recordFast(sh, st.zoneSlot(zpos), q, dns.RcodeServerFailure, tcp, msg), true
		}
		if sel.CNAME {
			return nil, false // not reached: host services were excluded above
		}
		scope = sel.Scope
		if q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA {
			for _, m := range sel.Members {
				if m.Index < 0 || m.Index >= len(st.fast.members) {
					continue
				}
				w := &st.fast.members[m.Index]
				if w.n == 0 || w.qtype != q.qtype {
					continue
				}
				start := len(msg)
				msg = append(msg, w.rr[:w.n]...)
				binary.BigEndian.PutUint32(msg[start+ttlOffset:], svc.TTL)
				s.metrics.answered(sh, st.answers, svc, m)
				ancount++
			}
		}
		neg = ancount == 0
	default:
		// CNAME chains and referrals: the general path.
		return nil, false
	}
	nscount := 0
	if neg && z.SOA() != nil {
		nscount = 1
		var okw bool
		// The template assumes the question's suffixes are recorded in lower case.
		if oname == lname && zpos >= 0 && zpos < len(st.fast.soas) {
			msg, okw = st.fast.soas[zpos].appendTo(msg, lname)
		}
		if !okw {
			if msg, okw = appendNegativeSOA(msg, &fs.comp, z); !okw {
				return nil, false
			}
		}
	}
	msg = finishFast(msg, q, rcode, true, ancount, nscount, scope)
	if len(msg) > limit {
		return nil, false
	}
	return s.recordFast(sh, st.zoneSlot(zpos), q, rcode, tcp, msg), true
}

// recordFast records a fast-path reply in the metrics, as finishScope does for the
// general path.
func (s *Server) recordFast(sh, zoneSlot int, q *query, rcode int, tcp bool, msg []byte) []byte {
	pr := protoUDP
	if tcp {
		pr = protoTCP
	}
	s.metrics.observe(sh, zoneSlot, q.qtype, rcode, pr, len(msg), false, q.ecs.present)
	return msg
}

// optLen is the size of the OPT record finishFast writes.
func optLen(q *query) int {
	if !q.edns {
		return 0
	}
	n := 11
	if q.ecs.present {
		n += 4 + 4 + q.ecs.alen
	}
	return n
}

// finishFast sets the header of msg (which holds the question and the answer and
// authority records) and appends the OPT, as pack does for the general path: QR, AA for
// answers from our zones, RD and CD copied, RA clear; an OPT advertising 1232 bytes with
// DO copied and the ECS option echoed with scope (RFC 6891 Section 6.1.1, RFC 7871
// Section 7.2.1). Error replies carry no records and no AA.
func finishFast(msg []byte, q *query, rcode int, aa bool, an, ns, scope int) []byte {
	bits := uint16(flagQR) | q.hdr.bits&(flagRD|flagCD) | uint16(rcode&0xF)
	if aa {
		bits |= 1 << 10
	}
	if !aa {
		// An error reply: drop whatever follows the question.
		msg = msg[:qEndOf(msg)]
		an, ns = 0, 0
	}
	binary.BigEndian.PutUint16(msg[2:], bits)
	binary.BigEndian.PutUint16(msg[6:], uint16(an))
	binary.BigEndian.PutUint16(msg[8:], uint16(ns))
	ar := uint16(0)
	if q.edns {
		ar = 1
		msg = append(msg, 0) // root owner
		msg = appendUint16(msg, dns.TypeOPT)
		msg = appendUint16(msg, ednsUDPSize)
		ttl := uint32(0) // extended rcode 0 (every rcode here fits 4 bits), version 0
		if q.do {
			ttl |= 0x8000
		}
		msg = appendUint32(msg, ttl)
		if q.ecs.present {
			e := &q.ecs
			if e.source == 0 {
				scope = 0 // RFC 7871 Section 7.2.1: a /0 query gets a /0 scope
			}
			msg = appendUint16(msg, uint16(4+4+e.alen))
			msg = appendUint16(msg, ednsOptionECS)
			msg = appendUint16(msg, uint16(4+e.alen))
			msg = appendUint16(msg, e.family)
			msg = append(msg, e.source, uint8(scope))
			msg = append(msg, e.addr[:e.alen]...)
		} else {
			msg = appendUint16(msg, 0)
		}
	}
	binary.BigEndian.PutUint16(msg[10:], ar)
	return msg
}

// qEndOf is the offset just past the question of msg (whose name the fast path checked
// to be uncompressed labels).
func qEndOf(msg []byte) int {
	off := headerLen
	for msg[off] != 0 {
		off += 1 + int(msg[off])
	}
	return off + 1 + 4
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
