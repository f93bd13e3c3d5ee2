package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"

	"github.com/glbdns/glbdns/policy"
	"github.com/miekg/dns"
)

// ednsUDPSize is the payload size we advertise and the most we send over UDP: 1232 bytes,
// the DNS Flag Day 2020 value, which fits an IPv6 minimum MTU (1280) minus headers, so
// that answers are never fragmented (fragments are lost or spoofed; TCP is the fallback).
const ednsUDPSize = 1232

// minUDPSize is the payload limit without EDNS, and the floor of an advertised size
// (RFC 1035 Section 4.2.1; RFC 6891 Section 6.2.5: values below 512 are treated as 512).
const minUDPSize = 512

// scratch is the per-query working memory, pooled so that the hot path reuses it: the
// reply message and its section slices, the selection buffer, and slabs of A/AAAA/CNAME
// records whose addresses point into ipbuf.
type scratch struct {
	req     dns.Msg
	resp    dns.Msg
	q       [1]dns.Question
	answer  []dns.RR
	ns      []dns.RR
	extra   []dns.RR
	members []*policy.Member
	as      []dns.A
	aaaas   []dns.AAAA
	cnames  []dns.CNAME
	ipbuf   []byte
	soa     dns.SOA
	opt     dns.OPT
	ecs     dns.EDNS0_SUBNET
	ecsIP   [16]byte
	opts    [1]dns.EDNS0
	zone    int // metrics zone slot of the question's zone (0: none), set by resolve
	shard   int // metrics shard of the loop answering, set by general
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		answer:  make([]dns.RR, 0, 16),
		ns:      make([]dns.RR, 0, 8),
		extra:   make([]dns.RR, 0, 8),
		members: make([]*policy.Member, 0, 8),
		as:      make([]dns.A, 0, 8),
		aaaas:   make([]dns.AAAA, 0, 8),
		cnames:  make([]dns.CNAME, 0, 8),
		ipbuf:   make([]byte, 0, 128),
	}
}}

// reset clears the scratch for a new query, keeping the backing arrays. Records of the
// previous reply are dropped before reuse so that the pool does not pin zone data.
func (sc *scratch) reset() {
	clear(sc.answer[:cap(sc.answer)])
	clear(sc.ns[:cap(sc.ns)])
	clear(sc.extra[:cap(sc.extra)])
	clear(sc.members[:cap(sc.members)])
	sc.answer, sc.ns, sc.extra, sc.members = sc.answer[:0], sc.ns[:0], sc.extra[:0], sc.members[:0]
	sc.as, sc.aaaas, sc.cnames, sc.ipbuf = sc.as[:0], sc.aaaas[:0], sc.cnames[:0], sc.ipbuf[:0]
	sc.resp = dns.Msg{}
	sc.req = dns.Msg{}
	sc.zone = 0
	sc.shard = 0
}

// Handle is the whole in-process query path: it takes a request in wire format and
// appends the reply to out[:0], or returns nil when no reply must be sent. src is the
// query's source (the client for selection when there is no ECS); tcp selects the size
// limit (UDP: the requester's EDNS payload size, TCP: 65535). It never panics: a panic is
// recovered, counted in Panics, and the query dropped.
func (s *Server) Handle(req []byte, src netip.AddrPort, tcp bool, out []byte) (reply []byte) {
	return s.handle(req, src, tcp, out, s.metrics.connShard())
}

// handle is Handle recording into metrics shard sh (the UDP worker's own, or the TCP
// connection's). The recover is its only defer, which the compiler open-codes (with more
// defers or returns it falls back to the runtime's defer records, which cost more).
func (s *Server) handle(req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("panic recovered", "loop", "query", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			reply = nil
		}
	}()
	if reply, ok := s.fastPath(req, src, tcp, out, sh); ok {
		return reply // the common query, answered without miekg (fastpath.go)
	}
	return s.general(req, src, tcp, out, sh)
}

