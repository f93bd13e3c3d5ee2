//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The memory of one socket. Every frame is a 4 KiB page of the UMEM, the region the
// process shares with the kernel; a frame is in exactly one place at a time: the fill ring
// (given to the kernel to receive into), the receive ring (a query to read), the transmit
// ring (an answer to send), the completion ring (sent, to take back) or the loop's free
// list. The loop answers a query in the frame it arrived in, so a frame goes round fill,
// receive, transmit and completion without a copy of the frame.
const (
	frameSize = 4096
	ringSize  = 2048         // each of the four rings
	frames    = 2 * ringSize // enough to keep the fill ring full while the transmit ring is
	umemSize  = frames * frameSize
	batch     = 64 // frames read per pass, and answers sent per kick
)

// ring is one of the four rings: a producer and a consumer index shared with the kernel
// (the other side writes one of them), and the flags word where the kernel asks for a
// wake-up.
type ring struct {
	producer, consumer, flags *uint32
	mem                       []byte
	descs                     unsafe.Pointer
}

func (r *ring) needsWakeup() bool { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// desc is the i-th descriptor of a receive or transmit ring.
func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&(ringSize-1))*unsafe.Sizeof(unix.XDPDesc{})))
}

// addr is the i-th entry of a fill or completion ring.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&(ringSize-1))*8))
}

// socket is one AF_XDP socket bound to one queue, with its own UMEM.
type socket struct {
	fd, queue            int
	umem                 []byte
	fill, comp, rx, tx   ring
	free                 []uint64 // frame addresses the loop holds
	copyMode, wakeupMode bool
}

// openSocket makes the socket for queue of the interface ifindex and fills its fill ring.
// It binds in zero-copy mode where the driver can, else in copy mode.
func openSocket(ifindex, queue int) (s *socket, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("af_xdp socket: %w", err)
	}
	s = &socket{fd: fd, queue: queue}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	s.umem, err = unix.Mmap(-1, 0, umemSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return s, fmt.Errorf("umem: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))), Len: umemSize, Size: frameSize}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return s, fmt.Errorf("register umem (%d MiB; needs CAP_IPC_LOCK or that much RLIMIT_MEMLOCK): %w", umemSize>>20, err)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, ringSize); err != nil {
			return s, fmt.Errorf("ring size: %w", err)
		}
	}
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return s, fmt.Errorf("ring offsets: %w", e)
	}
	descSize := uint64(unsafe.Sizeof(unix.XDPDesc{}))
	for _, m := range []struct {
		r    *ring
		off  unix.XDPRingOffset
		pgof int64
		size uint64
	}{
		{&s.fill, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8},
		{&s.comp, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8},
		{&s.rx, off.Rx, unix.XDP_PGOFF_RX_RING, descSize},
		{&s.tx, off.Tx, unix.XDP_PGOFF_TX_RING, descSize},
	} {
		mem, err := unix.Mmap(fd, m.pgof, int(m.off.Desc+ringSize*m.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return s, fmt.Errorf("map ring: %w", err)
		}
		*m.r = ring{
			producer: (*uint32)(unsafe.Pointer(&mem[m.off.Producer])),
			consumer: (*uint32)(unsafe.Pointer(&mem[m.off.Consumer])),
			flags:    (*uint32)(unsafe.Pointer(&mem[m.off.Flags])),
			mem:      mem,
			descs:    unsafe.Pointer(&mem[m.off.Desc]),
		}
	}
	s.free = make([]uint64, 0, frames)
	for i := frames - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i*frameSize))
	}
	s.refill()
	// Zero-copy first (the driver maps the UMEM for DMA), then copy mode (the kernel
	// copies each frame between its buffers and the UMEM, still skipping the IP and UDP
	// stacks). Need-wakeup lets the loop skip the kick while the kernel is already busy.
	var bindErr error
	for _, mode := range []uint16{unix.XDP_ZEROCOPY, unix.XDP_COPY} {
		for _, wake := range []uint16{unix.XDP_USE_NEED_WAKEUP, 0} {
			sa := &unix.SockaddrXDP{Flags: mode | wake, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
			if bindErr = unix.Bind(fd, sa); bindErr == nil {
				s.copyMode, s.wakeupMode = mode == unix.XDP_COPY, wake != 0
				return s, nil
			}
		}
	}
	return s, fmt.Errorf("bind queue %d: %w", queue, bindErr)
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// refill gives the kernel as many free frames as the fill ring takes.
func (s *socket) refill() {
	prod := *s.fill.producer // only this loop writes it
	room := ringSize - (prod - atomic.LoadUint32(s.fill.consumer))
	n := min(uint32(len(s.free)), room)
	for i := uint32(0); i < n; i++ {
		*s.fill.addr(prod + i) = s.free[len(s.free)-1-int(i)]
	}
	s.free = s.free[:len(s.free)-int(n)]
	atomic.StoreUint32(s.fill.producer, prod+n)
}

// reap takes back the frames the kernel has sent.
func (s *socket) reap() {
	cons := *s.comp.consumer
	n := atomic.LoadUint32(s.comp.producer) - cons
	for i := uint32(0); i < n; i++ {
		s.free = append(s.free, *s.comp.addr(cons + i)&^(frameSize-1))
	}
	atomic.StoreUint32(s.comp.consumer, cons+n)
}

// kick asks the kernel to send what the transmit ring holds. In copy mode the kernel sends
// only when asked, and at most 32 frames a call (TX_BATCH_SIZE in net/xdp/xsk.c), so kick
// asks until the ring is empty; with need-wakeup in zero-copy mode the kernel says when it
// must be asked. A full device queue (EAGAIN, EBUSY, ENOBUFS) leaves the answers on the
// ring for the next kick.
func (s *socket) kick() {
	if !s.copyMode && s.wakeupMode && !s.tx.needsWakeup() {
		return
	}
	for range ringSize / 32 {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if e != 0 && e != unix.EINTR || !s.copyMode || atomic.LoadUint32(s.tx.consumer) == *s.tx.producer {
			return
		}
	}
}

// stats is the kernel's count of what this socket lost.
func (s *socket) stats() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS, uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return st, e
	}
	return st, nil
}

func (s *socket) close() error {
	var errs []error
	for _, r := range []*ring{&s.fill, &s.comp, &s.rx, &s.tx} {
		if r.mem != nil {
			errs = append(errs, unix.Munmap(r.mem))
			r.mem = nil
		}
	}
	if s.fd >= 0 {
		errs = append(errs, unix.Close(s.fd))
		s.fd = -1
	}
	// The UMEM goes last: the kernel holds it until the socket is closed.
	if s.umem != nil {
		errs = append(errs, unix.Munmap(s.umem))
		s.umem = nil
	}
	return errors.Join(errs...)
}
