package dnssec

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Validity of online signatures, as the DNS server makes them for each answer.
const (
	// DefaultValidity is how long a signature is valid after the hour it was made in.
	// Resolvers cache an answer for its TTL at most, so a few days only bound how long a
	// stolen signature could be replayed against a clock that drifted.
	DefaultValidity = 4 * 24 * time.Hour
	// Skew is how far the inception lies before the hour a signature is made in, so that
	// a validator whose clock is behind ours still takes it.
	Skew = time.Hour
	// window is the period signatures are made for: every signature made within one hour
	// has the same inception and expiration, so that the same RRset signed twice in that
	// hour is the same RRSIG (a cache of signatures can keep it).
	window = time.Hour
)

// DefaultDNSKEYTTL is the TTL of the key RRsets: how long a rollover waits between its
// steps (docs/dnssec.md).
const DefaultDNSKEYTTL = 3600

// Config tunes a Signer.
type Config struct {
	// Validity, 0: DefaultValidity.
	Validity time.Duration
	// Jitter, when set, adds up to that much to every expiration, drawn once per Signer:
	// nodes that started apart do not all re-sign in the same instant (0: a tenth of
	// the validity; negative: none).
	Jitter time.Duration
	// DNSKEYTTL is the TTL of the DNSKEY, CDS and CDNSKEY RRsets (0: DefaultDNSKEYTTL).
	DNSKEYTTL uint32
}

// Signer signs a zone's RRsets online: the key-signing keys sign the DNSKEY, CDS and
// CDNSKEY RRsets, the zone-signing keys every other RRset; a combined signing key (a key
// with the SEP flag and no zone-signing key beside it) signs everything. Every key of
// each role signs (two during a rollover by pre-publication: a validator takes either).
type Signer struct {
	zone       string
	ksks, zsks []*Key
	keys       []*Key // every key, for the DNSKEY RRset
	validity   time.Duration
	jitter     time.Duration
	keyTTL     uint32
	// id tells Signers apart in a Cache: a hash of what their signatures depend on, so
	// that the Signer a reload makes from the same keys shares the cached signatures.
	id uint64
}

// processSeed makes the jitter of each zone's expirations differ from node to node, and
// stay the same across reloads in one process (so do the signatures a Cache holds).
var processSeed = func() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}()

// NewSigner makes the Signer of zone with its keys.
func NewSigner(zone string, keys []*Key, cfg Config) (*Signer, error) {
	zone = dns.CanonicalName(zone)
	if len(keys) == 0 {
		return nil, fmt.Errorf("zone %s: no DNSSEC key", zone)
	}
	s := &Signer{zone: zone, keys: keys, validity: cfg.Validity, keyTTL: cfg.DNSKEYTTL}
	if s.validity <= 0 {
		s.validity = DefaultValidity
	}
	if s.keyTTL == 0 {
		s.keyTTL = DefaultDNSKEYTTL
	}
	h := fnv.New64a()
	h.Write([]byte(zone))
	switch seed := h.Sum64() ^ processSeed; {
	case cfg.Jitter == 0:
		s.jitter = spread(seed, s.validity/10)
	case cfg.Jitter > 0:
		s.jitter = spread(seed, cfg.Jitter)
	}
	for _, k := range keys {
		if k.DNSKEY.Hdr.Name != zone {
			return nil, fmt.Errorf("zone %s: key %d is for %s", zone, k.Tag(), k.DNSKEY.Hdr.Name)
		}
		if k.KSK() {
			s.ksks = append(s.ksks, k)
		} else {
			s.zsks = append(s.zsks, k)
		}
	}
	if len(s.ksks) == 0 {
		return nil, fmt.Errorf("zone %s: no key-signing key (flags 257): the parent's DS must name one", zone)
	}
	// Every RRset is signed with every algorithm of the DNSKEY set (RFC 4035 Section
	// 2.2, RFC 6840 Section 5.11): an algorithm with no zone-signing key signs with its
	// key-signing keys (a combined key), one with no key-signing key signs the key
	// RRsets with its zone-signing keys.
	zsks, ksks := s.zsks, s.ksks
	for _, k := range ksks {
		if !hasAlgorithm(zsks, k.DNSKEY.Algorithm) {
			s.zsks = append(s.zsks, k)
		}
	}
	for _, k := range zsks {
		if !hasAlgorithm(ksks, k.DNSKEY.Algorithm) {
			s.ksks = append(s.ksks, k)
		}
	}
	id := fnv.New64a()
	fmt.Fprintf(id, "%s %d %d %d", zone, s.validity, s.jitter, s.keyTTL)
	for _, k := range keys {
		fmt.Fprintf(id, " %d %s", k.DNSKEY.Flags, k.DNSKEY.PublicKey)
	}
	s.id = id.Sum64()
	return s, nil
}

