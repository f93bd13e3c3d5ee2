package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Frame offsets the program and the loop share: an Ethernet header without VLAN tags, then
// IPv4 without options or IPv6 without extension headers, then UDP.
const (
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	udpLen   = 8
	hdr4Len  = ethLen + ipv4Len + udpLen // 42
	hdr6Len  = ethLen + ipv6Len + udpLen // 62
	etherIP4 = 0x0800
	etherIP6 = 0x86dd
	protoUDP = 17
)

// query is what the loop needs of a received frame: where the UDP payload is and who sent
// it. The program has already matched the shape (no VLAN, no IPv4 options or fragments, UDP
// right after the IPv6 header); parse checks it again, with the lengths the program did
// not check, because a frame from the wire is never trusted.
type query struct {
	payload  []byte
	src, dst netip.AddrPort
	hdrLen   int // bytes before the payload: 42 (IPv4) or 62 (IPv6)
}

// parse reads a frame as the program steered it. It refuses (ok false) a frame that is not
// IPv4 or IPv6 UDP of that shape, whose IP or UDP length disagrees with the frame, whose
// IPv4 header checksum is wrong, or that
// comes from port 0 or from or to a multicast or broadcast address (an answer to it would
// go nowhere or everywhere).
//
// The UDP checksum is not verified: a sender that offloads it (every local stack across a
// veth, many NICs) leaves in the frame only the part over the pseudo-header, and the
// driver's verdict on it does not reach XDP. A corrupted payload fails to parse as DNS or
// asks another question, as it would of a server behind a NIC that does not check either.
func parse(f []byte) (q query, ok bool) {
	if len(f) < hdr4Len {
		return q, false
	}
	var src, dst netip.Addr
	var udp []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherIP4:
		ip := f[ethLen:]
		if ip[0] != 0x45 || ip[9] != protoUDP || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return q, false
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total < ipv4Len+udpLen || total > len(ip) || fold(sumBytes(0, ip[:ipv4Len])) != 0xffff {
			return q, false
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		udp = ip[ipv4Len:total]
		q.hdrLen = hdr4Len
	case etherIP6:
		if len(f) < hdr6Len {
			return q, false
		}
		ip := f[ethLen:]
		if ip[0]>>4 != 6 || ip[6] != protoUDP {
			return q, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if plen < udpLen || plen > len(ip)-ipv6Len {
			return q, false
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		udp = ip[ipv6Len : ipv6Len+plen]
		q.hdrLen = hdr6Len
	default:
		return q, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < udpLen || ulen > len(udp) {
		return q, false
	}
	sport, dport := binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
	if sport == 0 || f[6]&1 != 0 || !unicast(src) || !unicast(dst) {
		return q, false
	}
	q.src, q.dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	q.payload = udp[udpLen:ulen]
	return q, true
}

// unicast reports whether a is an address an answer can come from or go to: not
// unspecified, multicast or the IPv4 limited broadcast.
func unicast(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// writeReply turns the frame f, which held query q, into the answer to it: the Ethernet
// addresses, IP addresses and ports swapped, the lengths set for a payload of n bytes
// already written at f[q.hdrLen:], and both checksums computed (the UDP one too, which
// IPv4 makes optional: a receiver that gets a checksum verifies it, one that gets none
// cannot tell a corrupted answer). It returns the frame's length.
func writeReply(f []byte, q query, n int) int {
	var mac [6]byte
	copy(mac[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac[:])
	ip := f[ethLen:]
	var udp []byte
	var sum uint32
	ulen := udpLen + n
	if q.hdrLen == hdr4Len {
		total := ipv4Len + ulen
		ip[0], ip[1] = 0x45, 0
		binary.BigEndian.PutUint16(ip[2:], uint16(total))
		binary.BigEndian.PutUint32(ip[4:], 0x00004000) // id 0, don't fragment (RFC 6864)
		ip[8], ip[9] = 64, protoUDP
		ip[10], ip[11] = 0, 0
		s, d := q.dst.Addr().As4(), q.src.Addr().As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sumBytes(0, ip[:ipv4Len])))
		sum = sumBytes(0, ip[12:20])
		udp = ip[ipv4Len:]
	} else {
		binary.BigEndian.PutUint32(ip[0:], 6<<28)
		binary.BigEndian.PutUint16(ip[4:], uint16(ulen))
		ip[6], ip[7] = protoUDP, 64
		s, d := q.dst.Addr().As16(), q.src.Addr().As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		sum = sumBytes(0, ip[8:40])
		udp = ip[ipv6Len:]
	}
	binary.BigEndian.PutUint16(udp[0:], q.dst.Port())
	binary.BigEndian.PutUint16(udp[2:], q.src.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(ulen))
	udp[6], udp[7] = 0, 0
	sum += protoUDP + uint32(ulen)
	c := ^fold(sumBytes(sum, udp[:ulen]))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return q.hdrLen + n
}

// sumBytes adds b to the one's-complement sum s (RFC 1071), eight bytes at a time where it
// can: the UDP checksum covers the whole answer, so this is the loop's one pass over it.
func sumBytes(s uint32, b []byte) uint32 {
	acc := uint64(s)
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v >> 32
		acc += v & 0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	for acc>>32 != 0 {
		acc = acc&0xffffffff + acc>>32
	}
	return uint32(acc)
}

// fold reduces a 32-bit one's-complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
