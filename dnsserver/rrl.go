package dnsserver

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Response-rate limiting, in the manner of Knot's and NSD's RRL: an authoritative server
// answers anyone, so a forged source address turns it into an amplifier aimed at that
// address. Each UDP reply is counted in a token bucket keyed by the client's network
// (RRLConfig.IPv4Prefix, IPv6Prefix) and by what the reply is:
//   - an answer or a referral: the question's name and type, so that one name flooded does
//     not limit the others;
//   - NXDOMAIN, NODATA and an answer synthesized from a wildcard: the zone, so that
//     random names (a "water torture", or names a wildcard answers) all count as one;
//   - an error (SERVFAIL, REFUSED, FORMERR, NOTIMP, BADVERS, BADCOOKIE): one bucket per
//     network.
//
// A bucket holds Rate tokens and gets Rate back each second; a reply with no token left
// is limited: every Slip-th limited reply is sent as an empty TC=1 reply, so that a real
// client behind the forged address retries over TCP (which proves its address) and still
// gets its answer; the others are dropped. TCP replies are never limited, nor replies to
// a query with a valid server cookie (cookie.go: the client receives what is sent to its
// address), nor clients in RRLConfig.Exempt.
//
// The table is a fixed array of buckets, each one atomic word: a 24-bit fingerprint of
// its key, the second it was last filled (8 bits) and its tokens (32 bits), so that a
// query updates it with one compare-and-swap and no lock. A key that lands on a bucket
// held by another takes it over, full: collisions let replies through, they never limit
// a key that did not earn it. Keys are hashed with a seed drawn at start, so that no one
// can aim their queries at another's bucket.

// RRLConfig configures response-rate limiting (Config.RRL). Rate 0 turns it off.
type RRLConfig struct {
	// Rate is the replies per second one client network gets for one response before
	// they are limited, and the burst it may have at once. At most 16,777,215.
	Rate int
	// Slip sends every Slip-th limited reply as an empty TC=1 reply and drops the others;
	// 0 drops them all, 1 truncates them all.
	Slip int
	// IPv4Prefix and IPv6Prefix group client addresses into networks. Default 24 and 56.
	IPv4Prefix, IPv6Prefix int
	// Exempt clients are never limited (the operator's monitoring, a resolver of their
	// own).
	Exempt []netip.Prefix
	// TableSize is the number of buckets, rounded up to a power of two. Default 65536 (512
	// KiB): as many clients as that can be limited at once before collisions start to
	// let some through.
	TableSize int
}

// RRL defaults, the daemon's flags'.
const (
	DefaultRRLRate      = 100
	DefaultRRLSlip      = 2
	DefaultRRLTableSize = 1 << 16
	maxRRLRate          = 1<<24 - 1
)

// rrl is the limiter; nil when off.
type rrl struct {
	rate, slip   uint32
	mask4        uint32
	mask6hi      uint64
	mask6lo      uint64
	exempt       []netip.Prefix
	seed         maphash.Seed
	salt         uint64
	table        []atomic.Uint64
	limitedCount atomic.Uint32 // for Slip
}

func newRRL(c RRLConfig) *rrl {
	if c.Rate <= 0 {
		return nil
	}
	if c.IPv4Prefix <= 0 || c.IPv4Prefix > 32 {
		c.IPv4Prefix = 24
	}
	if c.IPv6Prefix <= 0 || c.IPv6Prefix > 128 {
		c.IPv6Prefix = 56
	}
	if c.TableSize <= 0 {
		c.TableSize = DefaultRRLTableSize
	}
	size := 1 << bits.Len(uint(c.TableSize-1))
	r := &rrl{
		rate:   uint32(min(c.Rate, maxRRLRate)),
		slip:   uint32(max(c.Slip, 0)),
		mask4:  ^uint32(0) << (32 - c.IPv4Prefix),
		exempt: c.Exempt,
		seed:   maphash.MakeSeed(),
		table:  make([]atomic.Uint64, size),
	}
	r.salt = maphash.Comparable(r.seed, uint64(0x9e3779b97f4a7c15))
	r.mask6hi = ^uint64(0) << max(0, 64-c.IPv6Prefix)
	if c.IPv6Prefix > 64 {
		r.mask6lo = ^uint64(0) << (128 - c.IPv6Prefix)
	}
	return r
}

// Response classes: what a bucket counts besides the network.
const (
	rrlAnswer = iota + 1
	rrlNoData
	rrlNXDomain
	rrlError
	rrlReferral
	rrlWildcard
)

// rrlVerdict is what becomes of a reply.
type rrlVerdict uint8

const (
	rrlPass rrlVerdict = iota
	rrlDrop
	rrlSlip
)

