package dnsserver

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/miekg/dns"
)

// headerLen is the fixed DNS header size (RFC 1035 Section 4.1.1).
const headerLen = 12

// Header flag bits (RFC 1035 Section 4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// Wire limits of names (RFC 1035 Section 2.3.4): 63 octets a label, 255 a name, root
// label included.
const (
	maxLabelLen = 63
	maxNameLen  = 255
)

// maxPointers bounds the compression pointers followed in one name. Pointers must point
// backwards (checkName), so a walk ends anyway; the bound, miekg/dns's, caps what a
// crafted chain of pointers to pointers can cost at a few hundred steps per name.
const maxPointers = 126

// ednsOptionECS is the EDNS Client Subnet option code (RFC 7871 Section 6).
const ednsOptionECS = 8

// ednsOptionNSID is the Name Server Identifier option (RFC 5001).
const ednsOptionNSID = 3

// Section count limits of a query, from miekg's DefaultMsgAcceptFunc: a query has no
// answer, at most one authority RR (an IXFR SOA, RFC 1995 Section 3) and at most two
// additional RRs (OPT and TSIG). Bigger counts are refused before anything is parsed.
const (
	maxAncount = 1
	maxNscount = 1
	maxArcount = 2
)

// action is the header filter's verdict.
type action uint8

const (
	actAccept  action = iota
	actDrop           // no reply
	actFormErr        // FORMERR
	actNotImp         // NOTIMP
	actRefused        // REFUSED
	actBadVers        // BADVERS: an EDNS version above 0
	// actBadCookie is not parse's: a server cookie that is not ours, over UDP (cookie.go).
	actBadCookie // BADCOOKIE
)

// header is the fixed part of a message.
type header struct {
	id                                 uint16
	bits                               uint16
	qdcount, ancount, nscount, arcount uint16
}

func (h *header) opcode() int { return int(h.bits>>11) & 0xF }

func parseHeader(msg []byte) header {
	return header{
		id:      binary.BigEndian.Uint16(msg[0:]),
		bits:    binary.BigEndian.Uint16(msg[2:]),
		qdcount: binary.BigEndian.Uint16(msg[4:]),
		ancount: binary.BigEndian.Uint16(msg[6:]),
		nscount: binary.BigEndian.Uint16(msg[8:]),
		arcount: binary.BigEndian.Uint16(msg[10:]),
	}
}

// filter is the header check done before any of the body is looked at (miekg's
// acceptfunc): responses are dropped (replying to a response can start a loop between two
// servers, and any reply can be used to amplify), NOTIFY and UPDATE are refused (we take no
// zone transfers nor updates: RFC 1996 Section 3.11 and RFC 2136 Section 3 let a server
// refuse), other opcodes are not implemented (RFC 1035 Section 4.1.1), and a query must
// have exactly one question (RFC 1035 Section 4.1.2 in practice; RFC 9619).
func filter(h *header) action {
	if h.bits&flagQR != 0 {
		return actDrop
	}
	switch h.opcode() {
	case dns.OpcodeQuery:
	case dns.OpcodeNotify, dns.OpcodeUpdate:
		return actRefused
	default:
		return actNotImp
	}
	if h.qdcount != 1 || h.ancount > maxAncount || h.nscount > maxNscount || h.arcount > maxArcount {
		return actFormErr
	}
	return actAccept
}

