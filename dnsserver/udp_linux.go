//go:build linux

package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux UDP loop takes each worker's socket out of the Go netpoller and waits in a
// blocking recvmmsg(MSG_WAITFORONE), issued as a raw system call, then answers the batch and
// sends it with one sendmmsg: two system calls per batch, as gdnsd's and Knot's UDP threads
// make. Waiting through the netpoller instead costs, per wake-up, a recvmmsg that returns
// EAGAIN, two epoll_pwait calls and a pass through the scheduler: measured with perf stat
// beside gdnsd with one UDP thread, about 8% more CPU per answer.
//
// A raw blocking call does not tell the scheduler that the goroutine is waiting, so the
// worker keeps its P (the runtime's token for running Go code) while it waits:
//
//   - GOMAXPROCS is raised to one more than the number of such workers (holdProcs), so that
//     TCP, the admin API and everything else always have a P of their own.
//   - SO_RCVTIMEO and SO_SNDTIMEO are set, because with a socket timeout a signal interrupts
//     recvmmsg and sendmmsg (EINTR) instead of restarting them (signal(7)). The runtime
//     preempts a goroutine with a signal, so a stop-the-world (GC) or sysmon's 10 ms
//     preemption gets the worker out of the kernel; on EINTR it yields (runtime.Gosched).
//     With GODEBUG=asyncpreemptoff=1 the runtime sends no such signal, and a
//     stop-the-world waits for a datagram or the 200 ms timeout: do not set it.
//   - sysmon preempts a goroutine that has run for 10 ms, and a worker, waiting or busy,
//     never stops running as far as the scheduler knows: every worker is preempted about
//     100 times a second (a signal and a yield, a few microseconds each).
//   - Shutdown wakes a waiting worker with shutdown(SHUT_RD) on its socket, and the worker
//     closes the socket itself once it has left the system call (closing it under a
//     waiting thread would let the number be reused while the thread still holds it).
//
// A socket whose raw access fails, or a kernel that refuses recvmmsg (ENOSYS: some
// sandboxes), keeps the portable loop (udp.go).

// udpTimeout is the socket timeout set for its side effect above: it is what makes signals
// interrupt the calls. A read that times out just goes round the loop; a send that times
// out (the send buffer stayed full that long) drops that datagram, as a congested network
// would, and the client retries.
var udpTimeout = unix.Timeval{Usec: 200_000}

// sockaddrSize is what the kernel may write as a sender's address: IPv4 or IPv6.
const sockaddrSize = unix.SizeofSockaddrInet6

// rawUDP is a UDP socket detached from the netpoller and served by one blocking loop.
type rawUDP struct {
	fd int
	// mu orders wake against the loop's close: shutdown must not reach a closed (and
	// perhaps reused) descriptor number.
	mu     sync.Mutex
	closed bool
}

// wake makes a loop waiting in recvmmsg return (and every later recvmmsg return at once).
func (r *rawUDP) wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		unix.Shutdown(r.fd, unix.SHUT_RD) // ENOTCONN on an unconnected socket, but it wakes
	}
}

func (r *rawUDP) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		unix.Close(r.fd)
	}
}

// detachUDP takes c's socket away from the netpoller: it duplicates the descriptor, closes
// c (which removes c's descriptor from the runtime's epoll set, so arriving datagrams no
// longer wake it), and puts the socket in blocking mode with the timeouts above. On error c
// is left as it was.
func detachUDP(c net.PacketConn) (*rawUDP, error) {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return nil, errors.New("not a *net.UDPConn")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		// recvmmsg must exist before we give up the netpoller: a probe that finds the
		// queue empty returns EAGAIN, one on a kernel without the call ENOSYS.
		var h unix.Mmsghdr
		if _, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, f, uintptr(unsafe.Pointer(&h)), 0, unix.MSG_DONTWAIT, 0, 0); e == unix.ENOSYS {
			derr = e
			return
		}
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	err = errors.Join(
		unix.SetNonblock(fd, false),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &udpTimeout),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &udpTimeout))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	c.Close()
	return &rawUDP{fd: fd}, nil
}

// procs counts the UDP workers that hold a P while they wait (see holdProcs).
var procs struct {
	sync.Mutex
	held int
}

// holdProcs records n more workers that keep their P and raises GOMAXPROCS, if needed, to
// leave one P for everything else. It never lowers GOMAXPROCS again: a server that stops
// leaves the process as able to run as before, only with one more idle P.
func holdProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	procs.held += n
	if runtime.GOMAXPROCS(0) <= procs.held {
		runtime.GOMAXPROCS(procs.held + 1)
	}
}

func releaseProcs(n int) {
	procs.Lock()
	procs.held -= n
	procs.Unlock()
}

