//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Open loads and attaches the program to cfg.Interface and opens one socket per queue. It
// fails, leaving nothing attached, where the kernel, the interface or the process's
// privileges refuse any part; the caller then serves from its sockets alone.
func Open(cfg Config) (p *Path, err error) {
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", cfg.Interface, err)
	}
	queues := cfg.Queues
	if queues <= 0 {
		queues = rxQueues(cfg.Interface)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p = &Path{iface: cfg.Interface, efd: efd}
	defer func() {
		if err != nil {
			p.Close()
			p = nil
		}
	}()
	p.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "glbdns_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)})
	if err != nil {
		return p, fmt.Errorf("xskmap: %w", err)
	}
	insns, err := program(cfg.Targets, p.xsks)
	if err != nil {
		return p, err
	}
	p.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "glbdns_steer", Type: ebpf.XDP, License: "Apache-2.0", Instructions: insns})
	if err != nil {
		return p, fmt.Errorf("load program: %w", err)
	}
	for q := 0; q < queues; q++ {
		s, err := openSocket(ifc.Index, q)
		if err != nil {
			return p, err
		}
		p.socks = append(p.socks, s)
		if err := p.xsks.Put(uint32(q), uint32(s.fd)); err != nil {
			return p, fmt.Errorf("xskmap queue %d: %w", q, err)
		}
	}
	// The link detaches the program when its descriptor closes, so a process that dies
	// leaves no program steering frames to sockets that are gone.
	p.mode = "native"
	p.link, err = link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
	if err != nil {
		nativeErr := err
		p.mode = "generic"
		p.link, err = link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifc.Index, Flags: link.XDPGenericMode})
		if err != nil {
			return p, fmt.Errorf("attach to %s: native: %v; generic: %w", cfg.Interface, nativeErr, err)
		}
	}
	if p.socks[0].copyMode {
		p.mode += ", copy"
	} else {
		p.mode += ", zero-copy"
	}
	return p, nil
}

// rxQueues is the number of receive queues the interface uses: what the driver reports
// through ethtool (the receive-only and combined channels, as "ethtool -l" shows them),
// else the queues sysfs lists, else one. ethtool is asked first because it answers for
// the caller's network namespace, where sysfs shows the namespace that mounted it.
func rxQueues(iface string) int {
	if n, err := ethtoolRxChannels(iface); err == nil && n > 0 {
		return n
	}
	ents, err := os.ReadDir("/sys/class/net/" + iface + "/queues")
	n := 0
	if err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "rx-") {
				n++
			}
		}
	}
	return max(n, 1)
}

// ethtoolRxChannels asks the driver for its channel counts (ETHTOOL_GCHANNELS), which x/sys
// does not wrap.
func ethtoolRxChannels(iface string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// struct ethtool_channels: cmd, then max rx, tx, other, combined, then the counts
	// in the same order.
	var ch [9]uint32
	ch[0] = unix.ETHTOOL_GCHANNELS
	// struct ifreq: the name, then (in its union) a pointer to the command.
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [24 - unsafe.Sizeof(uintptr(0))]byte
	}
	if len(iface) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q too long", iface)
	}
	copy(ifr.name[:], iface)
	ifr.data = unsafe.Pointer(&ch)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0, e
	}
	return int(ch[5] + ch[8]), nil
}

// Path is the program attached to one interface and its sockets.
type Path struct {
	iface  string
	mode   string
	link   link.Link
	prog   *ebpf.Program
	xsks   *ebpf.Map
	socks  []*socket
	efd    int
	closed atomic.Bool
	// mu orders Dropped, which a metrics scrape may call at any time, against Close.
	mu sync.Mutex
}

// Queues is the number of sockets, one per receive queue: Serve takes 0 to Queues()-1.
func (p *Path) Queues() int { return len(p.socks) }

// Mode says how the program is attached ("native" in the driver, "generic" after the
// kernel has built its packet buffer) and how frames reach the sockets ("zero-copy" or
// "copy").
func (p *Path) Mode() string { return p.mode }

// Interface is the interface the program is attached to.
func (p *Path) Interface() string { return p.iface }