// hasAlgorithm reports whether one of keys has algorithm alg.
func hasAlgorithm(keys []*Key, alg uint8) bool {
	for _, k := range keys {
		if k.DNSKEY.Algorithm == alg {
			return true
		}
	}
	return false
}

// spread is seed as a duration in [0, max), whole seconds (signature times are).
func spread(seed uint64, max time.Duration) time.Duration {
	if max < time.Second {
		return 0
	}
	return time.Duration(seed%uint64(max/time.Second)) * time.Second
}

// Zone is the zone's origin.
func (s *Signer) Zone() string { return s.zone }

// Keys are the zone's keys.
func (s *Signer) Keys() []*Key { return s.keys }

// DNSKEYs is the apex's DNSKEY RRset: every key.
func (s *Signer) DNSKEYs() []dns.RR {
	out := make([]dns.RR, len(s.keys))
	for i, k := range s.keys {
		c := *k.DNSKEY
		c.Hdr.Ttl = s.keyTTL
		out[i] = &c
	}
	return out
}

// CDSs and CDNSKEYs are the apex's CDS and CDNSKEY RRsets (RFC 7344): the key-signing
// keys, for a parent that follows them.
func (s *Signer) CDSs() []dns.RR {
	var out []dns.RR
	for _, k := range s.ksks {
		ds := k.DS().ToCDS()
		ds.Hdr.Ttl = s.keyTTL
		out = append(out, ds)
	}
	return out
}

func (s *Signer) CDNSKEYs() []dns.RR {
	var out []dns.RR
	for _, k := range s.ksks {
		c := k.DNSKEY.ToCDNSKEY()
		c.Hdr.Ttl = s.keyTTL
		out = append(out, c)
	}
	return out
}

// Times are the inception and expiration of a signature made at now.
func (s *Signer) Times(now time.Time) (inception, expiration uint32) {
	at := now.Truncate(window)
	return uint32(at.Add(-Skew).Unix()), uint32(at.Add(s.validity + s.jitter).Unix())
}

// ErrEmpty is a Sign of no records.
var ErrEmpty = errors.New("dnssec: sign an empty RRset")

// Sign returns the RRSIGs of rrset (one owner, type and class; in any order: the
// signature is over the canonical form) made at now, one per key of the role that signs
// its type. An RRset whose owner is a wildcard ("*.example.") is signed as such, with the
// label count that tells a validator it was expanded: the caller renames the records and
// the RRSIGs to the name asked.
func (s *Signer) Sign(rrset []dns.RR, now time.Time) ([]dns.RR, error) {
	if len(rrset) == 0 {
		return nil, ErrEmpty
	}
	keys := s.zsks
	switch rrset[0].Header().Rrtype {
	case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		keys = s.ksks
	}
	inc, exp := s.Times(now)
	out := make([]dns.RR, 0, len(keys))
	for _, k := range keys {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: rrset[0].Header().Ttl}, Algorithm: k.DNSKEY.Algorithm,
			Inception: inc, Expiration: exp, KeyTag: k.Tag(), SignerName: s.zone}
		if err := sig.Sign(k.Signer, rrset); err != nil {
			return nil, fmt.Errorf("sign %s %s: %w", rrset[0].Header().Name, dns.TypeToString[rrset[0].Header().Rrtype], err)
		}
		out = append(out, sig)
	}
	return out, nil
}

// Denial is the NSEC of compact denial of existence (RFC 9824) at owner: its next name
// is the name immediately after owner ("\000.owner"), so that it covers no other name,
// and its types are those at owner with RRSIG and NSEC. A name that does not exist has
// only NXNAME besides: the answer is NODATA (NOERROR) with this NSEC, whose NXNAME tells
// a validator that reads it that the name is absent. ttl is the negative TTL (RFC 9077:
// the lesser of the SOA's TTL and MINIMUM).
func Denial(owner string, types []uint16, ttl uint32) *dns.NSEC {
	bitmap := make([]uint16, 0, len(types)+3)
	bitmap = append(bitmap, types...)
	bitmap = append(bitmap, dns.TypeRRSIG, dns.TypeNSEC)
	return &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
		NextDomain: "\\000." + owner, TypeBitMap: slices.Compact(slices.Sorted(slices.Values(bitmap)))}
}