// udpLoops returns one loop per socket. It runs in Start under s.lmu, before any loop
// starts, so that stop sees every socket's wake function.
func (s *Server) udpLoops(udp []net.PacketConn) []func() {
	loops := make([]func(), len(udp))
	held := 0
	for i, c := range udp {
		r, err := detachUDP(c)
		if err != nil {
			s.log.Warn("udp socket stays on the netpoller", "err", err)
			loops[i] = func() { s.serveUDP(c, i) } // worker i records into metrics shard i
			continue
		}
		held++
		s.wake = append(s.wake, r.wake)
		loops[i] = func() { s.serveRawUDP(r, i) }
	}
	holdProcs(held)
	return loops
}

// mmsgBatch is the kernel-facing memory of one direction of a worker: message headers,
// their iovecs and sockaddrs, each pointing into the others (allocated once, on the heap,
// so the pointers stay valid).
type mmsgBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
}

func newMmsgBatch(n int) *mmsgBatch {
	b := &mmsgBatch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
	}
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// serveRawUDP is the loop of one detached socket, answering into metrics shard sh. It
// returns, closing the socket, when the server stops; after a recovered panic goLoop runs
// it again on the same socket.
func (s *Server) serveRawUDP(r *rawUDP, sh int) {
	defer func() {
		if s.isClosed() {
			r.close()
			releaseProcs(1)
		}
	}()
	in, out := newMmsgBatch(udpBatch), newMmsgBatch(udpBatch)
	for i := range in.hdrs {
		in.bufs[i] = make([]byte, udpReadSize)
		in.iovs[i].Base = &in.bufs[i][0]
		in.iovs[i].SetLen(udpReadSize) // the kernel reads iovecs, never writes them
		in.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&in.names[i]))
		out.bufs[i] = make([]byte, 0, udpWriteSize)
	}
	fd := uintptr(r.fd)
	for {
		for i := range in.hdrs { // what recvmmsg writes back
			in.hdrs[i].Hdr.Namelen = sockaddrSize
			in.hdrs[i].Hdr.Flags = 0
			in.hdrs[i].Len = 0
		}
		rn, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&in.hdrs[0])),
			uintptr(len(in.hdrs)), unix.MSG_WAITFORONE, 0, 0)
		n := int(rn)
		if e != 0 || n == 0 {
			// EINTR (a signal: maybe the runtime wants the P), EAGAIN (the timeout), or
			// nothing at all (shut down).
			if s.isClosed() {
				return
			}
			if e != 0 && e != unix.EINTR && e != unix.EAGAIN {
				s.log.Debug("udp read failed", "err", e)
			}
			runtime.Gosched()
			continue
		}
		w := 0
		for i := 0; i < n; i++ {
			h := &in.hdrs[i]
			src, ok := addrPortOf(&in.names[i], h.Hdr.Namelen)
			if !ok {
				continue
			}
			reply := s.handle(in.bufs[i][:h.Len], src, false, out.bufs[w][:0], sh)
			if len(reply) == 0 {
				continue
			}
			out.bufs[w] = reply // keeps a grown reply alive until it is sent
			out.iovs[w].Base = &reply[0]
			out.iovs[w].SetLen(len(reply))
			out.hdrs[w].Hdr.Name = (*byte)(unsafe.Pointer(&in.names[i]))
			out.hdrs[w].Hdr.Namelen = h.Hdr.Namelen
			w++
		}
		if w == 0 && s.isClosed() {
			return // after shutdown(SHUT_RD) recvmmsg fills the batch with empty messages
		}
		s.sendRaw(fd, out, w)
		for i := 0; i < w; i++ {
			out.bufs[i] = reuseReplyBuf(out.bufs[i])
			out.iovs[i].Base = nil
			out.hdrs[i].Hdr.Name = nil
		}
	}
}

// sendRaw sends out's first w messages, continuing after a partial sendmmsg. A datagram
// that fails to send (or times out on a full send buffer) is skipped: the client retries,
// as after a single sendto that failed.
func (s *Server) sendRaw(fd uintptr, out *mmsgBatch, w int) {
	for sent := 0; sent < w; {
		rn, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&out.hdrs[sent])),
			uintptr(w-sent), 0, 0, 0)
		switch e {
		case 0:
			sent += max(int(rn), 1)
		case unix.EINTR:
			runtime.Gosched()
		default:
			s.log.Debug("udp write failed", "err", e)
			sent++
		}
	}
}

// addrPortOf reads the sender's address from the sockaddr recvmmsg filled in. IPv4-mapped
// IPv6 senders (a dual-stack socket) come out as IPv4, as everywhere else in the server.
func addrPortOf(sa *unix.RawSockaddrInet6, namelen uint32) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		if namelen < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port)), true
	case unix.AF_INET6:
		if namelen < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// ntohs converts a port as stored in a sockaddr (network byte order) to a number.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