// general is the query path for everything the fast path declines: miekg/dns parses and
// packs, every rule of the RFCs is checked here.
func (s *Server) general(req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) []byte {
	// Anything shorter than a header has no id to answer to: drop it.
	if len(req) < headerLen {
		s.metrics.dropped(sh)
		return nil
	}
	q := query{hdr: parseHeader(req)}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.reset()
	sc.shard = sh

	switch filter(&q.hdr) {
	case actDrop:
		s.metrics.dropped(sh)
		return nil
	case actFormErr:
		return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
	case actNotImp:
		return s.finish(sc, &q, dns.RcodeNotImplemented, tcp, out)
	case actRefused:
		if q.hdr.qdcount == 1 {
			_, _ = parseQuestion(req, &q) // echo the zone/question when it parses
		}
		return s.finish(sc, &q, dns.RcodeRefused, tcp, out)
	}

	off, err := parseQuestion(req, &q)
	if err != nil {
		return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
	}
	if err := scan(req, off, &q); err != nil {
		return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
	}
	if q.ednsBad {
		// RFC 6891 Section 6.1.1: more than one OPT is FORMERR. An OPT elsewhere than
		// the additional section or not owned by the root is malformed the same way. No
		// OPT in the reply: the requester's EDNS is what is broken.
		return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
	}
	if q.edns {
		// RFC 6891 Section 6.1.3: a version we do not implement gets BADVERS, with an
		// OPT of the version we do implement (0), and no answer.
		if q.version > 0 {
			return s.finish(sc, &q, dns.RcodeBadVers, tcp, out)
		}
		if err := parseOptions(req, &q); err != nil {
			return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
		}
	}
	// The general path: miekg validates every record of the message. The fields the
	// server uses were read above from the wire; a later fast path can skip this.
	if err := sc.req.Unpack(req); err != nil {
		return s.finish(sc, &q, dns.RcodeFormatError, tcp, out)
	}

	switch {
	case q.qclass != dns.ClassINET:
		// Only IN data is served; CHAOS (version.bind, id.server) is refused too rather
		// than disclosing the build (RFC 4892 makes id.server optional).
		return s.finish(sc, &q, dns.RcodeRefused, tcp, out)
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		// Zone transfers are not offered (RFC 5936 Section 4.2 allows refusing them);
		// zone data comes from the policy, not from secondaries.
		return s.finish(sc, &q, dns.RcodeRefused, tcp, out)
	}
	st := s.state.Load()
	if st == nil || st.snap == nil || st.snap.Zones == nil {
		// No policy loaded yet: SERVFAIL tells resolvers to try another server now and
		// us again later, where REFUSED could be cached as lameness.
		return s.finish(sc, &q, dns.RcodeServerFailure, tcp, out)
	}
	rcode, scope := s.resolve(sc, st, &q, clientOf(&q, src))
	return s.finishScope(sc, &q, rcode, scope, tcp, out)
}

// clientOf is who selection keys on: the ECS subnet when the query carries one with a
// non-zero source prefix, else the query's source address. A /0 ECS option means the
// client opted out of subnet information (RFC 7871 Section 7.1.2), so the resolver's
// address is used as if there were no option.
func clientOf(q *query, src netip.AddrPort) policy.Client {
	var c policy.Client
	setClient(&c, q, src)
	return c
}

// setClient is clientOf writing into c, whose other fields it leaves alone: the fast
// path keeps the 200-byte Client in place rather than copy it out of a call.
func setClient(c *policy.Client, q *query, src netip.AddrPort) {
	if q.ecs.present && q.ecs.source > 0 {
		p := q.ecs.prefix()
		c.Addr, c.SourcePrefix, c.ECS = p.Addr(), p.Bits(), true
		return
	}
	a := src.Addr().Unmap()
	c.Addr, c.SourcePrefix, c.ECS = a, a.BitLen(), false
}

func (s *Server) finish(sc *scratch, q *query, rcode int, tcp bool, out []byte) []byte {
	return s.finishScope(sc, q, rcode, 0, tcp, out)
}

// finishScope packs the reply (see pack) and records it in the metrics.
func (s *Server) finishScope(sc *scratch, q *query, rcode, scope int, tcp bool, out []byte) []byte {
	msg := s.pack(sc, q, rcode, scope, tcp, out)
	if msg == nil {
		s.metrics.dropped(sc.shard)
		return nil
	}
	pr := protoUDP
	if tcp {
		pr = protoTCP
	}
	var qtype uint16
	if q.hasQ {
		qtype = q.qtype
	}
	s.metrics.observe(sc.shard, sc.zone, qtype, sc.resp.Rcode, pr, len(msg), sc.resp.Truncated, q.ecs.present)
	return msg
}

