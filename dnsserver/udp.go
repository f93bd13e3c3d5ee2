package dnsserver

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg call moves: enough to amortise the
// system call under load, small enough that a worker's buffers stay in cache.
const udpBatch = 32

// udpReadSize is the receive buffer per datagram. Queries are small (a question and an
// OPT); 4096 leaves room for any legitimate query with options. A larger datagram is
// truncated by the kernel and then fails to parse, which is the right outcome.
const udpReadSize = 4096

// udpWriteSize is the initial reply buffer per datagram: our advertised EDNS payload size
// (1232) is the most a UDP reply can carry, so replies fit without growing.
const udpWriteSize = ednsUDPSize

// batchConn is the part of ipv4.PacketConn and ipv6.PacketConn the read loop uses
// (recvmmsg/sendmmsg on Linux, one datagram per call elsewhere).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c net.PacketConn) batchConn {
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() == nil && len(ua.IP) == net.IPv6len {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// serveUDP is the portable loop: it reads datagrams in batches through the netpoller and
// answers them inline, in the reading goroutine, into metrics shard sh. On Linux
// serveRawUDP (udp_linux.go) serves the sockets instead.
func (s *Server) serveUDP(c net.PacketConn, sh int) {
	bc := newBatchConn(c)
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpReadSize)}
		out[i].Buffers = [][]byte{make([]byte, 0, udpWriteSize)}
	}
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			s.log.Debug("udp read failed", "err", err)
			continue
		}
		w := 0
		for i := 0; i < n; i++ {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			src := ua.AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			buf := out[w].Buffers[0]
			reply := s.handle(m.Buffers[0][:m.N], src, false, buf, sh)
			if reply == nil {
				continue
			}
			out[w].Buffers[0] = reply
			out[w].Addr = ua
			out[w].N = 0
			w++
		}
		s.writeAll(bc, out[:w])
		for i := 0; i < w; i++ {
			out[i].Buffers[0] = reuseReplyBuf(out[i].Buffers[0])
			out[i].Addr = nil
		}
	}
}

// reuseReplyBuf empties a sent reply's buffer for the next reply, replacing one that an
// odd reply grew far past the usual size so that the loop does not pin it.
func reuseReplyBuf(b []byte) []byte {
	if cap(b) > 4*udpWriteSize {
		return make([]byte, 0, udpWriteSize)
	}
	return b[:0]
}

// writeAll sends every message, continuing after a partial sendmmsg. A datagram that fails
// to send is dropped (the client retries), as a single sendto would.
func (s *Server) writeAll(bc batchConn, ms []ipv4.Message) {
	for len(ms) > 0 {
		n, err := bc.WriteBatch(ms, 0)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("udp write failed", "err", err)
			}
			// Skip the message that failed and carry on with the rest.
			n++
		}
		if n <= 0 {
			n = 1
		}
		if n > len(ms) {
			n = len(ms)
		}
		ms = ms[n:]
	}
}
