package dnsserver

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// noReply marks a malformed message that must get no answer at all.
const noReply = -1

func rawHeader(id, bits, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 0, 512)
	for _, v := range []uint16{id, bits, qd, an, ns, ar} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func typeClass(b []byte, qtype uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, dns.ClassINET)
}

func packed(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withOption returns a query for static.glb.example.com A with one raw EDNS option.
func withOption(t *testing.T, code uint16, data []byte) []byte {
	m := newQuery("static.glb.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: code, Data: data})
	return packed(t, m)
}

// appendRR appends a record with a raw owner name and RDATA, class IN, TTL 0.
func appendRR(b, owner []byte, rrtype uint16, rdata []byte) []byte {
	b = append(b, owner...)
	b = binary.BigEndian.AppendUint16(b, rrtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// pointerTo is a compression pointer to off.
func pointerTo(off int) []byte { return []byte{0xC0 | byte(off>>8), byte(off)} }

// pointerChain is a query for name A whose answer section holds a NULL record with n
// compression pointers as RDATA, each to the one before it and the first to the question,
// and whose additional record's owner points to the last: 1+n pointers to follow.
func pointerChain(name []byte, n int) []byte {
	b := typeClass(append(rawHeader(7, 0, 1, 1, 0, 1), name...), dns.TypeA)
	rdata := pointerTo(headerLen)
	rdataAt := len(b) + 2 + 10 // after the answer's owner (a pointer) and fixed fields
	for i := 1; i < n; i++ {
		rdata = append(rdata, pointerTo(rdataAt+2*(i-1))...)
	}
	b = appendRR(b, pointerTo(headerLen), dns.TypeNULL, rdata)
	return appendRR(b, pointerTo(rdataAt+2*(n-1)), dns.TypeA, nil)
}

func TestMalformed(t *testing.T) {
	s := startServer(t, Config{})
	static := wireName("static", "glb", "example", "com")
	long := strings.Repeat("a", 63)
	// outside is a question name of 243 octets (three labels of 63, one of 50, the root),
	// outside our zones: a well-formed query for it is REFUSED.
	outside := wireName(long, long, long, strings.Repeat("b", 50))
	withAdditional := func(name, owner []byte) []byte {
		b := typeClass(append(rawHeader(7, 0, 1, 0, 0, 1), name...), dns.TypeA)
		return appendRR(b, owner, dns.TypeA, []byte{192, 0, 2, 1})
	}
	tests := []struct {
		name    string
		msg     func(t *testing.T) []byte
		rcode   int  // noReply, or the expected rcode
		wantOPT bool // the FORMERR carries an OPT (the requester's EDNS itself was fine)
	}{
		{name: "shorter than a header", msg: func(*testing.T) []byte { return []byte{0, 1, 0, 0, 0} }, rcode: noReply},
		{name: "QR set", msg: func(t *testing.T) []byte {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.Response = true
			return packed(t, m)
		}, rcode: noReply},
		{name: "QDCOUNT 2", msg: func(*testing.T) []byte {
			b := append(rawHeader(7, 0, 2, 0, 0, 0), static...)
			b = typeClass(b, dns.TypeA)
			return typeClass(append(b, static...), dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "QDCOUNT 0", msg: func(*testing.T) []byte { return rawHeader(7, 0, 0, 0, 0, 0) }, rcode: dns.RcodeFormatError},
		{name: "ARCOUNT larger than data", msg: func(*testing.T) []byte {
			return typeClass(append(rawHeader(7, 0, 1, 0, 0, 1), static...), dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "question cut short", msg: func(*testing.T) []byte {
			return append(rawHeader(7, 0, 1, 0, 0, 0), static[:9]...)
		}, rcode: dns.RcodeFormatError},
		{name: "compression loop", msg: func(*testing.T) []byte {
			return typeClass(append(rawHeader(7, 0, 1, 0, 0, 0), 0xC0, 12), dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "compression pointer out of range", msg: func(*testing.T) []byte {
			return typeClass(append(rawHeader(7, 0, 1, 0, 0, 0), 0xC0, 0xFF), dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "forward pointer in additional", msg: func(*testing.T) []byte {
			b := typeClass(append(rawHeader(7, 0, 1, 0, 0, 1), static...), dns.TypeA)
			at := len(b)
			b = append(b, 0xC0, byte(at+2)) // points at its own type field, forward
			b = typeClass(b, dns.TypeA)
			return append(b, 0, 0, 0, 0, 0, 0)
		}, rcode: dns.RcodeFormatError},
		{name: "label longer than 63", msg: func(*testing.T) []byte {
			b := append(rawHeader(7, 0, 1, 0, 0, 0), 64)
			b = append(b, strings.Repeat("a", 64)...)
			return typeClass(append(b, 0), dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "name longer than 255", msg: func(*testing.T) []byte {
			b := append(rawHeader(7, 0, 1, 0, 0, 0), wireName(long, long, long, long, long)...)
			return typeClass(b, dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "name of 255 octets", msg: func(*testing.T) []byte {
			b := append(rawHeader(7, 0, 1, 0, 0, 0), wireName(long, long, long, strings.Repeat("b", 61))...)
			return typeClass(b, dns.TypeA)
		}, rcode: dns.RcodeRefused},
		{name: "name of 256 octets", msg: func(*testing.T) []byte {
			b := append(rawHeader(7, 0, 1, 0, 0, 0), wireName(long, long, long, strings.Repeat("b", 62))...)
			return typeClass(b, dns.TypeA)
		}, rcode: dns.RcodeFormatError},
		{name: "owner of 255 octets through a pointer", msg: func(*testing.T) []byte {
			return withAdditional(outside, append(wireName(strings.Repeat("c", 10))[:11], pointerTo(headerLen)...))
		}, rcode: dns.RcodeRefused},
		{name: "owner of 256 octets through a pointer", msg: func(*testing.T) []byte {
			return withAdditional(outside, append(wireName(strings.Repeat("c", 11))[:12], pointerTo(headerLen)...))
		}, rcode: dns.RcodeFormatError},
		{name: "owner pointer into the header", msg: func(*testing.T) []byte {
			return withAdditional(static, pointerTo(4))
		}, rcode: dns.RcodeFormatError},
		{name: "owner with an extended label type", msg: func(*testing.T) []byte {
			return withAdditional(static, []byte{0x41, 'x', 0})
		}, rcode: dns.RcodeFormatError},
		{name: "owner label past the end", msg: func(*testing.T) []byte {
			b := typeClass(append(rawHeader(7, 0, 1, 0, 0, 1), static...), dns.TypeA)
			return append(b, 63, 'a', 'b', 'c')
		}, rcode: dns.RcodeFormatError},
		{name: "compression loop through another record's RDATA", msg: func(*testing.T) []byte {
			b := typeClass(append(rawHeader(7, 0, 1, 1, 0, 1), static...), dns.TypeA)
			rdataAt := len(b) + 2 + 10
			ownerAt := rdataAt + 2
			b = appendRR(b, pointerTo(headerLen), dns.TypeNULL, pointerTo(ownerAt)) // points forward
			return appendRR(b, pointerTo(rdataAt), dns.TypeA, nil)
		}, rcode: dns.RcodeFormatError},
		{name: "126 pointers in one name", msg: func(*testing.T) []byte { return pointerChain(outside, 125) },
			rcode: dns.RcodeRefused},
		{name: "127 pointers in one name", msg: func(*testing.T) []byte { return pointerChain(outside, 126) },
			rcode: dns.RcodeFormatError},
		{name: "RDLENGTH past the end", msg: func(*testing.T) []byte {
			b := withAdditional(static, []byte{0})
			return b[:len(b)-1]
		}, rcode: dns.RcodeFormatError},
		{name: "two OPTs", msg: func(t *testing.T) []byte {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.SetEdns0(1232, false)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}}
			m.Extra = append(m.Extra, o)
			return packed(t, m)
		}, rcode: dns.RcodeFormatError},
		{name: "OPT in authority", msg: func(t *testing.T) []byte {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.Ns = append(m.Ns, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})
			return packed(t, m)
		}, rcode: dns.RcodeFormatError},
		{name: "OPT with a non-root owner", msg: func(t *testing.T) []byte {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeOPT, Class: 1232}})
			return packed(t, m)
		}, rcode: dns.RcodeFormatError},
		{name: "EDNS option overruns the OPT", msg: func(t *testing.T) []byte {
			b := withOption(t, 65001, []byte{1, 2, 3})
			binary.BigEndian.PutUint16(b[len(b)-5:], 9) // option length beyond the RDATA
			return b
		}, rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS family 3", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 3, 0, 0}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS family 0", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 0, 0, 0}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS source prefix 33", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 1, 33, 0, 1, 2, 3, 4, 5}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS source prefix 129", msg: func(t *testing.T) []byte {
			return withOption(t, 8, append([]byte{0, 2, 129, 0}, make([]byte, 17)...))
		}, rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS scope in a query", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 1, 24, 8, 10, 0, 0}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS address longer than the prefix", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 1, 16, 0, 10, 0, 0}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS bits beyond the prefix", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 1, 20, 0, 10, 0, 0xFF}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "ECS option too short", msg: func(t *testing.T) []byte { return withOption(t, 8, []byte{0, 1}) },
			rcode: dns.RcodeFormatError, wantOPT: true},
		{name: "two ECS options", msg: func(t *testing.T) []byte {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.SetEdns0(1232, false)
			for range 2 {
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 8, Data: []byte{0, 1, 8, 0, 10}})
			}
			return packed(t, m)
		}, rcode: dns.RcodeFormatError, wantOPT: true},
	}
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 65535)
	// Each message is followed by a probe, a good query with another id. Replies to one
	// client socket come back in the order of its queries (one server socket, one loop),
	// so the first reply is the message's, or the probe's when the message got none: no
	// waiting for a reply that must not come.
	read := func(t *testing.T) *dns.Msg {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		return r
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.msg(t)
			id := binary.BigEndian.Uint16(msg)
			probe := newQuery("static.glb.example.com.", dns.TypeA)
			probe.Id = ^id
			for _, m := range [][]byte{msg, packed(t, probe)} {
				if _, err := c.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			r := read(t)
			if tc.rcode == noReply {
				if r.Id != probe.Id {
					t.Fatalf("got a reply (id %d, rcode %s), want none", r.Id, dns.RcodeToString[r.Rcode])
				}
				return
			}
			if r.Rcode != tc.rcode || !r.Response || r.Id != id {
				t.Errorf("reply rcode %s QR %v id %d, want %s for id %d", dns.RcodeToString[r.Rcode], r.Response, r.Id, dns.RcodeToString[tc.rcode], id)
			}
			if (r.IsEdns0() != nil) != tc.wantOPT {
				t.Errorf("OPT in reply = %v, want %v", r.IsEdns0() != nil, tc.wantOPT)
			}
			if len(r.Answer)+len(r.Ns) != 0 {
				t.Errorf("error reply carries records: %v %v", r.Answer, r.Ns)
			}
			if p := read(t); p.Id != probe.Id || len(p.Answer) != 1 {
				t.Fatalf("second reply id %d %v, want the probe's answer (id %d)", p.Id, p.Answer, probe.Id)
			}
		})
	}
	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			b := make([]byte, 12+rng.IntN(100))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 {
				b[2] &^= 0x80 // half of them pass the QR filter
			}
			out := s.Handle(b, s.Addr(), false, nil)
			if out == nil {
				continue
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil || !r.Response || r.Id != binary.BigEndian.Uint16(b) {
				t.Fatalf("reply to % x: err %v, %v", b, err, r)
			}
		}
		// And some over the socket, in case the read loop behaves differently.
		for range 50 {
			b := make([]byte, rng.IntN(600))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("still answering", func(t *testing.T) {
		r := exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("after malformed input: rcode %d answer %v", r.Rcode, r.Answer)
		}
		r = exchange(t, s, "tcp", newQuery("static.glb.example.com.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("after malformed input over tcp: rcode %d answer %v", r.Rcode, r.Answer)
		}
	})
}

// TestRecordsFramedNotRead: RDATA the server does not use is framed by RDLENGTH, not
// parsed, so its content cannot make a query FORMERR (doc.go, "Which reply for what"):
// an A record of 3 octets and a TSIG of garbage in additional, an IXFR-style SOA of
// garbage in authority, and an EDNS option we do not implement with a length its RFC
// forbids all get the answer.
func TestRecordsFramedNotRead(t *testing.T) {
	s := fastServer(t)
	static := wireName("static", "glb", "example", "com")
	query := func(ns, ar uint16) []byte {
		return typeClass(append(rawHeader(7, 0, 1, 0, ns, ar), static...), dns.TypeA)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"A of 3 octets", appendRR(query(0, 1), pointerTo(headerLen), dns.TypeA, []byte{192, 0, 2})},
		{"TSIG of garbage", appendRR(query(0, 1), wireName("key"), dns.TypeTSIG, []byte{0xC0, 0xFF, 1, 2, 3})},
		{"SOA of garbage", appendRR(query(1, 0), pointerTo(headerLen), dns.TypeSOA, []byte{0x41, 0})},
		{"TCP keepalive of 3 octets", withOption(t, dns.EDNS0TCPKEEPALIVE, []byte{0, 1, 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := new(dns.Msg).Unpack(tc.msg); err == nil {
				t.Fatalf("miekg/dns unpacks %x: the case tests nothing", tc.msg)
			}
			r := new(dns.Msg)
			if err := r.Unpack(s.Handle(tc.msg, netip.MustParseAddrPort("192.0.2.1:53"), false, nil)); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("rcode %s answer %v, want the static answer", dns.RcodeToString[r.Rcode], r.Answer)
			}
		})
	}
}
