package dnsserver

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/zones"
)

// ednsUDPSize is the payload size we advertise and the most we send over UDP: 1232 bytes,
// the DNS Flag Day 2020 value, which fits an IPv6 minimum MTU (1280) minus headers, so
// that answers are never fragmented (fragments are lost or spoofed; TCP is the fallback).
const ednsUDPSize = 1232

// minUDPSize is the payload limit without EDNS, and the floor of an advertised size
// (RFC 1035 Section 4.2.1; RFC 6891 Section 6.2.5: values below 512 are treated as 512).
const minUDPSize = 512

// scratch is the general path's working memory, pooled so that it is reused: the reply
// message and its section slices, the selection buffer, and slabs of A/AAAA/CNAME records
// whose addresses point into ipbuf.
type scratch struct {
	resp    dns.Msg
	q       [1]dns.Question
	answer  []dns.RR
	ns      []dns.RR
	extra   []dns.RR
	members []*policy.Member
	as      []dns.A
	aaaas   []dns.AAAA
	cnames  []dns.CNAME
	srvs    []dns.SRV
	srvSel  []policy.SRVRecord
	ipbuf   []byte
	soa     dns.SOA
	zone    int // metrics zone slot of the question's zone (0: none), set by resolve
	// extraOptional says that resp.Extra is additional data of an answer, which pack
	// drops before truncating; a referral's glue is not (RFC 9471 Section 3).
	extraOptional bool
	// negZone and negName are the zone and name of a negative answer (negative), which
	// a signed reply proves (sign.go); nil, "" for any other.
	negZone *zones.Zone
	negName string
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
		srvs:    make([]dns.SRV, 0, 8),
		srvSel:  make([]policy.SRVRecord, 0, 8),
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
	clear(sc.srvs[:cap(sc.srvs)])
	clear(sc.srvSel[:cap(sc.srvSel)])
	sc.srvs, sc.srvSel, sc.extraOptional = sc.srvs[:0], sc.srvSel[:0], false
	sc.resp = dns.Msg{}
	sc.zone = 0
	sc.negZone, sc.negName = nil, ""
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
// connection's). It loads the live state once and parses the request once; the fast path
// answers from that parse when it can, the general path otherwise. The recover is its
// only defer, which the compiler open-codes (with more defers or returns it falls back to
// the runtime's defer records, which cost more). A panic skips the release, and the
// scratch goes to the garbage collector.
func (s *Server) handle(req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("panic recovered", "loop", "query", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			reply = nil
		}
	}()
	// The query log (dnstap.go) is taken here, where both paths end: the sampling
	// decision and the query's time before it is answered, the copy after. Without a tap
	// this is a nil check.
	var tapAt int64
	tap := s.tap
	if tap != nil {
		tapAt = tap.take()
	}
	st := s.state.Load()
	fs := fastPool.Get().(*fastScratch)
	var q query
	s.begin(&q, req, fs, src, tcp, sh)
	reply, ok := s.fastPath(st, &q, fs, req, src, tcp, out, sh)
	if !ok {
		reply = s.general(st, &q, &fs.name, req, src, tcp, out, sh)
	}
	fs.release()
	fastPool.Put(fs)
	if tapAt != 0 {
		tap.offer(req, reply, src, tcp, tapAt)
	}
	return reply
}

// actRcode is the rcode of each verdict of parse but actAccept and actDrop.
var actRcode = [...]int{
	actFormErr:   dns.RcodeFormatError,
	actNotImp:    dns.RcodeNotImplemented,
	actRefused:   dns.RcodeRefused,
	actBadVers:   dns.RcodeBadVers,
	actBadCookie: dns.RcodeBadCookie,
}

// begin parses req into q, once for both paths, and judges its cookie.
func (s *Server) begin(q *query, req []byte, fs *fastScratch, src netip.AddrPort, tcp bool, sh int) {
	q.act = parse(req, q, &fs.name)
	q.src, q.name = src, &fs.name
	if q.cookieLen != 0 && q.act == actAccept {
		s.checkCookie(q, req, tcp, sh)
	}
}

// checkCookie judges the query's COOKIE option (cookie.go) and sets the cookie its reply
// carries. A server cookie that is not ours gets BADCOOKIE over UDP, with a fresh one
// (RFC 7873 Section 5.2.4; as PowerDNS and BIND): the client retries with it, and a
// forger, who never sees it, cannot. Over TCP the connection has proved the address
// already, and the query is answered. With cookies off the option is ignored, as any
// option we do not implement (Section 5.2.1).
func (s *Server) checkCookie(q *query, req []byte, tcp bool, sh int) {
	ck := s.cookieKeys.Load()
	if ck == nil {
		return
	}
	ck.judge(q, req, q.src.Addr().Unmap(), clock.seconds())
	s.metrics.cookie(sh, q.cookie)
	if q.cookie == cookieBad && !tcp {
		q.act = actBadCookie
	}
}