// pack fills the reply header, question and OPT around the sections resolve put in
// sc.resp, packs it, and truncates it for UDP.
func (s *Server) pack(sc *scratch, q *query, rcode, scope int, tcp bool, out []byte) []byte {
	r := &sc.resp
	r.Id = q.hdr.id
	r.Response = true
	r.Opcode = q.hdr.opcode()
	r.RecursionDesired = q.hdr.bits&flagRD != 0 // RFC 1035 Section 4.1.1: copied
	r.CheckingDisabled = q.hdr.bits&flagCD != 0 // RFC 4035 Section 3.1.6: copied
	r.RecursionAvailable = false                // authoritative only
	r.Rcode = rcode
	r.Compress = true
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError {
		// Error replies carry no records (and no AA: they say nothing authoritative).
		r.Authoritative = false
		r.Answer, r.Ns, r.Extra = nil, nil, nil
	}
	if q.hasQ {
		// The question is echoed as asked, case included (resolvers match it, and some
		// use the case as extra entropy, draft-vixie-dnsext-dns0x20).
		sc.q[0] = dns.Question{Name: q.qname, Qtype: q.qtype, Qclass: q.qclass}
		r.Question = sc.q[:1]
	}
	limit := tcpMaxMsg
	if q.edns && !q.ednsBad {
		r.Extra = append(r.Extra, s.opt(sc, q, scope, rcode))
		if !tcp {
			limit = min(max(int(q.udpSize), minUDPSize), ednsUDPSize)
		}
	} else if !tcp {
		limit = minUDPSize
	}
	msg, err := r.PackBuffer(out[:cap(out)])
	if err == nil && len(msg) <= limit {
		return msg
	}
	if err != nil {
		s.log.Debug("pack failed", "err", err, "qname", q.qname)
		if rcode == dns.RcodeServerFailure {
			return nil
		}
		sc.resp.Answer, sc.resp.Ns, sc.resp.Extra = nil, nil, nil
		return s.pack(sc, q, dns.RcodeServerFailure, 0, tcp, out)
	}
	// Too big for UDP: RFC 2181 Section 9 forbids partial RRsets, so send no records at
	// all, TC=1, and the question and OPT; the client retries over TCP (RFC 7766).
	r.Truncated = true
	r.Answer, r.Ns = nil, nil
	r.Extra = r.Extra[:0]
	if q.edns {
		r.Extra = append(r.Extra, &sc.opt)
	}
	msg, err = r.PackBuffer(out[:cap(out)])
	if err != nil {
		return nil
	}
	return msg
}

// opt builds the reply's OPT RR (RFC 6891 Section 6.1.1: a reply to an EDNS query carries
// one): our payload size, version 0, the DO bit copied from the query (RFC 3225 Section 3:
// "the DO bit of the query MUST be copied in the response"; we do not sign, so it changes
// nothing else), and the ECS option echoed (RFC 7871 Section 7.2.1) with the SCOPE the
// answer depended on. Other options are not echoed (RFC 6891 Section 6.1.2).
func (s *Server) opt(sc *scratch, q *query, scope, rcode int) *dns.OPT {
	sc.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: ednsUDPSize}}
	if q.do {
		sc.opt.SetDo()
	}
	if q.ecs.present && rcode != dns.RcodeFormatError && rcode != dns.RcodeBadVers {
		e := &q.ecs
		if e.source == 0 {
			scope = 0 // RFC 7871 Section 7.2.1: a /0 query gets a /0 scope
		}
		copy(sc.ecsIP[:], e.addr[:])
		ip := net.IP(sc.ecsIP[:16])
		if e.family == 1 {
			ip = net.IP(sc.ecsIP[:4])
		}
		sc.ecs = dns.EDNS0_SUBNET{
			Code:          dns.EDNS0SUBNET,
			Family:        e.family,
			SourceNetmask: e.source,
			SourceScope:   uint8(scope),
			Address:       ip,
		}
		sc.opts[0] = &sc.ecs
		sc.opt.Option = sc.opts[:1]
	}
	return &sc.opt
}
