package dnsserver

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dchest/siphash"
)

// DNS cookies, RFC 7873, with the interoperable server cookie of RFC 9018: a client sends
// an 8-octet client cookie; we answer with it and a 16-octet server cookie, version 1,
// three reserved octets, a timestamp (seconds, serial arithmetic) and SipHash-2-4 over
// the client cookie, those 8 octets and the client's address, keyed with a 128-bit
// secret. A client that returns a server cookie we minted for its address within the hour
// has shown that it receives what is sent to that address: it cannot be a spoofed source,
// so response-rate limiting lets it through (rrl.go). The secret is a flag of the daemon,
// shared by every node that answers for the same address, so that any node accepts the
// cookies of another (RFC 9018 Section 5), and rotated by listing the old one after the
// new for an hour.

// ednsOptionCookie is the COOKIE option code (RFC 7873 Section 4).
const ednsOptionCookie = 10

// Cookie sizes (RFC 7873 Section 4): a client cookie of 8 octets, alone or followed by a
// server cookie of 8 to 32; ours is 16 (RFC 9018 Section 4).
const (
	clientCookieLen = 8
	serverCookieLen = 16
	minCookieLen    = clientCookieLen + 8
	maxCookieLen    = clientCookieLen + 32
	replyCookieLen  = clientCookieLen + serverCookieLen
)

// RFC 9018 Section 4.3: a server cookie is good for an hour, from a clock up to five
// minutes behind ours; one older than half an hour is replaced by a fresh one.
const (
	cookieMaxAge   = 3600
	cookieMaxAhead = 300
	cookieRenewAge = 1800
)

// CookieSecret is the 128-bit SipHash-2-4 key server cookies are minted with.
type CookieSecret [16]byte

// ParseCookieSecrets reads the secrets of a cookie secret file: one per line, 32
// hexadecimal digits each, blank lines and lines starting with # ignored. The first mints
// the cookies; the others are still accepted, for a rotation (see docs/dns-server.md).
func ParseCookieSecrets(text string) ([]CookieSecret, error) {
	var out []CookieSecret
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != len(CookieSecret{}) {
			return nil, fmt.Errorf("line %d: a cookie secret is 32 hexadecimal digits (128 bits)", i+1)
		}
		out = append(out, CookieSecret(b))
	}
	if len(out) == 0 {
		return nil, errors.New("no cookie secret in the file")
	}
	return out, nil
}

// cookieKeys are the secrets as SipHash keys: keys[0] mints, every one verifies.
type cookieKeys struct{ keys []sipKey }

type sipKey struct{ k0, k1 uint64 }

func newCookieKeys(secrets []CookieSecret) *cookieKeys {
	if len(secrets) == 0 {
		return nil
	}
	ck := &cookieKeys{keys: make([]sipKey, len(secrets))}
	for i, s := range secrets {
		ck.keys[i] = sipKey{binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])}
	}
	return ck
}

// cookieVerdict is what a query's COOKIE option proves.
type cookieVerdict uint8

const (
	cookieNone       cookieVerdict = iota // no COOKIE option (or cookies off)
	cookieClientOnly                      // a client cookie alone: a fresh server cookie is returned
	cookieBad                             // a server cookie we did not mint, or not for this client, or expired
	cookieValid                           // a server cookie of ours, for this client, within the hour
)

// hash is the RFC 9018 Section 4.4 hash: SipHash-2-4 of the client cookie, the version,
// reserved and timestamp octets, and the client's address (4 octets for IPv4, 16 for
// IPv6), written little-endian as the SipHash reference does.
func (k sipKey) hash(client, head []byte, addr netip.Addr) uint64 {
	var in [clientCookieLen + 8 + 16]byte
	n := copy(in[:], client[:clientCookieLen])
	n += copy(in[n:], head[:8])
	if addr.Is4() {
		a := addr.As4()
		n += copy(in[n:], a[:])
	} else {
		a := addr.As16()
		n += copy(in[n:], a[:])
	}
	return siphash.Hash(k.k0, k.k1, in[:n])
}

// mint writes a server cookie for client at addr and time now into out, after the client
// cookie: version 1, reserved 0, the timestamp, the hash.
func (k sipKey) mint(out *[replyCookieLen]byte, addr netip.Addr, now uint32) {
	sc := out[clientCookieLen:]
	sc[0], sc[1], sc[2], sc[3] = 1, 0, 0, 0
	binary.BigEndian.PutUint32(sc[4:], now)
	binary.LittleEndian.PutUint64(sc[8:], k.hash(out[:clientCookieLen], sc[:8], addr))
}

// cookieAge is how many seconds ago a cookie stamped ts was minted, at now, in serial
// arithmetic (RFC 1982), so that the wrap of the 32-bit timestamp in 2106 is a second like
// any other; negative for a stamp ahead of now.
func cookieAge(ts, now uint32) int32 { return int32(now - ts) }

// judge reads the cookie of q (the option's data, msg[q.cookieOff:][:q.cookieLen], whose
// length parse checked) and writes the one the reply carries into q.cookieOut: the client
// cookie and the server cookie it sent when that is valid and less than half an hour old,
// else a fresh one. addr is the query's source, now the coarse clock.
func (ck *cookieKeys) judge(q *query, msg []byte, addr netip.Addr, now uint32) {
	c := msg[q.cookieOff : q.cookieOff+int(q.cookieLen)]
	copy(q.cookieOut[:clientCookieLen], c)
	q.cookieReply = true
	q.cookie = cookieClientOnly
	if len(c) > clientCookieLen {
		q.cookie = cookieBad
		sc := c[clientCookieLen:]
		if len(sc) == serverCookieLen && sc[0] == 1 {
			age := cookieAge(binary.BigEndian.Uint32(sc[4:]), now)
			if age >= -cookieMaxAhead && age <= cookieMaxAge {
				sum := binary.LittleEndian.Uint64(sc[8:])
				for _, k := range ck.keys {
					if k.hash(c, sc, addr) == sum {
						q.cookie = cookieValid
						break
					}
				}
				if q.cookie == cookieValid && age < cookieRenewAge {
					copy(q.cookieOut[clientCookieLen:], sc)
					return
				}
			}
		}
	}
	ck.keys[0].mint(&q.cookieOut, addr, now)
}
