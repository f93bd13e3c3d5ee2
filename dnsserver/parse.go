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
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// Wire limits of names (RFC 1035 Section 2.3.4).
const (
	maxLabelLen = 63
	maxNameLen  = 255
)

// ednsOptionECS is the EDNS Client Subnet option code (RFC 7871 Section 6).
const ednsOptionECS = 8

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
	actAccept action = iota
	actDrop
	actFormErr
	actNotImp
	actRefused
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

// query is what the server needs from a request, read straight from the wire.
type query struct {
	hdr    header
	qname  string // as asked (case preserved), presentation format, fully qualified
	qtype  uint16
	qclass uint16
	hasQ   bool // the question parsed (it can be echoed in an error reply)

	// EDNS(0), RFC 6891.
	edns     bool   // one well-formed OPT in the additional section
	ednsBad  bool   // more than one OPT, OPT outside additional, or non-root owner
	udpSize  uint16 // requester's payload size (raw)
	version  uint8
	do       bool // DNSSEC OK (RFC 3225 Section 3)
	optStart int  // offset of the OPT RDATA
	optEnd   int

	// ECS, RFC 7871.
	ecs ecsOption
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

var (
	errShort    = errors.New("message too short")
	errLabel    = errors.New("bad label")
	errNameLen  = errors.New("name too long")
	errPointer  = errors.New("bad compression pointer")
	errQuestion = errors.New("question has a compression pointer")
	errOption   = errors.New("bad edns option")
	errECS      = errors.New("bad client subnet option")
)

// parseQuestion reads the question at offset 12. The question's name is the first name of
// the message, so any compression pointer in it points into the header or forward; both
// are invalid (RFC 1035 Section 4.1.4: a pointer refers to a prior occurrence), so pointers
// are refused here, which also rules out loops.
func parseQuestion(msg []byte, q *query) (int, error) {
	off := headerLen
	nameLen := 0
	simple := true
	for {
		if off >= len(msg) {
			return 0, errShort
		}
		c := int(msg[off])
		if c == 0 {
			off++
			nameLen++
			break
		}
		if c&0xC0 != 0 {
			if c&0xC0 == 0xC0 {
				return 0, errQuestion
			}
			return 0, errLabel // extended label types (RFC 6891 Section 5) are obsolete
		}
		if c > maxLabelLen {
			return 0, errLabel
		}
		if off+1+c > len(msg) {
			return 0, errShort
		}
		for _, b := range msg[off+1 : off+1+c] {
			if !plainByte(b) {
				simple = false
			}
		}
		nameLen += 1 + c
		if nameLen > maxNameLen {
			return 0, errNameLen
		}
		off += 1 + c
	}
	if off+4 > len(msg) {
		return 0, errShort
	}
	if simple {
		q.qname = plainName(msg[headerLen:off])
	} else {
		// Names with dots, backslashes or non-printable bytes in a label need escaping;
		// leave it to miekg.
		n, _, err := dns.UnpackDomainName(msg, headerLen)
		if err != nil {
			return 0, err
		}
		q.qname = n
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.hasQ = true
	return off + 4, nil
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

// plainName turns an uncompressed wire name of plain bytes into "a.b.c.".
func plainName(wire []byte) string {
	if len(wire) == 1 {
		return "."
	}
	buf := make([]byte, 0, len(wire))
	for i := 0; wire[i] != 0; {
		c := int(wire[i])
		buf = append(buf, wire[i+1:i+1+c]...)
		buf = append(buf, '.')
		i += 1 + c
	}
	return string(buf)
}

// skipName steps over a possibly compressed name starting at off. Pointers must point
// backwards, before the name itself (RFC 1035 Section 4.1.4), and stay inside the message;
// the names they lead to are checked by the full unpack.
func skipName(msg []byte, off int) (int, error) {
	start := off
	n := 0
	for {
		if off >= len(msg) {
			return 0, errShort
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			n += 1 + c
			if n > maxNameLen {
				return 0, errNameLen
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if ptr >= start || ptr < headerLen {
				return 0, errPointer
			}
			return off + 2, nil
		default:
			return 0, errLabel
		}
	}
}

// scan walks the sections after the question, checks their framing against the counts,
// and records the OPT RR (RFC 6891 Section 6.1.1: at most one, in the additional section,
// owned by the root).
func scan(msg []byte, off int, q *query) error {
	total := int(q.hdr.ancount) + int(q.hdr.nscount) + int(q.hdr.arcount)
	for i := 0; i < total; i++ {
		nameStart := off
		var err error
		off, err = skipName(msg, off)
		if err != nil {
			return err
		}
		if off+10 > len(msg) {
			return errShort
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		class := binary.BigEndian.Uint16(msg[off+2:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return errShort
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
	return nil
}

// parseOptions reads the OPT RDATA: option framing must be exact and the ECS option valid.
// Unknown options are ignored (RFC 6891 Section 6.1.2).
func parseOptions(msg []byte, q *query) error {
	b := msg[q.optStart:q.optEnd]
	for len(b) > 0 {
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