// general answers everything the fast path declines, from the same parse (q, and the
// question name in nb): every rule of the RFCs is applied here, and miekg/dns packs the
// reply.
func (s *Server) general(st *state, q *query, nb *nameBuf, req []byte, src netip.AddrPort, tcp bool, out []byte, sh int) []byte {
	if q.act == actDrop {
		s.metrics.dropped(sh)
		return nil
	}
	if q.hasQ {
		name, err := nb.text(req)
		if err != nil { // not reached: parse checked the name
			q.hasQ, q.act = false, actFormErr
		}
		q.qname = name
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.reset()
	sc.shard = sh
	if q.nsidAsk && q.act == actAccept {
		q.nsid = s.cfg.NSID
	}

	switch {
	case q.act != actAccept:
		// No OPT in a FORMERR for a broken OPT (q.edns is false): the requester's EDNS is
		// what is broken. BADVERS carries an OPT of the version we implement, 0, and
		// BADCOOKIE one with a fresh cookie.
		return s.finish(sc, q, actRcode[q.act], 0, tcp, out)
	case q.qclass == dns.ClassCHAOS && s.chaos(sc, q):
		return s.finish(sc, q, dns.RcodeSuccess, 0, tcp, out)
	case q.qclass != dns.ClassINET:
		// Only IN data is served; CHAOS (version.bind, id.server) too when configured,
		// else refused rather than disclosing the build (RFC 4892 makes id.server optional).
		return s.finish(sc, q, dns.RcodeRefused, 0, tcp, out)
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		// Zone transfers are not offered (RFC 5936 Section 4.2 allows refusing them);
		// zone data comes from the policy, not from secondaries.
		return s.finish(sc, q, dns.RcodeRefused, 0, tcp, out)
	case st == nil || st.snap == nil || st.snap.Zones == nil:
		// No policy loaded: SERVFAIL tells resolvers to try another server now and us
		// again in a while, where REFUSED could be cached as lameness.
		return s.finish(sc, q, dns.RcodeServerFailure, 0, tcp, out)
	}
	rcode, scope := s.resolve(sc, st, q, clientOf(q, src))
	if q.do && len(st.snap.Signers) > 0 {
		rcode = s.sign(sc, st, q, rcode)
	}
	return s.finish(sc, q, rcode, scope, tcp, out)
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

// finish packs the reply (see pack) and records it in the metrics.
func (s *Server) finish(sc *scratch, q *query, rcode, scope int, tcp bool, out []byte) []byte {
	msg, rcode, truncated := s.pack(sc, q, rcode, scope, tcp, out)
	if msg == nil {
		s.metrics.dropped(sc.shard)
		return nil
	}
	return s.send(sc.shard, sc.zone, q, rcode, tcp, msg, truncated)
}

// pack fills the reply header and question around the sections resolve put in sc.resp,
// packs it with miekg/dns, appends the OPT (appendOPT, as the fast path does) and keeps
// the reply within the size limit. It returns the reply, its rcode (SERVFAIL when the
// answer did not pack) and whether it was truncated.
func (s *Server) pack(sc *scratch, q *query, rcode, scope int, tcp bool, out []byte) ([]byte, int, bool) {
	r := &sc.resp
	r.Id = q.hdr.id
	r.Response = true
	r.Opcode = q.hdr.opcode()
	r.RecursionDesired = q.hdr.bits&flagRD != 0 // RFC 1035 Section 4.1.1: copied
	r.CheckingDisabled = q.hdr.bits&flagCD != 0 // RFC 4035 Section 3.1.6: copied
	r.RecursionAvailable = false                // authoritative only
	r.Rcode = rcode & 0xF                       // the upper bits of BADVERS go in the OPT
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
	msg, err := r.PackBuffer(out[:cap(out)])
	if err != nil {
		s.log.Debug("pack failed", "err", err, "qname", q.qname)
		if rcode == dns.RcodeServerFailure {
			return nil, rcode, false
		}
		r.Answer, r.Ns, r.Extra = nil, nil, nil
		return s.pack(sc, q, dns.RcodeServerFailure, 0, tcp, out)
	}
	// The OPT goes last, after any glue, as miekg would pack it; nothing compresses
	// against its root owner, so appending it gives miekg's bytes.
	limit := replyLimit(q, tcp) - optLen(q, rcode)
	for len(msg) > limit && sc.extraOptional && len(r.Extra) > 0 {
		// Additional data goes first, a whole RRset at a time from the end (RFC 2181
		// Section 9: TC is for the sections that must be complete; what is only useful
		// is left out); the answer is not truncated if it fits without it.
		r.Extra = dropLastRRset(r.Extra)
		if msg, err = r.PackBuffer(out[:cap(out)]); err != nil {
			return nil, rcode, false
		}
	}
	if len(msg) > limit {
		// Too big for UDP: RFC 2181 Section 9 forbids partial RRsets, so send no records
		// at all, TC=1, and the question and OPT; the client retries over TCP (RFC 7766).
		r.Truncated = true
		r.Answer, r.Ns, r.Extra = nil, nil, nil
		if msg, err = r.PackBuffer(out[:cap(out)]); err != nil {
			return nil, rcode, false
		}
	}
	return appendOPT(msg, q, rcode, scope), rcode, r.Truncated
}

// dropLastRRset returns rrs without its last RRset (the records at its end of the last
// record's name and type).
func dropLastRRset(rrs []dns.RR) []dns.RR {
	last := rrs[len(rrs)-1].Header()
	i := len(rrs) - 1
	for i > 0 {
		h := rrs[i-1].Header()
		if h.Rrtype != last.Rrtype || !strings.EqualFold(h.Name, last.Name) {
			break
		}
		i--
	}
	return rrs[:i]
}

// chaos answers the CHAOS TXT names that identify a server, when configured: id.server
// and hostname.bind with Config.Identity (RFC 4892), version.bind and version.server with
// Config.Version; false for any other question (refused). The answer has TTL 0 and AA:
// it is this server's own, and says which node of several answered.
func (s *Server) chaos(sc *scratch, q *query) bool {
	var v string
	switch strings.ToLower(q.qname) {
	case "id.server.", "hostname.bind.":
		v = s.cfg.Identity
	case "version.bind.", "version.server.":
		v = s.cfg.Version
	}
	if v == "" {
		return false
	}
	sc.resp.Authoritative = true
	if q.qtype == dns.TypeTXT || q.qtype == dns.TypeANY {
		sc.resp.Answer = append(sc.resp.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: q.qname, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{v}})
	}
	return true
}
