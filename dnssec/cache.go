package dnssec

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
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
// the window, and the RRset in canonical form (owner in lower case, records sorted).
func cacheKey(s *Signer, rrset []dns.RR, now time.Time) [sha256.Size]byte {
	h := sha256.New()
	inc, exp := s.Times(now)
	var b [16]byte
	binary.BigEndian.PutUint32(b[0:], inc)
	binary.BigEndian.PutUint32(b[4:], exp)
	binary.BigEndian.PutUint64(b[8:], s.id)
	h.Write(b[:])
	recs := make([]string, len(rrset))
	for i, rr := range rrset {
		// The presentation form: the header (owner, TTL, class, type) in lower case, the
		// canonical form of the owner; the data as it is, for its case may matter (TXT).
		// Names in the data that differ in case only are cached apart, each correct.
		hdr, full := rr.Header().String(), rr.String()
		recs[i] = strings.ToLower(hdr) + full[len(hdr):]
	}
	slices.Sort(recs)
	for _, r := range recs {
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
