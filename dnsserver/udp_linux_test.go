//go:build linux

package dnsserver

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
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
// traffic, and a socket timeout of 30 s), the process keeps a P for everything else:
// GOMAXPROCS exceeds the workers holding one, a garbage collection (which must stop every
// worker, so it needs the runtime's signal to interrupt recvmmsg) completes well before the
// timeout, and TCP is answered. After shutdown every socket is closed: the port can be
// bound again without SO_REUSEPORT.
func TestRawUDPWorkersBlockOutsideNetpoller(t *testing.T) {
	longUDPTimeout(t)
	s, errc := startUntilShutdown(t, Config{UDPWorkers: 3})
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
	waitInRecvmmsg(t, int(s.Addr().Port()), 3) // every worker back in the kernel
	// Timers stop with the world, so the bound is read from the clock after the GC: a
	// GC that waits for the socket timeout takes 30 s, one that interrupts takes ms.
	start := time.Now()
	runtime.GC()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("runtime.GC took %v while the UDP workers waited: it waited for the socket timeout", d)
	}
	if r := exchange(t, s, "tcp", newQuery("static.glb.example.com.", dns.TypeA)); len(r.Answer) != 1 {
		t.Fatalf("tcp: %v", r)
	}
	shutdown(t, s, errc)
	c, err := net.ListenPacket("udp", s.Addr().String()) // no SO_REUSEPORT: needs every socket closed
	if err != nil {
		t.Fatalf("port still bound after shutdown: %v", err)
	}
	c.Close()
}

// longUDPTimeout sets the detached sockets' timeout to 30 s for the test: far beyond it, so
// that only a signal (EINTR) or a wake gets a worker out of recvmmsg in time.
func longUDPTimeout(t *testing.T) {
	saved := udpTimeout
	udpTimeout = unix.Timeval{Sec: 30}
	t.Cleanup(func() { udpTimeout = saved })
}

// TestRawUDPWake: wake gets a blocking recvmmsg on a detached socket to return. The
// reader goes back into the call on EINTR, as a worker does, so the runtime's signals
// alone cannot end it before the 30 s timeout.
func TestRawUDPWake(t *testing.T) {
	longUDPTimeout(t)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	r, err := detachUDP(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	returned := make(chan unix.Errno, 1)
	go func() {
		var h [1]unix.Mmsghdr
		for {
			_, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&h[0])),
				1, unix.MSG_WAITFORONE, 0, 0)
			if e != unix.EINTR {
				returned <- e
				return
			}
			runtime.Gosched()
		}
	}()
	waitInRecvmmsg(t, port, 1) // the reader is in the kernel
	r.wake()
	select {
	case e := <-returned:
		if e != 0 {
			t.Errorf("recvmmsg after wake: %v, want an empty read", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("recvmmsg still blocked 5 s after wake")
	}
}

// inRecvmmsg counts the threads of the process that wait in recvmmsg on a socket bound to
// port, as /proc shows each thread's system call and its first argument (the socket).
// ok is false where /proc does not show them.
func inRecvmmsg(port int) (n int, ok bool) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, false
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b)) // "299 0x5 …": the call and its arguments, or "running"
		if len(f) < 2 || f[0] != strconv.Itoa(unix.SYS_RECVMMSG) {
			continue
		}
		fd, err := strconv.ParseUint(f[1], 0, 31)
		if err != nil {
			continue
		}
		switch sa, _ := unix.Getsockname(int(fd)); a := sa.(type) {
		case *unix.SockaddrInet4:
			n += btoi(a.Port == port)
		case *unix.SockaddrInet6:
			n += btoi(a.Port == port)
		}
	}
	return n, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// waitInRecvmmsg polls until at least n threads wait in recvmmsg on port. The 10 s bound
// only keeps a broken loop from hanging the test. Where /proc does not show system
// calls the test goes on without knowing, and checks what it can.
func waitInRecvmmsg(t *testing.T, port, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got, ok := inRecvmmsg(port)
		switch {
		case !ok:
			t.Log("/proc does not show system calls: cannot tell whether recvmmsg is waiting")
			return
		case got >= n:
			return
		case time.Now().After(deadline):
			t.Fatalf("%d of %d threads waiting in recvmmsg on port %d after 10 s", got, n, port)
		}
	}
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
