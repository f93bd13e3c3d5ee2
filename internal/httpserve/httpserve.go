// Package httpserve bounds the HTTP listeners of glbdns (admin) and healthd (health API),
// which may face more than their operators: every connection is bounded in time (header,
// whole request, response, idle), in bytes (headers), and in number, in all and per source
// address. A listener at its bound accepts a new connection and closes it at once, so that
// the kernel's backlog does not fill and the file descriptors it holds stay within a
// budget that leaves the DNS listener, the probes and a reload theirs (Budget).
package httpserve

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection defaults (Config).
const (
	DefaultMaxConns          = 256
	DefaultMaxConnsPerSource = 32
)

// Config bounds one HTTP listener. Zero fields take the defaults.
type Config struct {
	// MaxConns bounds the open connections (default DefaultMaxConns); MaxConnsPerSource
	// those from one IP address (default DefaultMaxConnsPerSource: Terraform's ten writers
	// and a scraper fit).
	MaxConns, MaxConnsPerSource int
	// ReadHeaderTimeout bounds the request headers (default 5s), ReadTimeout the whole
	// request, body included (default 30s: a slow body is not held open), WriteTimeout
	// a response (default 30s; a blocking watch extends its own, see ExtendWrite), and
	// IdleTimeout a kept-alive connection between requests (default 60s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request headers (default 64 KiB).
	MaxHeaderBytes int
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConns, DefaultMaxConns)
	def(&c.MaxConnsPerSource, DefaultMaxConnsPerSource)
	def(&c.MaxHeaderBytes, 64<<10)
	defD(&c.ReadHeaderTimeout, 5*time.Second)
	defD(&c.ReadTimeout, 30*time.Second)
	defD(&c.WriteTimeout, 30*time.Second)
	defD(&c.IdleTimeout, 60*time.Second)
	return c
}

// Server is an http.Server for h with c's time and header bounds; serve it on Listen's
// listener for the connection bounds.
func (c Config) Server(h http.Handler, errLog *slog.Logger) *http.Server {
	c = c.withDefaults()
	return &http.Server{Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(errLog.Handler(), slog.LevelDebug)}
}

// ExtendWrite lets a handler that answers late by design (a blocking watch) write until
// d from now, past the server's WriteTimeout.
func ExtendWrite(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

// Listener is a net.Listener whose Accept admits at most Config.MaxConns connections,
// MaxConnsPerSource from one address.
type Listener struct {
	net.Listener
	max, perSource int

	mu       sync.Mutex
	n        int
	bySource map[netip.Addr]int

	refused atomic.Uint64
}

// Listen bounds ln's connections as c says.
func Listen(ln net.Listener, c Config) *Listener {
	c = c.withDefaults()
	return &Listener{Listener: ln, max: c.MaxConns, perSource: c.MaxConnsPerSource, bySource: map[netip.Addr]int{}}
}

// Accept returns the next connection within the bounds; the ones beyond are closed as
// they come.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c)
		l.mu.Lock()
		ok := l.n < l.max && l.bySource[src] < l.perSource
		if ok {
			l.n++
			l.bySource[src]++
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, src: src}, nil
	}
}

// Refused counts the connections closed at accept for a bound.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open is the number of connections open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *Listener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

func sourceOf(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// conn releases its slot once, when closed.
type conn struct {
	net.Conn
	l    *Listener
	src  netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

// Budget checks that the process may open need file descriptors besides those it has
// (RLIMIT_NOFILE), and says what is short when it may not: the listeners' bounds add up
// to more than the process can hold, and the one that fills first would starve the others.
func Budget(need int, log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if uint64(need) > lim.Cur {
		log.Warn("file descriptor limit below the listeners' bounds: raise it (LimitNOFILE=) or lower the bounds",
			"nofile", lim.Cur, "need", need)
	}
}