// query is what the server needs from a request, read straight from the wire by parse,
// once for both paths.
type query struct {
	act    action // parse's verdict: actAccept, or what the message gets instead of an answer
	hdr    header
	qname  string // as asked (case preserved), presentation format, fully qualified; set by the general path
	qtype  uint16
	qclass uint16
	hasQ   bool // the question parsed (it can be echoed in an error reply)
	qEnd   int  // offset past the question
	end    int  // offset past the last record (bytes after it are ignored, as miekg/dns does)

	// EDNS(0), RFC 6891.
	edns     bool   // one well-formed OPT in the additional section
	ednsBad  bool   // more than one OPT, OPT outside additional, or non-root owner
	udpSize  uint16 // requester's payload size (raw)
	version  uint8
	do       bool // DNSSEC OK (RFC 3225 Section 3)
	optStart int  // offset of the OPT RDATA
	optEnd   int
	optOther bool // an option other than ECS (ignored, RFC 6891 Section 6.1.2)
	nsidAsk  bool // an NSID option (RFC 5001): the general path answers it
	// nsid is the identifier the reply's OPT carries: Config.NSID, set by the general
	// path for a query that asked (nil: none).
	nsid []byte

	// ECS, RFC 7871.
	ecs ecsOption

	// COOKIE, RFC 7873 (cookie.go): where the option's data is in the message (length 0:
	// none), what it proves, and the cookie the reply's OPT carries (when cookieReply).
	cookieOff   int
	cookieLen   uint8
	cookie      cookieVerdict
	cookieReply bool
	cookieOut   [replyCookieLen]byte

	// src is the query's source and name its question name, as parse wrote it, for what
	// happens after a path has answered (rrl.go), and wildcard says the answer was
	// synthesized from a wildcard.
	src      netip.AddrPort
	name     *nameBuf
	wildcard bool
}

// ecsOption is a parsed EDNS Client Subnet option.
type ecsOption struct {
	present bool
	family  uint16
	source  uint8
	addr    [16]byte // the address bytes as sent, zero-padded
	alen    int      // number of address bytes sent
}

// prefix returns the subnet the option carries as a masked netip.Prefix.
func (e *ecsOption) prefix() netip.Prefix {
	var a netip.Addr
	if e.family == 1 {
		a = netip.AddrFrom4([4]byte(e.addr[:4]))
	} else {
		a = netip.AddrFrom16(e.addr)
	}
	return netip.PrefixFrom(a, int(e.source))
}

// nameBuf is the question name as parse read it, in presentation form without escapes: as
// asked (for the echo and for compression) and in lower case (for lookups). Both are the
// name only when plain; otherwise the general path formats the name with escapes.
type nameBuf struct {
	asked  [maxNameLen]byte
	lower  [maxNameLen]byte
	n      int  // length of both ("a.b." is 4; 0 for the root)
	labels int  // labels, the root aside
	plain  bool // every byte is one plainByte accepts
}

// text is the question name in presentation form, escapes included.
func (nb *nameBuf) text(msg []byte) (string, error) {
	switch {
	case !nb.plain:
		// Dots, backslashes or non-printable bytes in a label need escaping.
		n, _, err := dns.UnpackDomainName(msg, headerLen)
		return n, err
	case nb.n == 0:
		return ".", nil
	}
	return string(nb.asked[:nb.n]), nil
}

// parse reads a request once, for both paths: the header filter, the question, every
// record against the section counts, the OPT and its options. It fills q, the question
// name into nb, and returns the verdict (see doc.go, "Which reply for what").
func parse(msg []byte, q *query, nb *nameBuf) action {
	if len(msg) < headerLen {
		return actDrop // no id to answer to
	}
	q.hdr = parseHeader(msg)
	switch act := filter(&q.hdr); act {
	case actAccept:
	case actRefused:
		if q.hdr.qdcount == 1 {
			_, _ = parseQuestion(msg, q, nb) // echo the zone and question when it parses
		}
		return act
	default:
		return act
	}
	off, err := parseQuestion(msg, q, nb)
	if err != nil {
		return actFormErr
	}
	q.end = off
	if q.hdr.ancount|q.hdr.nscount|q.hdr.arcount != 0 {
		if q.end, err = walk(msg, off, q); err != nil {
			return actFormErr
		}
	}
	if q.ednsBad {
		// RFC 6891 Section 6.1.1: more than one OPT is FORMERR. An OPT elsewhere than
		// the additional section or not owned by the root is malformed the same way.
		return actFormErr
	}
	if q.edns {
		// RFC 6891 Section 6.1.3: a version we do not implement gets BADVERS, whatever
		// its options say.
		if q.version > 0 {
			return actBadVers
		}
		if parseOptions(msg, q) != nil {
			return actFormErr
		}
	}
	return actAccept
}

