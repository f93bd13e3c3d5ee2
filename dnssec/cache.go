package dnssec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// DefaultCacheSize is the number of RRsets whose signatures a Cache keeps when NewCache is
// given 0: at a few hundred bytes each, some tens of MB.
const DefaultCacheSize = 100_000

// Cache keeps the signatures made online so that an RRset answered again within the hour
// is not signed again: keyed by the RRset in canonical form (so the order an answer lists
// its records in does not matter, nor the case of its owner), the signer and the hour
// window the signatures are made for. It is bounded in entries and evicts the least
// recently used one, so that a flood of distinct answers costs signatures, never
// memory, and never clears the cache whole (PowerDNS's cache, cleared when full, makes
// every answer sign at once). Concurrent requests for one RRset sign it once.
//
// Each entry holds the RRSIGs and their wire form for a reply whose question is their
// owner (Wire), so that the DNS server's fast path appends them without packing.
type Cache struct {
	lru    *lru.Cache[CacheKey, *entry]
	flight singleflight.Group
	// Hits and Misses count the lookups (a miss signs).
	Hits, Misses atomic.Uint64
}

// CacheKey identifies an RRset's signatures in a Cache (KeyBuilder).
type CacheKey [sha256.Size]byte

type entry struct {
	sigs []dns.RR
	wire []byte // every RRSIG but its owner: TYPE, CLASS, TTL, RDLENGTH, RDATA, in turn
}

// NewCache makes a cache of size entries (0: DefaultCacheSize).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c, _ := lru.New[CacheKey, *entry](size) // an error only for size <= 0
	return &Cache{lru: c}
}

// Len is the number of RRsets cached.
func (c *Cache) Len() int { return c.lru.Len() }

// Sign is s.Sign(rrset, now), from the cache when the same RRset was signed by s in the
// same window. The RRSIGs returned are shared: the caller must not modify them.
func (c *Cache) Sign(s *Signer, rrset []dns.RR, now time.Time) ([]dns.RR, error) {
	if c == nil || len(rrset) == 0 {
		return s.Sign(rrset, now)
	}
	e, err := c.get(s, keyOf(s, rrset, now), func() []dns.RR { return rrset }, now)
	if err != nil {
		return nil, err
	}
	return e.sigs, nil
}

// Wire is the RRSIGs of the RRset of key, each but its owner (TYPE, CLASS, TTL, RDLENGTH,
// RDATA), concatenated, and their number: what a reply appends after a compression
// pointer to their owner for each. On a miss, rrset makes the RRset (the caller
// allocates only then) and it is signed. The bytes are shared: read only.
func (c *Cache) Wire(s *Signer, key CacheKey, rrset func() []dns.RR, now time.Time) ([]byte, int, error) {
	e, err := c.get(s, key, rrset, now)
	if err != nil {
		return nil, 0, err
	}
	return e.wire, len(e.sigs), nil
}

