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
type Cache struct {
	lru    *lru.Cache[[sha256.Size]byte, []dns.RR]
	flight singleflight.Group
	// Hits and Misses count the lookups (a miss signs).
	Hits, Misses atomic.Uint64
}

// NewCache makes a cache of size entries (0: DefaultCacheSize).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c, _ := lru.New[[sha256.Size]byte, []dns.RR](size) // an error only for size <= 0
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
	key := cacheKey(s, rrset, now)
	if sigs, ok := c.lru.Get(key); ok {
		c.Hits.Add(1)
		return sigs, nil
	}
	c.Misses.Add(1)
	v, err, _ := c.flight.Do(string(key[:]), func() (any, error) {
		if sigs, ok := c.lru.Get(key); ok {
			return sigs, nil // signed by a flight that ended after this one looked
		}
		sigs, err := s.Sign(rrset, now)
		if err == nil {
			c.lru.Add(key, sigs)
		}
		return sigs, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]dns.RR), nil
}

// cacheKey hashes what an RRset's signatures depend on: the signer (its keys and times),
// the window, and the RRset in canonical form: the owner in lower case, the type, class
// and TTL, and the records' data sorted.
func cacheKey(s *Signer, rrset []dns.RR, now time.Time) [sha256.Size]byte {
	kb := keyPool.Get().(*keyBuf)
	defer keyPool.Put(kb)
	inc, exp := s.Times(now)
	h0 := rrset[0].Header()
	b := kb.b[:0]
	b = binary.BigEndian.AppendUint32(b, inc)
	b = binary.BigEndian.AppendUint32(b, exp)
	b = binary.BigEndian.AppendUint64(b, s.id)
	b = binary.BigEndian.AppendUint16(b, h0.Rrtype)
	b = binary.BigEndian.AppendUint16(b, h0.Class)
	b = binary.BigEndian.AppendUint32(b, h0.Ttl)
	for i := 0; i < len(h0.Name); i++ {
		c := h0.Name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, 0)
	kb.ends = kb.ends[:0]
	start := len(b)
	for _, rr := range rrset {
		b = appendData(b, rr)
		kb.ends = append(kb.ends, len(b))
	}
	// The records' data in order: sorted by content, so that the order the answer lists
	// them in does not matter. A few records: an insertion sort of their spans.
	kb.spans = kb.spans[:0]
	from := start
	for _, end := range kb.ends {
		kb.spans = append(kb.spans, [2]int{from, end})
		from = end
	}
	spans := kb.spans
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && bytes.Compare(b[spans[j][0]:spans[j][1]], b[spans[j-1][0]:spans[j-1][1]]) < 0; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	h := sha256.New()
	h.Write(b[:start])
	for _, sp := range spans {
		var n [2]byte
		binary.BigEndian.PutUint16(n[:], uint16(sp[1]-sp[0]))
		h.Write(n[:])
		h.Write(b[sp[0]:sp[1]])
	}
	kb.b = b
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// appendData appends what tells rr's data apart: the address of an A or AAAA, the target
// of a CNAME (the answers of services), the fields of an NSEC or SOA (negative answers),
// else the presentation form of the data (its
// case kept: it may matter, as in a TXT; names in it that differ in case only are cached
// apart, each correct).
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

// keyBuf is cacheKey's scratch, pooled.
type keyBuf struct {
	b     []byte
	ends  []int
	spans [][2]int
}

var keyPool = sync.Pool{New: func() any { return &keyBuf{b: make([]byte, 0, 256)} }}
