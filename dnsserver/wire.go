package dnsserver

// Wire writing for the fast path: a name compressor that makes exactly the choices
// miekg/dns makes when it packs a message with Compress = true, so that a reply written
// here is byte-for-byte the reply the general path packs.
//
// miekg's algorithm (msg.go, packDomainName), restated: every name written with
// compression enabled is looked up label by label from its start; the first suffix found
// in the map (the longest one) becomes a pointer to where it was first written and the
// name ends there. Each suffix not found is recorded at the offset its label is written
// at, when that offset is below 0x4000 (a pointer has 14 bits). The root label is never
// looked up nor recorded. The map is keyed by the presentation-format suffix, case
// included: "WWW.glb.test." does not match "www.glb.test.", which is why the owner of a
// static record (stored lower case) is written out in part when the question was asked in
// mixed case, and why the fast path needs this compressor rather than a constant 0xC00C.

// maxCompEntries bounds the compressor's table. A fast-path reply holds the question,
// the answer owners and at most one SOA (owner, MNAME, RNAME): a few dozen suffixes at
// most for ordinary names. A reply that would need more goes to the general path.
const maxCompEntries = 48

// maxCompOffset is the first offset a compression pointer cannot reach (RFC 1035 Section
// 4.1.4: 14 bits); miekg calls it maxCompressionOffset.
const maxCompOffset = 1 << 14

// compressor is the fast path's compression map: a small table scanned linearly, which
// for a handful of entries beats hashing and never allocates.
//
// The question (set with the question field) is recorded lazily. The first name miekg
// looks up is the whole name, and the question is the first entry recorded, at offset
// 12: a name equal to the question is therefore the pointer 0xC00C, and writeName says
// so without recording anything. That is every owner of a service answer and of an exact
// static hit asked in lower case. Any other name records the question's suffixes first
// (c.n == 0 tells that they are not recorded yet), then compresses as miekg does.
type compressor struct {
	question string // the question name as asked, written at offset 12; "" for none
	n        int
	names    [maxCompEntries]string
	offs     [maxCompEntries]uint16
}

func (c *compressor) reset() {
	clear(c.names[:c.n])
	c.n = 0
	c.question = ""
}

func (c *compressor) find(s string) (int, bool) {
	for i := 0; i < c.n; i++ {
		if c.names[i] == s {
			return int(c.offs[i]), true
		}
	}
	return 0, false
}

// insert records s at off; it reports false when the table is full (the caller gives
// the query to the general path rather than compress differently from it).
func (c *compressor) insert(s string, off int) bool {
	if c.n == maxCompEntries {
		return false
	}
	c.names[c.n], c.offs[c.n] = s, uint16(off)
	c.n++
	return true
}

// writeName appends name (presentation format, fully qualified, without escapes: the
// caller checked with plainName) to msg, compressed as miekg would. ok is false when the
// compressor's table overflowed.
func (c *compressor) writeName(msg []byte, name string) ([]byte, bool) {
	if name == "." {
		return append(msg, 0), true
	}
	if c.question != "" {
		if name == c.question {
			return append(msg, 0xC0, headerLen), true
		}
		if c.n == 0 && !c.addQuestion(c.question) {
			return msg, false
		}
	}
	begin := 0
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		suffix := name[begin:]
		if p, ok := c.find(suffix); ok {
			return append(msg, byte(0xC0|p>>8), byte(p)), true
		}
		if len(msg) < maxCompOffset && !c.insert(suffix, len(msg)) {
			return msg, false
		}
		msg = append(msg, byte(i-begin))
		msg = append(msg, name[begin:i]...)
		begin = i + 1
	}
	return append(msg, 0), true
}

// addQuestion records the suffixes of the question name, written at offset 12, as
// miekg's packing of the question does; writeName calls it when it first needs them.
func (c *compressor) addQuestion(name string) bool {
	off := headerLen
	begin := 0
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		if !c.insert(name[begin:], off) {
			return false
		}
		off += 1 + i - begin
		begin = i + 1
	}
	return true
}

// isPlainName reports whether a presentation-format name needs no escaping, so that its
// wire form is its labels as written: the only names the fast path writes itself.
func isPlainName(s string) bool {
	if s == "" || s[len(s)-1] != '.' {
		return false
	}
	if s == "." {
		return true
	}
	label := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '.' {
			if label == 0 || label > maxLabelLen {
				return false
			}
			label = 0
			continue
		}
		if !plainByte(b) {
			return false
		}
		label++
	}
	return len(s) <= maxNameLen
}

func appendUint16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