var (
	errShort    = errors.New("message too short")
	errLabel    = errors.New("bad label")
	errNameLen  = errors.New("name too long")
	errPointer  = errors.New("bad compression pointer")
	errQuestion = errors.New("question has a compression pointer")
	errOption   = errors.New("bad edns option")
	errECS      = errors.New("bad client subnet option")
)

// parseQuestion reads the question at offset 12, its name into nb. The question's name
// is the first name of the message, so any compression pointer in it points into the
// header or forward; both are invalid (RFC 1035 Section 4.1.4: a pointer refers to a prior
// occurrence), so pointers are refused here. Each byte is copied and lower-cased with one
// table load, which also tells whether the name is plain.
func parseQuestion(msg []byte, q *query, nb *nameBuf) (int, error) {
	off := headerLen
	n, labels := 0, 0
	plain := true
	for {
		if off >= len(msg) {
			return 0, errShort
		}
		c := int(msg[off])
		if c == 0 {
			off++
			break
		}
		if c&0xC0 != 0 {
			if c&0xC0 == 0xC0 {
				return 0, errQuestion
			}
			return 0, errLabel // extended label types (RFC 6891 Section 5) are obsolete
		}
		if off+1+c > len(msg) {
			return 0, errShort
		}
		if n+1+c > maxNameLen-1 { // the root label's octet makes the 255th
			return 0, errNameLen
		}
		for _, b := range msg[off+1 : off+1+c] {
			l := plainLower[b]
			if l == 0 {
				plain = false
			}
			nb.asked[n], nb.lower[n] = b, l
			n++
		}
		nb.asked[n], nb.lower[n] = '.', '.'
		n++
		off += 1 + c
		labels++
	}
	if off+4 > len(msg) {
		return 0, errShort
	}
	nb.n, nb.labels, nb.plain = n, labels, plain
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.hasQ = true
	q.qEnd = off + 4
	return q.qEnd, nil
}

