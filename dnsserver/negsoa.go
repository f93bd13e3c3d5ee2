package dnsserver

import (
	"encoding/binary"
	"strings"

	"github.com/glbdns/glbdns/zones"
)

// A negative answer (NXDOMAIN, NODATA) carries the zone's SOA, whose owner, MNAME and
// RNAME the general path compresses against the question. For a question asked in lower
// case that choice is, in the usual case, the one made for the question that is the
// origin itself, moved along by the labels the question has above the origin: every
// suffix the compressor can match lies in the origin part of the question or in the SOA
// record, and both sit that many bytes further on. negSOA is the record as written after
// the question "origin", compiled once per zone by the compressor itself; the fast path
// appends it and adds that distance to each compression pointer. The one exception is a
// question that itself ends in a suffix of MNAME or RNAME longer than the origin (the
// question "x.ns1.glb.test." and MNAME "ns1.glb.test."): there the compressor finds a
// longer match, so the template is not used and the compressor writes the record.

// negSOA is one zone's SOA record as a negative answer writes it after the question that
// is the origin.
type negSOA struct {
	wire []byte  // owner, TYPE, CLASS, negative TTL, RDLENGTH, RDATA; nil: no template
	ptrs []uint8 // offsets in wire of the compression pointers
	// tails are, for MNAME and RNAME below the origin, the name's lowest label above the
	// origin followed by the origin: a question that ends with one holds a suffix of that
	// name longer than the origin.
	tails []string
	// originLen is the length of the origin in presentation form, which is its length in
	// wire form too ("a.b." and "\x01a\x01b\x00"), and so where the origin starts in the
	// question's wire form relative to where it starts in the question's name.
	originLen int
}

// compileNegSOA builds z's template; none (wire nil) when the zone has no SOA, or names
// that the fast path does not write.
func compileNegSOA(z *zones.Zone) negSOA {
	soa, origin := z.SOA(), z.Origin()
	if soa == nil || origin == "." || !isPlainName(origin) {
		return negSOA{}
	}
	// The message after the question "origin", type and class aside: the compressor
	// writes the record exactly as appendNegativeSOA writes it on the fast path.
	c := compressor{question: origin}
	head := make([]byte, headerLen, headerLen+len(origin)+5)
	head = appendName(head, origin)
	head = append(head, 0, 0, 0, 0)
	full, ok := appendNegativeSOA(head, &c, z)
	if !ok {
		return negSOA{}
	}
	t := negSOA{wire: full[len(head):], originLen: len(origin)}
	// The pointers: in the owner, then (after TYPE, CLASS, TTL and RDLENGTH) in MNAME
	// and RNAME.
	off := t.pointerIn(0)
	off = t.pointerIn(off + 10)
	t.pointerIn(off)
	for _, name := range []string{soa.Ns, soa.Mbox} {
		if strings.HasSuffix(name, "."+origin) {
			above := name[:len(name)-len(origin)]
			t.tails = append(t.tails, above[strings.LastIndexByte(above[:len(above)-1], '.')+1:]+origin)
		}
	}
	return t
}

// pointerIn notes the compression pointer that ends the name at wire[off:], if it has
// one, and returns the offset past the name.
func (t *negSOA) pointerIn(off int) int {
	for {
		switch b := t.wire[off]; {
		case b == 0:
			return off + 1
		case b&0xC0 == 0xC0:
			t.ptrs = append(t.ptrs, uint8(off))
			return off + 2
		default:
			off += 1 + int(b)
		}
	}
}

// appendTo appends the record for the lower-case question name q of the zone, when the
// template writes what the compressor would; ok is false otherwise, with msg unchanged.
func (t *negSOA) appendTo(msg []byte, q string) ([]byte, bool) {
	if t.wire == nil || len(q) < t.originLen {
		return msg, false
	}
	for _, tail := range t.tails {
		if strings.HasSuffix(q, tail) {
			return msg, false
		}
	}
	shift := uint16(len(q) - t.originLen)
	start := len(msg)
	msg = append(msg, t.wire...)
	for _, p := range t.ptrs {
		at := msg[start+int(p):]
		binary.BigEndian.PutUint16(at, binary.BigEndian.Uint16(at)+shift)
	}
	return msg, true
}

// appendName appends the uncompressed wire form of a plain, fully qualified name.
func appendName(b []byte, name string) []byte {
	var c compressor // empty: every label is written
	b, _ = c.writeName(b, name)
	return b
}
