package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// What both paths write and record the same way: the size limit of a reply, its OPT, and
// its metrics. The fast path and the general path call these, so that their replies and
// counts cannot drift apart.

// replyLimit is the largest reply q may get: 65535 bytes over TCP (RFC 1035 Section
// 4.2.2); over UDP 512 without EDNS (RFC 1035 Section 4.2.1), else the requester's size,
// raised to 512 when lower (RFC 6891 Section 6.2.5) and capped at our own 1232.
func replyLimit(q *query, tcp bool) int {
	switch {
	case tcp:
		return tcpMaxMsg
	case q.edns:
		return min(max(int(q.udpSize), minUDPSize), ednsUDPSize)
	}
	return minUDPSize
}

// echoECS reports whether the reply's OPT echoes the query's ECS option: always but in
// FORMERR and BADVERS, which say the option or its OPT was not understood.
func echoECS(q *query, rcode int) bool {
	return q.ecs.present && rcode != dns.RcodeFormatError && rcode != dns.RcodeBadVers
}

// optLen is the size of the OPT appendOPT writes for q and rcode.
func optLen(q *query, rcode int) int {
	if !q.edns {
		return 0
	}
	n := 1 + 10 // root owner, TYPE, CLASS, TTL, RDLENGTH
	if echoECS(q, rcode) {
		n += 4 + 4 + q.ecs.alen // option code and length, FAMILY, SOURCE, SCOPE, ADDRESS
	}
	if len(q.nsid) > 0 {
		n += 4 + len(q.nsid)
	}
	if q.cookieReply {
		n += 4 + replyCookieLen
	}
	return n
}

// appendOPT appends the reply's OPT RR to msg, a packed reply without one, and counts it
// in ARCOUNT; a query without EDNS gets none. RFC 6891 Section 6.1.1: a reply to an EDNS
// query carries one, with our payload size, version 0 and the upper 8 bits of an
// extended rcode (BADVERS, Section 6.1.3); the DO bit is copied from the query (RFC 3225
// Section 3: "the DO bit of the query MUST be copied in the response"; in a signed zone it
// also asks for the signatures, sign.go); the ECS option is echoed with FAMILY, SOURCE PREFIX-LENGTH and
// ADDRESS as sent and the SCOPE the answer depended on (RFC 7871 Section 7.2.1), 0 for a
// /0 query. Other options are not echoed (RFC 6891 Section 6.1.2). The bytes are those
// miekg/dns packs for the same OPT.
func appendOPT(msg []byte, q *query, rcode, scope int) []byte {
	if !q.edns {
		return msg // small enough to inline: a reply without EDNS pays no call
	}
	return appendOPTRR(msg, q, rcode, scope)
}

// appendOPTRR is appendOPT for a query with EDNS.
func appendOPTRR(msg []byte, q *query, rcode, scope int) []byte {
	msg = append(msg, 0) // root owner
	msg = appendUint16(msg, dns.TypeOPT)
	msg = appendUint16(msg, ednsUDPSize)
	ttl := uint32(rcode>>4) << 24 // extended rcode; version 0
	if q.do {
		ttl |= 0x8000
	}
	msg = appendUint32(msg, ttl)
	rdlen := len(msg)
	msg = appendUint16(msg, 0) // RDLENGTH, set below
	if echoECS(q, rcode) {
		e := &q.ecs
		if e.source == 0 {
			scope = 0 // RFC 7871 Section 7.2.1: a /0 query gets a /0 scope
		}
		msg = appendUint16(msg, ednsOptionECS)
		msg = appendUint16(msg, uint16(4+e.alen))
		msg = appendUint16(msg, e.family)
		msg = append(msg, e.source, uint8(scope))
		msg = append(msg, e.addr[:e.alen]...)
	}
	if len(q.nsid) > 0 { // RFC 5001 Section 2.3: the identifier, in a reply to a query that asked
		msg = appendUint16(msg, ednsOptionNSID)
		msg = appendUint16(msg, uint16(len(q.nsid)))
		msg = append(msg, q.nsid...)
	}
	if q.cookieReply { // RFC 7873 Section 5.2: the client cookie and our server cookie
		msg = appendUint16(msg, ednsOptionCookie)
		msg = appendUint16(msg, replyCookieLen)
		msg = append(msg, q.cookieOut[:]...)
	}
	binary.BigEndian.PutUint16(msg[rdlen:], uint16(len(msg)-rdlen-2))
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1)
	return msg
}

// send is the last step of both paths: response-rate limiting (rrl.go) may drop the reply
// or slip it as an empty TC=1 one, then what is sent is recorded. It returns the reply,
// or nil for none. TCP and a valid server cookie prove the client's address, and are
// never limited.
func (s *Server) send(sh, zoneSlot int, q *query, rcode int, tcp bool, msg []byte, truncated bool) []byte {
	if s.rrl != nil && !tcp && q.cookie != cookieValid {
		switch s.rrl.check(q, q.src.Addr().Unmap(), zoneSlot, rcode, msg, clock.seconds()) {
		case rrlDrop:
			s.metrics.limited(sh, rrlDrop)
			return nil
		case rrlSlip:
			s.metrics.limited(sh, rrlSlip)
			msg, truncated = slipReply(msg, q, rcode), true
		}
	}
	s.record(sh, zoneSlot, q, rcode, tcp, msg, truncated)
	return msg
}

// record counts a reply sent, on either path, in metrics shard sh: zoneSlot is the metrics
// slot of the question's zone (0: none), rcode the one sent. Every reply sent is recorded
// once, after it is written (see metrics.go).
func (s *Server) record(sh, zoneSlot int, q *query, rcode int, tcp bool, msg []byte, truncated bool) {
	pr := protoUDP
	if tcp {
		pr = protoTCP
	}
	var qtype uint16
	if q.hasQ {
		qtype = q.qtype
	}
	s.metrics.observe(sh, zoneSlot, qtype, rcode, pr, len(msg), truncated, q.ecs.present)
}
