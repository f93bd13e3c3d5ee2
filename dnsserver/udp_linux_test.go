//go:build linux

package dnsserver

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func TestAddrPortOf(t *testing.T) {
	var sa unix.RawSockaddrInet6
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	sa4.Family, sa4.Addr = unix.AF_INET, [4]byte{192, 0, 2, 7}
	*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = [2]byte{0x14, 0xe9} // 5353, network order
	if got, ok := addrPortOf(&sa, unix.SizeofSockaddrInet4); !ok || got != netip.MustParseAddrPort("192.0.2.7:5353") {
		t.Errorf("IPv4: %v %v", got, ok)
	}
	sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr("::ffff:198.51.100.1").As16()}
	*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{0, 53}
	if got, ok := addrPortOf(&sa, unix.SizeofSockaddrInet6); !ok || got != netip.MustParseAddrPort("198.51.100.1:53") {
		t.Errorf("IPv4-mapped: %v %v, want the IPv4 address", got, ok)
	}
	sa.Addr = netip.MustParseAddr("2001:db8::1").As16()
	if got, ok := addrPortOf(&sa, unix.SizeofSockaddrInet6); !ok || got != netip.MustParseAddrPort("[2001:db8::1]:53") {
		t.Errorf("IPv6: %v %v", got, ok)
	}
	if _, ok := addrPortOf(&sa, 8); ok {
		t.Error("short IPv6 sockaddr accepted")
	}
	sa.Family = unix.AF_UNIX
	if _, ok := addrPortOf(&sa, unix.SizeofSockaddrInet6); ok {
		t.Error("AF_UNIX accepted")
	}
}

// TestUDPDualStack: a server on [::]:0 (one dual-stack socket per worker) answers IPv4
// and IPv6 clients, and keys a client-subnet hash on an IPv4 client's own address (not
// its IPv4-mapped form): each of twelve IPv4 /24s gets the answer a server on
// 127.0.0.1 gives it.
func TestUDPDualStack(t *testing.T) {
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	v4 := startServer(t, Config{})
	dual := startServer(t, Config{Addr: "[::]:0"})
	port := dual.Addr().Port()
	ask := func(server string, local net.Addr) string {
		t.Helper()
		c := &dns.Client{Net: "udp", Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 3 * time.Second}}
		r, _, err := c.Exchange(newQuery("hash.glb.example.com.", dns.TypeA), server)
		if err != nil {
			t.Fatalf("exchange with %s from %v: %v", server, local, err)
		}
		if len(r.Answer) == 0 {
			t.Fatalf("no answer from %s: %v", server, r)
		}
		return r.Answer[0].String()
	}
	seen := map[string]bool{}
	for i := 1; i <= 12; i++ {
		local := &net.UDPAddr{IP: net.IPv4(127, 0, byte(i), 1)}
		want := ask(v4.Addr().String(), local)
		if got := ask(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String(), local); got != want {
			t.Errorf("client 127.0.%d.1: dual-stack answer %s, IPv4 server %s", i, got, want)
		}
		seen[want] = true
	}
	if len(seen) < 2 {
		t.Errorf("twelve /24s all got %v: the test cannot tell keys apart", seen)
	}
	ask(netip.AddrPortFrom(netip.IPv6Loopback(), port).String(), nil)
}
