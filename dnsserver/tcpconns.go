package dnsserver

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// tcpConns is the table of open TCP connections, which keeps TCP fair: at most
// Config.MaxTCPConns in all and Config.MaxTCPConnsPerPrefix from one source prefix (IPv4
// /24, IPv6 /56 by default, as a client's addresses usually share one). When a new
// connection would pass either bound, the longest-idle connection that counts against
// it (waiting for its next query) is closed to admit the new one, as Knot's
// tcp-idle-reset and NSD's tcp-reject-overflow do; when none is idle, every one is in the
// middle of a query, and the new connection is refused. So a source that opens
// connections and keeps them open holds at most its prefix's share, and an idle one
// holds nothing that a new client needs.
type tcpConns struct {
	max, perPrefix int
	bits4, bits6   int

	mu       sync.Mutex
	byPrefix map[netip.Prefix]int
	n        int
	idle     tcpConnList // idle connections, longest idle first

	evicted, refused atomic.Uint64
}

// tcpConn is one open connection of the table.
type tcpConn struct {
	c          net.Conn
	prefix     netip.Prefix
	idle       bool
	prev, next *tcpConn // in the idle list while idle
}

// tcpConnList is an intrusive doubly linked list of connections.
type tcpConnList struct{ head, tail *tcpConn }

func (l *tcpConnList) push(c *tcpConn) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *tcpConnList) remove(c *tcpConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func newTCPConns(cfg *Config) *tcpConns {
	return &tcpConns{max: cfg.MaxTCPConns, perPrefix: cfg.MaxTCPConnsPerPrefix,
		bits4: cfg.TCPPrefixV4, bits6: cfg.TCPPrefixV6, byPrefix: map[netip.Prefix]int{}}
}

// prefixOf is the source prefix a connection from addr counts against.
func (t *tcpConns) prefixOf(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified() // not TCP: one prefix for all such
	}
	bits := t.bits6
	if addr.Is4() {
		bits = t.bits4
	}
	p, _ := addr.Prefix(bits)
	return p
}

// admit adds a new connection from src, closing the longest-idle connection that keeps it
// out when there is one; nil when the connection must be refused (every connection that
// counts against it is busy). A new connection counts as busy: its first query is on its
// way.
func (t *tcpConns) admit(c net.Conn, src netip.Addr) *tcpConn {
	tc := &tcpConn{c: c, prefix: t.prefixOf(src)}
	t.mu.Lock()
	var victims []*tcpConn
	if t.byPrefix[tc.prefix] >= t.perPrefix {
		v := t.oldestIdle(func(o *tcpConn) bool { return o.prefix == tc.prefix })
		if v == nil {
			t.mu.Unlock()
			t.refused.Add(1)
			return nil
		}
		victims = append(victims, v)
	}
	if t.n-len(victims) >= t.max {
		v := t.oldestIdle(func(o *tcpConn) bool { return len(victims) == 0 || o != victims[0] })
		if v == nil {
			t.mu.Unlock()
			t.refused.Add(1)
			return nil
		}
		victims = append(victims, v)
	}
	for _, v := range victims {
		t.drop(v)
	}
	t.n++
	t.byPrefix[tc.prefix]++
	t.mu.Unlock()
	for _, v := range victims {
		t.evicted.Add(1)
		v.c.Close() // its read fails, and its goroutine ends
	}
	return tc
}

// oldestIdle is the longest-idle connection that ok accepts, nil when none. Called with
// t.mu held; a scan of at most the connections open, at admission only.
func (t *tcpConns) oldestIdle(ok func(*tcpConn) bool) *tcpConn {
	for c := t.idle.head; c != nil; c = c.next {
		if ok(c) {
			return c
		}
	}
	return nil
}

// drop takes c out of the counts and the idle list. Called with t.mu held.
func (t *tcpConns) drop(c *tcpConn) {
	if c.idle {
		t.idle.remove(c)
		c.idle = false
	}
	t.n--
	if t.byPrefix[c.prefix]--; t.byPrefix[c.prefix] <= 0 {
		delete(t.byPrefix, c.prefix)
	}
	c.prefix = netip.Prefix{} // dropped: done must not count it twice
}

// done removes a connection that ended (unless admission already evicted it).
func (t *tcpConns) done(c *tcpConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.prefix.IsValid() {
		t.drop(c)
	}
}

// setIdle marks c as waiting for its next query (true) or reading one (false).
func (t *tcpConns) setIdle(c *tcpConn, idle bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !c.prefix.IsValid() || c.idle == idle {
		return // evicted, or already so
	}
	c.idle = idle
	if idle {
		t.idle.push(c)
	} else {
		t.idle.remove(c)
	}
}

// count is the number of open connections.
func (t *tcpConns) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// TCPStats are the TCP connection table's counts.
type TCPStats struct {
	Open int // connections open now
	// Evicted counts idle connections closed to admit a new one; Refused, new
	// connections closed at once because every connection that kept them out was busy.
	Evicted, Refused uint64
}

// TCPStats returns the TCP connection table's counts.
func (s *Server) TCPStats() TCPStats {
	return TCPStats{Open: s.tcpConns.count(), Evicted: s.tcpConns.evicted.Load(), Refused: s.tcpConns.refused.Load()}
}
