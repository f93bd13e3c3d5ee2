package dnsserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// SRV answers on the fast path (RFC 2782; policy's srv.go): one SRV record per member
// SelectSRV chose, then in the additional section each member's A or AAAA record, the
// bytes miekg/dns packs for the general path's srvAnswer. miekg writes an SRV target
// uncompressed (RFC 2782 forbids compressing it; zmsg.go packs it with compress = false),
// but still records the suffixes it writes in its compression map. So in the reply:
//   - every SRV record's owner, the question name as asked, is the pointer 0xC00C;
//   - its target, "<member>.<pool>.<service>", is written out whole, whatever is in the
//     map, and adds itself to the map at the offset it is written at (below 0x4000);
//   - each additional record's owner is that target, found whole in the map: a pointer
//     to the target in the SRV record of its member.
//
// None of these bytes depend on the question's case (the lower-case targets never match
// a mixed-case question's suffixes, and a match would change nothing written), so the
// records are copied from wire compiled at SetSnapshot: the service name (the targets'
// suffix) per service and the member and pool labels per member; only priority, weight,
// port and the pointers are written per query.
//
// The size of the reply is known before anything is written: when the SRV records do not
// fit the UDP limit the reply is truncated (TC=1, no records), and otherwise the
// additional records that fit are written, from the first, which is what pack's dropping
// of additional RRsets from the last leaves (each target name is one RRset). Over TCP
// the service's largest answer is bounded before selecting: one that could reach the
// 14-bit pointer limit, where miekg stops recording targets, goes to the general path.

// srvService is what the fast path compiled for an SRV service.
type srvService struct {
	ok    bool   // the fast path answers SRV at the service
	namen uint16 // the service name's wire form is namen bytes at name in fastData.wire
	name  uint32
	// maxBytes bounds the SRV and additional records of one answer: every member the
	// service may answer, once.
	maxBytes int
	// members is how many members the service may answer: the selection buffers are
	// grown to it before SelectSRV, so that selecting never allocates.
	members int
}

// srvFixed is an SRV record's bytes besides its target: the owner pointer, TYPE, CLASS,
// TTL, RDLENGTH, then PRIORITY, WEIGHT and PORT.
const srvFixed = 2 + 10 + 6

// compileSRV compiles the SRV wire of svc, a service with ports whose members are all
// addresses. The fast path leaves SRV to the general path for a name that needs escapes
// and for weights above 16 bits, which SRV scales (policy's buildSRV): below them the
// record's weight is the member's.
func (fd *fastData) compileSRV(svc *policy.Service) srvService {
	if !isPlainName(svc.Name) || svc.Name == "." {
		return srvService{}
	}
	sw := srvService{ok: true, name: uint32(len(fd.wire))}
	fd.wire = appendWireName(fd.wire, svc.Name)
	sw.namen = uint16(len(fd.wire) - int(sw.name))
	add := func(ms []*policy.Member) {
		for _, m := range ms {
			if m.Index < 0 || m.Index >= len(fd.members) || fd.members[m.Index].n == 0 || m.Weight > 0xFFFF {
				sw.ok = false
				return
			}
			w := &fd.members[m.Index]
			if w.labn == 0 {
				start := len(fd.wire)
				fd.wire = appendLowerLabel(fd.wire, m.Name)
				fd.wire = appendLowerLabel(fd.wire, m.Pool)
				w.lab, w.labn = uint32(start), uint8(len(fd.wire)-start)
			}
			sw.maxBytes += srvFixed + int(w.labn) + int(sw.namen) + int(w.n)
			sw.members++
		}
	}
	for _, p := range svc.Pools {
		add(p.Members)
	}
	if fb := svc.Fallback; fb != nil {
		add(fb.Members) // counted twice when it is one of the pools: only a bound
	}
	if !sw.ok {
		return srvService{}
	}
	return sw
}

