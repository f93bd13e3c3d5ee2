//go:build linux

package xdp

import (
	"net"
	"net/netip"
	"testing"
)

// BenchmarkAnswer is the loop's own work on one frame, without the kernel and DNS: parse,
// the payload copied out, a 60-byte answer written in place, headers and checksums. It
// must not allocate.
func BenchmarkAnswer(b *testing.B) {
	for _, c := range []struct{ name, src, dst string }{
		{"ipv4", "198.51.100.7:40000", "192.0.2.1:53"},
		{"ipv6", "[2001:db8:9::7]:40000", "[2001:db8::1]:53"},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := udpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2},
				netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst), make([]byte, 40))
			f := make([]byte, frameSize)
			req := make([]byte, frameSize)
			answer60 := func(req []byte, _ netip.AddrPort, out []byte) []byte {
				out = append(out, req...)
				return append(out, make([]byte, 20)...)
			}
			b.ReportAllocs()
			for b.Loop() {
				n := copy(f, q)
				if answer(f, n, req, answer60) == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}
