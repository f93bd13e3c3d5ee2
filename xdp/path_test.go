//go:build linux

package xdp

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/glbdns/glbdns/internal/netns"
	"golang.org/x/sys/unix"
)

const testPort = 5353

// echo answers "echo:" + the payload + the source as text, so that a test sees both what
// the loop handed over and from whom.
func echo(req []byte, src netip.AddrPort, out []byte) []byte {
	out = append(out, "echo:"...)
	out = append(out, req...)
	return append(out, " from "+src.String()...)
}

// served is a pair with the path open on the server's interface and serving with h.
func served(t *testing.T, h Handler) *netns.Pair {
	t.Helper()
	p := netns.New(t)
	serveOn(t, p, 0, func(int) Handler { return h })
	return p
}

// serveOn opens the path on p's server interface for the given number of queues (0: all)
// and serves queue q with h(q) until the test ends.
func serveOn(t *testing.T, p *netns.Pair, queues int, h func(q int) Handler) *Path {
	t.Helper()
	var path *Path
	err := netns.Do(p.Server, func() error {
		var err error
		path, err = Open(Config{Interface: p.ServerIf, Queues: queues, Targets: []netip.AddrPort{
			netip.AddrPortFrom(p.ServerV4, testPort), netip.AddrPortFrom(p.ServerV6, testPort)}})
		return err
	})
	if err != nil {
		t.Skipf("the kernel refuses the af_xdp path here: %v", err)
	}
	t.Logf("mode %s, %d queue(s)", path.Mode(), path.Queues())
	// Each Serve keeps its P while it waits: leave one for the test, as a caller must.
	if prev := runtime.GOMAXPROCS(0); prev <= path.Queues() {
		runtime.GOMAXPROCS(path.Queues() + 1)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	var wg sync.WaitGroup
	for q := 0; q < path.Queues(); q++ {
		wg.Add(1)
		go func() { defer wg.Done(); path.Serve(q, h(q)) }()
	}
	t.Cleanup(func() {
		path.Wake()
		wg.Wait()
		if err := path.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return path
}

// clientConn is a UDP socket in the client namespace.
func clientConn(t *testing.T, p *netns.Pair, network string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := netns.Do(p.Client, func() error {
		var err error
		c, err = net.ListenUDP(network, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends msg to dst and returns the first datagram back, or fails after 2 s.
func exchange(t *testing.T, c *net.UDPConn, dst netip.AddrPort, msg []byte) []byte {
	t.Helper()
	// The first datagrams may race the client's neighbour resolution: retry a few times.
	buf := make([]byte, 2048)
	for try := 0; try < 10; try++ {
		if _, err := c.WriteToUDPAddrPort(msg, dst); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return buf[:n]
		}
	}
	t.Fatalf("no answer from %s", dst)
	return nil
}

func TestServeAnswersBothFamilies(t *testing.T) {
	p := served(t, echo)
	for _, fam := range []struct {
		network  string
		srv, cli netip.Addr
	}{{"udp4", p.ServerV4, p.ClientV4}, {"udp6", p.ServerV6, p.ClientV6}} {
		c := clientConn(t, p, fam.network)
		got := exchange(t, c, netip.AddrPortFrom(fam.srv, testPort), []byte("hello"))
		local := netip.AddrPortFrom(fam.cli, c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		if want := "echo:hello from " + local.String(); string(got) != want {
			t.Errorf("%s: got %q, want %q", fam.network, got, want)
		}
		// A large answer: the checksum over a payload of odd length and many words. The
		// client's kernel drops an answer whose checksum is wrong.
		big := bytes.Repeat([]byte("x"), 1001)
		if got := exchange(t, c, netip.AddrPortFrom(fam.srv, testPort), big); !bytes.HasPrefix(got, append([]byte("echo:"), big...)) {
			t.Errorf("%s: a 1001-byte payload came back as %d bytes", fam.network, len(got))
		}
	}
}

// kernelEcho binds a kernel UDP socket to addr in p's server namespace and answers
// "kernel:" + each datagram until the test ends: where a frame the path passed on lands.
func kernelEcho(t *testing.T, p *netns.Pair, addr netip.AddrPort) {
	t.Helper()
	var c *net.UDPConn
	if err := netns.Do(p.Server, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 64)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte("kernel:"), b[:n]...), from)
		}
	}()
}

// TestServeLeavesTheRestToTheKernel: TCP on the same address and port, and UDP on another
// port, reach the kernel's sockets.
func TestServeLeavesTheRestToTheKernel(t *testing.T) {
	p := served(t, echo)
	var ln net.Listener
	if err := netns.Do(p.Server, func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(p.ServerV4, testPort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kernelEcho(t, p, netip.AddrPortFrom(p.ServerV4, testPort+1))
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		if _, err := c.Read(b); err == nil {
			c.Write(append([]byte("tcp:"), b...))
		}
	}()

	var tc net.Conn
	if err := netns.Do(p.Client, func() error {
		var err error
		tc, err = net.DialTimeout("tcp", netip.AddrPortFrom(p.ServerV4, testPort).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("tcp to the steered address and port: %v", err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	tc.Write([]byte("hello"))
	b := make([]byte, 16)
	n, err := tc.Read(b)
	if err != nil || string(b[:n]) != "tcp:hello" {
		t.Errorf("tcp: got %q, %v", b[:n], err)
	}
	c := clientConn(t, p, "udp4")
	if got := exchange(t, c, netip.AddrPortFrom(p.ServerV4, testPort+1), []byte("hi")); string(got) != "kernel:hi" {
		t.Errorf("udp on another port: got %q", got)
	}
}

// TestServeEveryQueue: on a veth with four queues, flows from many client sockets land on
// several queues; with a socket on every queue each flow is answered by the path, and with
// sockets on two of them the other queues' frames reach the kernel's socket on the same
// address and port instead of being lost.
func TestServeEveryQueue(t *testing.T) {
	const queues, flows = 4, 64
	for _, open := range []int{0, 2} {
		t.Run(fmt.Sprintf("open=%d", open), func(t *testing.T) {
			p := netns.NewQueues(t, queues)
			var mu sync.Mutex
			hits := map[int]int{}
			path := serveOn(t, p, open, func(q int) Handler {
				return func(req []byte, src netip.AddrPort, out []byte) []byte {
					mu.Lock()
					hits[q]++
					mu.Unlock()
					return echo(req, src, out)
				}
			})
			if want := cmp.Or(open, queues); path.Queues() != want {
				t.Fatalf("%d sockets, want %d", path.Queues(), want)
			}
			dst := netip.AddrPortFrom(p.ServerV4, testPort)
			kernelEcho(t, p, dst)
			byPath, byKernel := 0, 0
			for i := range flows {
				got := exchange(t, clientConn(t, p, "udp4"), dst, []byte("q"))
				switch {
				case bytes.HasPrefix(got, []byte("echo:q")):
					byPath++
				case string(got) == "kernel:q":
					byKernel++
				default:
					t.Fatalf("flow %d: got %q", i, got)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d flows: %d answered by the path (per queue %v), %d by the kernel", flows, byPath, hits, byKernel)
			if len(hits) < 2 {
				t.Errorf("the path answered on queues %v only", hits)
			}
			if open == 0 && byKernel != 0 {
				t.Errorf("%d flows reached the kernel with a socket on every queue", byKernel)
			}
			if open != 0 && byKernel == 0 {
				t.Errorf("no flow reached the kernel with sockets on %d of %d queues", open, queues)
			}
		})
	}
}

// TestServeSurvivesMalformedFrames sends raw frames from the client's side of the veth:
// every way of breaking the headers, then thousands of random mutations of a good query.
// The loop must keep answering good queries, and answer none of the broken ones.
func TestServeSurvivesMalformedFrames(t *testing.T) {
	var mu sync.Mutex
	answered := 0
	p := served(t, func(req []byte, src netip.AddrPort, out []byte) []byte {
		mu.Lock()
		answered++
		mu.Unlock()
		return echo(req, src, out)
	})
	var raw int
	var srcMAC, dstMAC net.HardwareAddr
	var ifindex int
	if err := netns.Do(p.Client, func() error {
		ifc, err := net.InterfaceByName(p.ClientIf)
		if err != nil {
			return err
		}
		ifindex, srcMAC = ifc.Index, ifc.HardwareAddr
		raw, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(raw)
	if err := netns.Do(p.Server, func() error {
		ifc, err := net.InterfaceByName(p.ServerIf)
		dstMAC = ifc.HardwareAddr
		return err
	}); err != nil {
		t.Fatal(err)
	}
	to := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
	copy(to.Addr[:], dstMAC)
	send := func(f []byte) {
		// A burst fills the socket's send buffer: wait for room, a bounded number of times.
		for try := 0; ; try++ {
			err := unix.Sendto(raw, f, 0, to)
			if err == nil {
				return
			}
			if err != unix.ENOBUFS || try == 100 {
				t.Fatalf("send raw frame: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	src := netip.AddrPortFrom(p.ClientV4, 40000)
	dst := netip.AddrPortFrom(p.ServerV4, testPort)
	good := udpFrame(srcMAC, dstMAC, src, dst, []byte("query"))
	if q, ok := parse(good); !ok || string(q.payload) != "query" {
		t.Fatalf("the good frame does not parse: %+v", q)
	}

	broken := map[string]func(f []byte) []byte{
		"truncated headers": func(f []byte) []byte { return f[:30] },
		"ip options":        func(f []byte) []byte { f[ethLen] = 0x46; return f },
		"more fragments":    func(f []byte) []byte { f[ethLen+6] |= 0x20; return f },
		"fragment offset":   func(f []byte) []byte { f[ethLen+7] = 1; return f },
		"ip total too long": func(f []byte) []byte { binary.BigEndian.PutUint16(f[ethLen+2:], 1400); return f },
		"ip total too short": func(f []byte) []byte {
			binary.BigEndian.PutUint16(f[ethLen+2:], 20)
			return f
		},
		"udp length too long":  func(f []byte) []byte { binary.BigEndian.PutUint16(f[ethLen+ipv4Len+4:], 900); return f },
		"udp length too short": func(f []byte) []byte { binary.BigEndian.PutUint16(f[ethLen+ipv4Len+4:], 4); return f },
		"source port 0":        func(f []byte) []byte { f[hdr4Len-8], f[hdr4Len-7] = 0, 0; return f },
		"multicast source":     func(f []byte) []byte { copy(f[ethLen+12:], []byte{224, 0, 0, 1}); return f },
		"broadcast source mac": func(f []byte) []byte { copy(f[6:12], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); return f },
	}
	for _, breakIt := range broken {
		send(breakIt(bytes.Clone(good)))
	}
	// Frames of one queue are read in order: by the time a good query is answered, every
	// broken frame before it has been seen, and none of them may have been answered.
	c := clientConn(t, p, "udp4")
	if got := exchange(t, c, dst, []byte("between")); !bytes.HasPrefix(got, []byte("echo:between")) {
		t.Fatalf("after the broken frames: got %q", got)
	}
	mu.Lock()
	if answered != 1 {
		t.Errorf("%d of the %d broken frames were answered", answered-1, len(broken))
	}
	answered = 0
	mu.Unlock()
	rng := rand.New(rand.NewPCG(1, 2))
	const mutations = 5000
	for i := 0; i < mutations; i++ {
		f := bytes.Clone(good)
		for k := 0; k < 1+rng.IntN(4); k++ {
			f[rng.IntN(len(f))] = byte(rng.UintN(256))
		}
		if rng.IntN(8) == 0 {
			f = f[:ethLen+rng.IntN(len(f)-ethLen)] // no shorter than an Ethernet header
		}
		send(f)
	}
	// The loop is still there and answers.
	if got := exchange(t, c, dst, []byte("after")); !bytes.HasPrefix(got, []byte("echo:after")) {
		t.Fatalf("after the malformed frames: got %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// Random mutations may leave a frame well-formed (a changed payload byte or source
	// port): those are answered. None of the broken shapes may be.
	t.Logf("answered %d of %d mutated frames", answered-1, mutations)
}

func TestReplyChecksums(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"192.0.2.1:5353", "198.51.100.7:40000"},
		{"[2001:db8::1]:53", "[2001:db8:1::7]:1234"},
	} {
		for _, n := range []int{0, 1, 12, 513} {
			src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
			hl := hdr4Len
			if src.Addr().Is6() {
				hl = hdr6Len
			}
			f := make([]byte, hl+n)
			if hl == hdr6Len {
				binary.BigEndian.PutUint16(f[12:], etherIP6)
			} else {
				binary.BigEndian.PutUint16(f[12:], etherIP4)
			}
			for i := hl; i < len(f); i++ {
				f[i] = byte(i * 7)
			}
			l := writeReply(f, query{src: dst, dst: src, hdrLen: hl}, n)
			q, ok := parse(f[:l])
			if !ok || q.src != src || q.dst != dst || len(q.payload) != n {
				t.Fatalf("%s %d: parsed back as %+v %v", c.src, n, q, ok)
			}
			// The one's-complement sum of the pseudo-header and the whole datagram,
			// checksum included, is all ones for a correct checksum.
			ip := f[ethLen:]
			var sum uint32
			var udp []byte
			if hl == hdr4Len {
				if fold(sumBytes(0, ip[:ipv4Len])) != 0xffff {
					t.Errorf("%s %d: ipv4 header checksum wrong", c.src, n)
				}
				sum, udp = sumBytes(0, ip[12:20]), ip[ipv4Len:]
			} else {
				sum, udp = sumBytes(0, ip[8:40]), ip[ipv6Len:]
			}
			if got := fold(sumBytes(sum+protoUDP+uint32(udpLen+n), udp[:udpLen+n])); got != 0xffff {
				t.Errorf("%s %d: udp checksum sums to %#x", c.src, n, got)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	good := udpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2},
		netip.MustParseAddrPort("10.0.0.2:4000"), netip.MustParseAddrPort("10.0.0.1:53"), []byte("q"))
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		frame := make([]byte, frameSize)
		n := copy(frame, b)
		req := make([]byte, frameSize)
		l := answer(frame, n, req, echo)
		if l > len(frame) {
			t.Fatalf("answer of %d bytes in a %d-byte frame", l, len(frame))
		}
	})
}