// fastSRV answers an SRV query at svc into r: GeoIP lookup when the service steers by
// location, SelectSRV, then the records (see the top of this file), NODATA when nothing
// was chosen, SERVFAIL when when_all_down says so, with the selection's ECS scope. It
// reports false, before selecting, for a service it has not compiled and for a TCP
// answer that might reach the compression limit.
func (s *Server) fastSRV(st *state, q *query, fs *fastScratch, svc *policy.Service, r *fastReply, src netip.AddrPort, tcp bool, sh int) bool {
	i := int(svc.Ref)
	if i < 0 || i >= len(st.fast.srv) || !st.fast.srv[i].ok {
		return false
	}
	sw := &st.fast.srv[i]
	if tcp && len(r.msg)+sw.maxBytes >= maxCompOffset {
		return false
	}
	if cap(fs.members) < sw.members {
		fs.members = make([]*policy.Member, 0, sw.members)
	}
	if cap(fs.srv) < sw.members {
		fs.srv = make([]policy.SRVRecord, 0, sw.members)
	}
	var client policy.Client
	setClient(&client, q, src)
	locate(st, svc, &client)
	sel := svc.SelectSRV(&client, st.health, fs.members[:0], fs.srv[:0])
	if cap(sel.Records) > cap(fs.srv) {
		fs.srv = sel.Records[:0]
	}
	fs.selected = true
	if sel.ServFail {
		r.rcode = dns.RcodeServerFailure
		return true
	}
	r.scope = sel.Scope
	recs := sel.Records
	members, wire := st.fast.members, st.fast.wire
	size := 0
	for _, rec := range recs {
		size += srvFixed + int(members[rec.Member.Index].labn) + int(sw.namen)
	}
	for _, rec := range recs {
		s.metrics.answered(sh, st.answers, svc, rec.Member)
	}
	if len(recs) == 0 {
		return true // NODATA
	}
	limit := replyLimit(q, tcp) - optLen(q, dns.RcodeSuccess)
	if len(r.msg)+size > limit {
		r.tc = true
		return true
	}
	name := wire[sw.name : sw.name+uint32(sw.namen)]
	ttl := svc.TTL
	base := len(r.msg)
	for _, rec := range recs {
		m := rec.Member
		w := &members[m.Index]
		msg := append(r.msg, 0xC0, headerLen)
		msg = appendUint16(msg, dns.TypeSRV)
		msg = appendUint16(msg, dns.ClassINET)
		msg = appendUint32(msg, ttl)
		msg = appendUint16(msg, uint16(6+int(w.labn)+len(name)))
		msg = appendUint16(msg, rec.Priority)
		msg = appendUint16(msg, uint16(m.Weight))
		msg = appendUint16(msg, m.Port)
		msg = append(msg, wire[w.lab:w.lab+uint32(w.labn)]...)
		r.msg = append(msg, name...)
	}
	r.an = len(recs)
	// The additional records that fit, each owned by a pointer to its member's target.
	room := limit - len(r.msg)
	target := base
	for _, rec := range recs {
		w := &members[rec.Member.Index]
		at := target + srvFixed
		target += srvFixed + int(w.labn) + len(name)
		if int(w.n) > room {
			break
		}
		room -= int(w.n)
		start := len(r.msg)
		r.msg = append(r.msg, byte(0xC0|at>>8), byte(at))
		r.msg = append(r.msg, w.rr[2:w.n]...)
		binary.BigEndian.PutUint32(r.msg[start+ttlOffset:], ttl)
		r.ar++
	}
	return true
}

// appendWireName appends name, a plain fully qualified name (isPlainName), in wire form.
func appendWireName(b []byte, name string) []byte {
	begin := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			b = append(b, byte(i-begin))
			b = append(b, name[begin:i]...)
			begin = i + 1
		}
	}
	return append(b, 0)
}

// appendLowerLabel appends label, lower-cased, as one wire label (policy's validLabel has
// checked that it is letters, digits, '-' and '_', at most 63 octets).
func appendLowerLabel(b []byte, label string) []byte {
	b = append(b, byte(len(label)))
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