func (c *Cache) get(s *Signer, key CacheKey, rrset func() []dns.RR, now time.Time) (*entry, error) {
	if e, ok := c.lru.Get(key); ok {
		c.Hits.Add(1)
		return e, nil
	}
	c.Misses.Add(1)
	v, err, _ := c.flight.Do(string(key[:]), func() (any, error) {
		if e, ok := c.lru.Get(key); ok {
			return e, nil // signed by a flight that ended after this one looked
		}
		sigs, err := s.Sign(rrset(), now)
		if err != nil {
			return nil, err
		}
		e := &entry{sigs: sigs}
		if e.wire, err = sigWire(sigs); err != nil {
			return nil, err
		}
		c.lru.Add(key, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

// sigWire packs sigs without their owners (sigWire's layout, see entry).
func sigWire(sigs []dns.RR) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1024)
	for _, rr := range sigs {
		sig := *rr.(*dns.RRSIG) // packing sets Rdlength: not on the shared one
		n, err := dns.PackRR(&sig, buf, 0, nil, false)
		if err != nil {
			return nil, err
		}
		owner, err := dns.PackDomainName(sig.Hdr.Name, buf[n:], 0, nil, false)
		if err != nil {
			return nil, err
		}
		out = append(out, buf[owner:n]...)
	}
	return out, nil
}

// keyOf is the CacheKey of rrset's signatures by s at now.
func keyOf(s *Signer, rrset []dns.RR, now time.Time) CacheKey {
	kb := keyPool.Get().(*KeyBuilder)
	defer keyPool.Put(kb)
	h0 := rrset[0].Header()
	kb.Begin(s, now, h0.Name, h0.Rrtype, h0.Class, h0.Ttl)
	for _, rr := range rrset {
		kb.b = appendData(kb.b, rr)
		kb.ends = append(kb.ends, len(kb.b))
	}
	return kb.Sum()
}

// KeyBuilder makes the CacheKey of an RRset's signatures from its parts, without an
// allocation once grown: what they depend on, the signer (its keys and times), the
// window, and the RRset in canonical form: the owner in lower case, the type, class and
// TTL, and the records' data sorted. Not safe for concurrent use; GetKeyBuilder and
// PutKeyBuilder pool them.
type KeyBuilder struct {
	b     []byte
	ends  []int
	spans [][2]int
	out   []byte
}

var keyPool = sync.Pool{New: func() any { return &KeyBuilder{b: make([]byte, 0, 256), out: make([]byte, 0, 256)} }}

// GetKeyBuilder takes a KeyBuilder from the pool; PutKeyBuilder gives it back.
func GetKeyBuilder() *KeyBuilder   { return keyPool.Get().(*KeyBuilder) }
func PutKeyBuilder(kb *KeyBuilder) { keyPool.Put(kb) }

// Begin starts the key of an RRset of owner, type, class and TTL signed by s at now.
func (kb *KeyBuilder) Begin(s *Signer, now time.Time, owner string, rrtype, class uint16, ttl uint32) {
	inc, exp := s.Times(now)
	b := kb.b[:0]
	b = binary.BigEndian.AppendUint32(b, inc)
	b = binary.BigEndian.AppendUint32(b, exp)
	b = binary.BigEndian.AppendUint64(b, s.id)
	b = binary.BigEndian.AppendUint16(b, rrtype)
	b = binary.BigEndian.AppendUint16(b, class)
	b = binary.BigEndian.AppendUint32(b, ttl)
	for i := 0; i < len(owner); i++ {
		c := owner[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	kb.b = append(b, 0)
	kb.ends = append(kb.ends[:0], len(kb.b))
}

// Add adds a record's data, as appendData makes it: the address of an A or AAAA.
func (kb *KeyBuilder) Add(data []byte) {
	kb.b = append(kb.b, data...)
	kb.ends = append(kb.ends, len(kb.b))
}

// Sum is the key of what Begin and Add were given.
func (kb *KeyBuilder) Sum() CacheKey {
	b := kb.b
	start := kb.ends[0]
	// The records' data in order: sorted by content, so that the order the answer lists
	// them in does not matter. A few records: an insertion sort of their spans.
	kb.spans = kb.spans[:0]
	for i, end := range kb.ends[1:] {
		kb.spans = append(kb.spans, [2]int{kb.ends[i], end})
	}
	spans := kb.spans
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && bytes.Compare(b[spans[j][0]:spans[j][1]], b[spans[j-1][0]:spans[j-1][1]]) < 0; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	out := append(kb.out[:0], b[:start]...)
	for _, sp := range spans {
		out = binary.BigEndian.AppendUint16(out, uint16(sp[1]-sp[0]))
		out = append(out, b[sp[0]:sp[1]]...)
	}
	kb.out = out
	return sha256.Sum256(out)
}

// appendData appends what tells rr's data apart: the address of an A or AAAA, the target
// of a CNAME (the answers of services), the fields of an NSEC or SOA (negative answers),
// else the presentation form of the data (its case kept: it may matter, as in a TXT;
// names in it that differ in case only are cached apart, each correct).
func appendData(b []byte, rr dns.RR) []byte {
	switch r := rr.(type) {
	case *dns.A:
		return append(b, r.A.To4()...)
	case *dns.AAAA:
		return append(b, r.AAAA.To16()...)
	case *dns.CNAME:
		return append(b, r.Target...)
	case *dns.NSEC: // a denial, made for each negative answer
		b = append(append(b, r.NextDomain...), 0)
		for _, t := range r.TypeBitMap {
			b = binary.BigEndian.AppendUint16(b, t)
		}
		return b
	case *dns.SOA: // every negative answer's
		b = append(append(append(b, r.Ns...), 0), r.Mbox...)
		for _, v := range [...]uint32{r.Serial, r.Refresh, r.Retry, r.Expire, r.Minttl} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}
	hdr, full := rr.Header().String(), rr.String()
	return append(b, full[len(hdr):]...)
}
