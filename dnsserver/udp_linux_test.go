//go:build linux

package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"runtime"
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

// TestRawUDPWorkersBlockOutsideNetpoller: with every UDP worker waiting in the kernel (no
// traffic, and a socket timeout of an hour), the process keeps a P for everything else: GOMAXPROCS exceeds the
// workers holding one, a garbage collection (which must stop every worker) completes, and
// TCP is answered. Shutdown then wakes the waiting workers, and closes their sockets: the
// port can be bound again without SO_REUSEPORT.
func TestRawUDPWorkersBlockOutsideNetpoller(t *testing.T) {
	// A socket timeout far beyond the test: only a signal (EINTR) or the shutdown wake
	// can get a worker out of recvmmsg, never the timeout.
	saved := udpTimeout
	udpTimeout = unix.Timeval{Sec: 3600}
	t.Cleanup(func() { udpTimeout = saved })
	s := New(Config{Addr: "127.0.0.1:0", Logger: testLogger(), UDPWorkers: 3})
	s.SetSnapshot(loadSnapshot(t))
	errc := make(chan error, 1)
	go func() { errc <- s.Start(context.Background()) }()
	<-s.Ready()
	if !s.Addr().IsValid() {
		t.Fatalf("start: %v", <-errc)
	}
	s.lmu.Lock()
	nraw := len(s.wake)
	s.lmu.Unlock()
	if nraw != 3 {
		t.Fatalf("%d of 3 UDP sockets detached from the netpoller", nraw)
	}
	procs.Lock()
	held := procs.held
	procs.Unlock()
	if p := runtime.GOMAXPROCS(0); p <= held || held < 3 {
		t.Errorf("GOMAXPROCS %d with %d workers holding a P", p, held)
	}
	r := exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA))
	if len(r.Answer) != 1 {
		t.Fatalf("udp: %v", r)
	}
	time.Sleep(50 * time.Millisecond) // every worker back in recvmmsg
	gcDone := make(chan struct{})
	go func() { runtime.GC(); close(gcDone) }()
	select {
	case <-gcDone:
	case <-time.After(10 * time.Second):
		t.Fatal("runtime.GC did not complete while the UDP workers waited")
	}
	if r := exchange(t, s, "tcp", newQuery("static.glb.example.com.", dns.TypeA)); len(r.Answer) != 1 {
		t.Fatalf("tcp: %v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Start returned %v", err)
	}
	c, err := net.ListenPacket("udp", s.Addr().String()) // no SO_REUSEPORT: needs every socket closed
	if err != nil {
		t.Fatalf("port still bound after shutdown: %v", err)
	}
	c.Close()
}

// TestRawUDPManyDatagrams: one worker answers a burst larger than a recvmmsg batch, each
// datagram to its own sender, and answers nothing to an empty datagram.
func TestRawUDPManyDatagrams(t *testing.T) {
	s := startServer(t, Config{UDPWorkers: 1})
	// 96 datagrams in flight: more than two batches, well within the socket's default
	// receive buffer (a bigger burst is dropped by the kernel under a busy test run).
	const clients, per = 2, udpBatch + udpBatch/2
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetReadBuffer(1 << 20); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	if _, err := conns[0].Write(nil); err != nil { // empty: no reply, no harm
		t.Fatal(err)
	}
	for i, c := range conns {
		for j := range per {
			m := newQuery("static.glb.example.com.", dns.TypeA)
			m.Id = uint16(i*per + j)
			b, _ := m.Pack()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 2048)
	for i, c := range conns {
		seen := map[uint16]bool{}
		for range per {
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %d of %d replies: %v", i, len(seen), per, err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil || len(r.Answer) != 1 {
				t.Fatalf("client %d: bad reply %v %v", i, err, r)
			}
			if int(r.Id)/per != i || seen[r.Id] {
				t.Fatalf("client %d: reply id %d is not one of its own, or repeated", i, r.Id)
			}
			seen[r.Id] = true
		}
	}
}