// check counts the reply msg to q (rcode, from the zone of metrics slot zoneSlot) from
// client at now, and says whether it is sent, dropped or slipped.
func (r *rrl) check(q *query, client netip.Addr, zoneSlot, rcode int, msg []byte, now uint32) rrlVerdict {
	for _, p := range r.exempt {
		if p.Contains(client) {
			return rrlPass
		}
	}
	if !r.take(r.key(q, client, zoneSlot, rcode, msg), now) {
		return rrlPass
	}
	if r.slip > 0 && r.limitedCount.Add(1)%r.slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// key hashes the client's network and the response class of msg.
func (r *rrl) key(q *query, client netip.Addr, zoneSlot, rcode int, msg []byte) uint64 {
	var hi, lo uint64
	if client.Is4() {
		a := client.As4()
		lo = uint64(binary.BigEndian.Uint32(a[:]) & r.mask4)
	} else {
		a := client.As16()
		hi = binary.BigEndian.Uint64(a[:8])&r.mask6hi | 1 // never an IPv4 network's
		lo = binary.BigEndian.Uint64(a[8:]) & r.mask6lo
	}
	var class, what uint64
	an := binary.BigEndian.Uint16(msg[6:])
	aa := binary.BigEndian.Uint16(msg[2:])&flagAA != 0
	switch {
	case rcode == dns.RcodeSuccess && q.wildcard:
		class, what = rrlWildcard, uint64(zoneSlot)
	case rcode == dns.RcodeSuccess && an > 0, rcode == dns.RcodeSuccess && !aa:
		class = rrlAnswer
		if an == 0 {
			class = rrlReferral
		}
		if q.name != nil && q.hasQ {
			what = maphash.Bytes(r.seed, q.name.lower[:q.name.n]) ^ uint64(q.qtype)
		}
	case rcode == dns.RcodeSuccess:
		class, what = rrlNoData, uint64(zoneSlot)
	case rcode == dns.RcodeNameError:
		class, what = rrlNXDomain, uint64(zoneSlot)
	default:
		class = rrlError
	}
	return mix64(mix64(hi^r.salt)^lo^class<<56) ^ mix64(what+class)
}

// mix64 is a 64-bit finalizer (MurmurHash3's fmix64): every input bit moves every output
// bit, so the table index and the fingerprint are independent parts of the key.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// take spends one token of key's bucket at now (seconds) and reports whether there was
// none left, so the reply is limited. The bucket word: fingerprint (24 bits, the key's
// top ones; the index is its bottom ones), the second of its last refill (8 bits, modulo
// 256), tokens (32 bits).
func (r *rrl) take(key uint64, now uint32) bool {
	b := &r.table[key&uint64(len(r.table)-1)]
	fp := key >> 40
	sec := uint64(now & 0xFF)
	for range 4 {
		old := b.Load()
		tokens := uint64(r.rate)
		if old != 0 && old>>40 == fp {
			tokens = old & 0xFFFFFFFF
			if last := old >> 32 & 0xFF; last != sec {
				// Seconds since the last refill, modulo 256: a bucket left alone a
				// multiple of 256 seconds keeps what it had, for a second at most.
				tokens = min(uint64(r.rate), tokens+uint64(r.rate)*((sec-last)&0xFF))
			}
		}
		limited := tokens == 0
		if !limited {
			tokens--
		}
		if b.CompareAndSwap(old, fp<<40|sec<<32|tokens) {
			return limited
		}
	}
	return false // contended four times over: let it through rather than spin
}

// slipReply rewrites msg, the reply to q, as the empty TC=1 reply a limited reply slips
// as: the header with no records, the question, and the OPT (cookie included, so that
// the client's retry can carry it).
func slipReply(msg []byte, q *query, rcode int) []byte {
	n := headerLen
	if q.hasQ && binary.BigEndian.Uint16(msg[4:]) == 1 && q.qEnd <= len(msg) {
		n = q.qEnd
	}
	msg = msg[:n]
	binary.BigEndian.PutUint16(msg[2:], binary.BigEndian.Uint16(msg[2:])|flagTC)
	clear(msg[6:12])
	return appendOPT(msg, q, rcode, 0)
}

// coarseClock is the time in seconds, read by every query that RRL counts or whose cookie
// is checked: an atomic load where time.Now costs a vDSO call (about 50 ns here). A
// goroutine, started by the first read, sets it four times a second, so it is at most a
// quarter of a second late: RRL buckets refill per second, and cookies last an hour.
type coarseClock struct {
	sec  atomic.Uint32
	once sync.Once
}

var clock coarseClock

func (c *coarseClock) seconds() uint32 {
	if s := c.sec.Load(); s != 0 {
		return s
	}
	c.once.Do(func() {
		c.sec.Store(uint32(time.Now().Unix()))
		go func() {
			for range time.Tick(250 * time.Millisecond) {
				c.sec.Store(uint32(time.Now().Unix()))
			}
		}()
	})
	return c.sec.Load()
}