// Dropped is what the kernel counted lost on every socket: frames it had no room to
// receive (a full receive ring or an empty fill ring) and descriptors it refused.
func (p *Path) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, s := range p.socks {
		if st, err := s.stats(); err == nil {
			n += st.Rx_dropped + st.Rx_ring_full + st.Rx_invalid_descs + st.Tx_invalid_descs
		}
	}
	return n
}

// Serve is the loop of queue q's socket: it answers each query with h in the frame the
// query came in and sends the answers in batches, until Wake. It holds its P while it
// waits (the wait is a raw system call), as the caller's socket loops do, and must run in
// one goroutine per queue.
func (p *Path) Serve(q int, h Handler) {
	s := p.socks[q]
	req := make([]byte, frameSize)
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(p.efd), Events: unix.POLLIN}}
	for !p.closed.Load() {
		s.reap()
		s.refill()
		cons := *s.rx.consumer
		n := atomic.LoadUint32(s.rx.producer) - cons
		if n == 0 {
			if s.wakeupMode && s.fill.needsWakeup() || atomic.LoadUint32(s.tx.consumer) != *s.tx.producer {
				s.kick()
			}
			// ppoll writes the time left back into its timeout: a fresh one each time.
			wait := unix.Timespec{Nsec: 200_000_000}
			_, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&wait)), 0, 0, 0)
			if e == unix.EINTR {
				runtime.Gosched() // the signal was the runtime asking this goroutine to yield
			}
			continue
		}
		n = min(n, batch)
		txProd := *s.tx.producer
		room := ringSize - (txProd - atomic.LoadUint32(s.tx.consumer))
		sent := uint32(0)
		for i := uint32(0); i < n; i++ {
			d := s.rx.desc(cons + i)
			base := d.Addr &^ (frameSize - 1)
			if sent < room && d.Addr+uint64(d.Len) <= base+frameSize && base+frameSize <= umemSize {
				if l := answer(s.umem[d.Addr:base+frameSize], int(d.Len), req, h); l > 0 {
					td := s.tx.desc(txProd + sent)
					td.Addr, td.Len, td.Options = d.Addr, uint32(l), 0
					sent++
					continue
				}
			}
			s.free = append(s.free, base)
		}
		atomic.StoreUint32(s.rx.consumer, cons+n)
		if sent > 0 {
			atomic.StoreUint32(s.tx.producer, txProd+sent)
			s.kick()
		}
	}
}

// answer answers the query in frame f (its first n bytes) in place and returns the length
// of the answer frame, or 0 to send nothing. The payload is copied to req first, because
// the answer is written over it.
func answer(f []byte, n int, req []byte, h Handler) int {
	q, ok := parse(f[:n])
	if !ok {
		return 0
	}
	m := copy(req, q.payload)
	out := f[q.hdrLen:q.hdrLen]
	reply := h(req[:m], q.src, out)
	if len(reply) == 0 {
		return 0
	}
	if unsafe.SliceData(reply) != unsafe.SliceData(f[q.hdrLen:]) {
		// The handler needed more room than the frame has past the headers, or answered
		// from a buffer of its own: copy what fits.
		if len(reply) > cap(out) {
			return 0
		}
		copy(f[q.hdrLen:], reply)
	}
	return writeReply(f, q, len(reply))
}

// Wake makes every Serve return, at once if it is waiting.
func (p *Path) Wake() {
	p.closed.Store(true)
	var one [8]byte
	one[0] = 1
	unix.Write(p.efd, one[:])
}

// Close detaches the program and closes the sockets. Call it after every Serve has
// returned.
func (p *Path) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed.Store(true)
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
	}
	for _, s := range p.socks {
		errs = append(errs, s.close())
	}
	if p.prog != nil {
		errs = append(errs, p.prog.Close())
	}
	if p.xsks != nil {
		errs = append(errs, p.xsks.Close())
	}
	if p.efd >= 0 {
		errs = append(errs, unix.Close(p.efd))
		p.efd = -1
	}
	return errors.Join(errs...)
}