// plainByte reports whether b appears unescaped in a presentation-format label.
func plainByte(b byte) bool {
	return b == '-' || b == '_' || b == '*' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

// plainLower maps each byte plainByte accepts to itself in lower case, and every other
// byte to 0: the fast path checks and folds a question byte with one load.
var plainLower = func() (t [256]byte) {
	for b := range 256 {
		if plainByte(byte(b)) {
			t[b] = byte(b)
			if 'A' <= b && b <= 'Z' {
				t[b] += 'a' - 'A'
			}
		}
	}
	return t
}()

// checkName checks the possibly compressed name at off and returns the offset past it.
// Every label is checked, those the pointers lead to included: no extended label type
// (0x40, 0x80), inside the message, at most 255 octets in all (RFC 1035 Section 2.3.4).
// A pointer must point into the message after the header and before the labels it ends
// (RFC 1035 Section 4.1.4: a prior occurrence), so that the offsets visited strictly
// decrease and no loop is possible; at most maxPointers are followed.
func checkName(msg []byte, off int) (int, error) {
	end := -1    // past the name where it is written: after its first pointer, if any
	limit := off // a pointer must point below the start of the labels it ends
	n := 0       // octets of the labels so far
	for ptrs := 0; ; {
		if off >= len(msg) {
			return 0, errShort
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return end, nil
			}
			if off+1+c > len(msg) {
				return 0, errShort
			}
			if n += 1 + c; n > maxNameLen-1 {
				return 0, errNameLen
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if ptr >= limit || ptr < headerLen {
				return 0, errPointer
			}
			if ptrs++; ptrs > maxPointers {
				return 0, errPointer
			}
			if end < 0 {
				end = off + 2
			}
			off, limit = ptr, ptr
		default:
			return 0, errLabel // extended label types (RFC 6891 Section 5) are obsolete
		}
	}
}

// walk checks the records after the question against the section counts: each owner
// name (checkName), the fixed fields and RDLENGTH inside the message. It records the OPT
// RR (RFC 6891 Section 6.1.1: at most one, in the additional section, owned by the root)
// and returns the offset past the last record. Other RDATA is framed, not read: the
// server uses nothing else a query carries.
func walk(msg []byte, off int, q *query) (int, error) {
	total := int(q.hdr.ancount) + int(q.hdr.nscount) + int(q.hdr.arcount)
	for i := 0; i < total; i++ {
		nameStart := off
		if off < len(msg) && msg[off] == 0 {
			off++ // the root, as every OPT is owned: no name to walk
		} else {
			var err error
			if off, err = checkName(msg, off); err != nil {
				return 0, err
			}
		}
		if off+10 > len(msg) {
			return 0, errShort
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		class := binary.BigEndian.Uint16(msg[off+2:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return 0, errShort
		}
		if rrtype == dns.TypeOPT {
			inAdditional := i >= int(q.hdr.ancount)+int(q.hdr.nscount)
			if q.edns || q.ednsBad || !inAdditional || off-10-nameStart != 1 || msg[nameStart] != 0 {
				q.ednsBad = true
				q.edns = false
			} else {
				q.edns = true
				q.udpSize = class
				q.version = uint8(ttl >> 16)
				q.do = ttl&0x8000 != 0
				q.optStart, q.optEnd = off, off+rdlen
			}
		}
		off += rdlen
	}
	return off, nil
}

// parseOptions reads the OPT RDATA: option framing must be exact, the ECS option valid
// and a COOKIE option of a length RFC 7873 Section 5.2.2 allows (8 octets, or 16 to 40),
// one of each. Other options are ignored (RFC 6891 Section 6.1.2: we implement none of
// them), and noted in q.optOther.
func parseOptions(msg []byte, q *query) error {
	b := msg[q.optStart:q.optEnd]
	for len(b) > 0 {
		off := q.optEnd - len(b)
		if len(b) < 4 {
			return errOption
		}
		code := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return errOption
		}
		if code == ednsOptionECS {
			if q.ecs.present {
				return errECS // one ECS option per message (RFC 7871 Section 7.1.1 talks of "the" option)
			}
			if err := parseECS(b[4:4+n], &q.ecs); err != nil {
				return err
			}
		} else if code == ednsOptionCookie {
			if q.cookieLen != 0 || n < clientCookieLen || n > clientCookieLen && n < minCookieLen || n > maxCookieLen {
				return errOption
			}
			q.cookieOff, q.cookieLen = off+4, uint8(n)
		} else {
			q.optOther = true
			q.nsidAsk = q.nsidAsk || code == ednsOptionNSID
		}
		b = b[4+n:]
	}
	return nil
}

// parseECS validates an ECS option as RFC 7871 Section 6 and 7.1.2 describe: FAMILY 1
// (IPv4) or 2 (IPv6); SOURCE PREFIX-LENGTH no longer than the address; exactly
// ceil(SOURCE/8) address bytes with the bits beyond SOURCE zero ("ADDRESS MUST be
// truncated to the number of bits indicated by the SOURCE PREFIX-LENGTH field, padding
// with 0 bits to pad to the end of the last octet needed"); SCOPE PREFIX-LENGTH 0 in
// queries. Any violation is FORMERR.
func parseECS(b []byte, e *ecsOption) error {
	if len(b) < 4 {
		return errECS
	}
	e.family = binary.BigEndian.Uint16(b)
	e.source = b[2]
	scope := b[3]
	var max int
	switch e.family {
	case 1:
		max = 32
	case 2:
		max = 128
	default:
		return errECS
	}
	if int(e.source) > max || scope != 0 {
		return errECS
	}
	addr := b[4:]
	need := (int(e.source) + 7) / 8
	if len(addr) != need {
		return errECS
	}
	copy(e.addr[:], addr)
	if rem := e.source % 8; rem != 0 && addr[need-1]&(0xFF>>rem) != 0 {
		return errECS
	}
	e.alen = need
	e.present = true
	return nil
}
