package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// tcpMaxMsg is the largest DNS message TCP framing can carry (a 16-bit length, RFC 1035
// Section 4.2.2).
const tcpMaxMsg = 65535

// tcpBufPool holds per-connection message buffers: a request buffer and a reply buffer
// (with room for the 2-byte length prefix).
var tcpBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// serveTCP accepts connections and serves each in its own goroutine, as the connection
// table admits them (tcpconns.go): a connection it refuses is accepted and closed at once,
// so that the backlog does not fill with clients waiting for a slot (RFC 7766 Section
// 6.2.2).
func (s *Server) serveTCP(l net.Listener) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			// Temporary failures such as EMFILE: back off, bounded, as net/http does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			s.log.Warn("tcp accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		src := remoteAddr(c)
		tc := s.tcpConns.admit(c, src.Addr())
		if tc == nil {
			c.Close()
			continue
		}
		if !s.track(c, true) {
			s.tcpConns.done(tc)
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.tcpConns.done(tc)
			defer s.track(c, false)
			defer c.Close()
			s.runRecovered("tcp_conn", func() { s.serveConn(tc, src) })
		}()
	}
}

// track adds or removes an open connection; adding fails once the server is closing.
func (s *Server) track(c net.Conn, add bool) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// serveConn answers the queries of one connection in order (RFC 7766 Section 6.2.1.1:
// pipelined queries are read and answered one after the other; answering out of order is
// allowed but not needed, as answers never wait on anything).
func (s *Server) serveConn(tc *tcpConn, src netip.AddrPort) {
	c := tc.c
	r := bufio.NewReaderSize(c, 1024)
	reqp := tcpBufPool.Get().(*[]byte)
	outp := tcpBufPool.Get().(*[]byte)
	defer func() {
		tcpBufPool.Put(reqp)
		tcpBufPool.Put(outp)
	}()
	var lenbuf [2]byte
	sh := s.metrics.connShard()
	for n := 0; s.cfg.MaxTCPQueriesPerConn == 0 || n < s.cfg.MaxTCPQueriesPerConn; n++ {
		// Idle timeout while waiting for the next length prefix (RFC 7766 Section 6.2.3).
		// A pipelined query already buffered is not a wait.
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		idle := r.Buffered() < 2
		if idle {
			s.tcpConns.setIdle(tc, true)
		}
		if _, err := io.ReadFull(r, lenbuf[:]); err != nil {
			return
		}
		if idle {
			s.tcpConns.setIdle(tc, false)
		}
		size := int(binary.BigEndian.Uint16(lenbuf[:]))
		// Once the length has arrived the rest must follow promptly, and the answer be read.
		deadline := time.Now().Add(s.cfg.TCPQueryTimeout)
		if err := c.SetDeadline(deadline); err != nil {
			return
		}
		req := *reqp
		if cap(req) < size {
			req = make([]byte, size)
		}
		req = req[:size]
		if _, err := io.ReadFull(r, req); err != nil {
			return
		}
		*reqp = req[:0]

		out := (*outp)[:0]
		if cap(out) < 2 {
			out = make([]byte, 0, 512)
		}
		// Handle appends after the 2-byte prefix slot.
		reply := s.handle(req, src, true, out[2:2], sh)
		if reply == nil {
			// Nothing to say (a response, or less than a header): the framing is intact,
			// so carry on with the next message.
			continue
		}
		var frame []byte
		if 2+len(reply) <= cap(out) && &out[:3][2] == &reply[0] {
			frame = out[:2+len(reply)]
		} else { // Handle outgrew the buffer
			frame = make([]byte, 2+len(reply))
			copy(frame[2:], reply)
		}
		binary.BigEndian.PutUint16(frame, uint16(len(reply)))
		*outp = frame[:0]
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// remoteAddr is the connection's source, IPv4-mapped addresses unmapped.
func remoteAddr(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src := ta.AddrPort()
		return netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	return netip.AddrPort{}
}
