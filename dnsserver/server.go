package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glbdns/glbdns/dnssec"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/geoip"
	"github.com/glbdns/glbdns/xdp"
	"github.com/glbdns/glbdns/zones"
)

// Config configures a Server. The zero value of every field selects its default.
type Config struct {
	// Addr is the address UDP and TCP listen on (same address and port for both).
	// Default "127.0.0.1:5353". Port 0 picks a free port; both protocols get the same one.
	// A host of "::" (or none) is one dual-stack socket per protocol on Linux, which
	// answers IPv4 too (IPv4-mapped), unless net.ipv6.bindv6only is set.
	Addr string
	// Addrs, when not empty, are the addresses to listen on instead of Addr, each as Addr
	// is: UDP and TCP, port 0 picking a free port for each address on its own.
	Addrs []string
	// Logger receives the server's logs (never one line per query at info level).
	// Default slog.Default().
	Logger *slog.Logger
	// UDPWorkers is the number of UDP read loops. Each loop owns its own socket bound with
	// SO_REUSEPORT (Linux), so that the kernel spreads queries across them; queries are
	// answered inline by the loop, never one goroutine per query. Default
	// runtime.GOMAXPROCS(0). Where SO_REUSEPORT is not available a single socket is used.
	// On Linux each loop keeps a P while it waits in the kernel, so Start raises GOMAXPROCS
	// to one more than the loops of all running servers (see udp_linux.go).
	UDPWorkers int
	// TCPIdleTimeout closes a TCP connection that has been idle that long between queries.
	// Default 10s: RFC 7766 Section 6.2.3 recommends an idle timeout "of the order of
	// seconds" for servers.
	TCPIdleTimeout time.Duration
	// MaxTCPConns bounds the number of open TCP connections (RFC 7766 Section 6.2.2 lets
	// servers limit connections). A connection beyond it closes the longest-idle one to
	// come in; when none is idle it is accepted and closed at once. Default 1000.
	MaxTCPConns int
	// MaxTCPConnsPerPrefix bounds the open TCP connections from one source prefix
	// (TCPPrefixV4, TCPPrefixV6), as MaxTCPConns bounds them all: so that one source cannot
	// hold the others out. Default a tenth of MaxTCPConns, at least 1.
	MaxTCPConnsPerPrefix int
	// TCPPrefixV4 and TCPPrefixV6 are the prefix lengths MaxTCPConnsPerPrefix counts by.
	// Default 24 and 56: the addresses of one client network.
	TCPPrefixV4, TCPPrefixV6 int
	// TCPQueryTimeout bounds one query on TCP, from its length prefix to its answer
	// written: a client that has announced a message has it ready, and reads its answer,
	// so a slow one is either broken or holding the connection on purpose (RFC 7766
	// Section 6.2.3 asks for protection against such clients). Default 3s.
	TCPQueryTimeout time.Duration
	// MaxTCPQueriesPerConn closes a TCP connection after that many queries. Default 0,
	// unlimited.
	MaxTCPQueriesPerConn int
	// NSID is this server's identifier, returned to a query with an NSID option (RFC
	// 5001); nil returns none. Identity answers CHAOS TXT id.server and hostname.bind
	// (RFC 4892), Version version.bind and version.server; "" refuses them. All three
	// are off by default: they tell an operator which node answered, and tell anyone.
	NSID              []byte
	Identity, Version string
	// RRL limits the rate of UDP replies per client network and response (rrl.go). The
	// zero value is off; the daemon turns it on by default.
	RRL RRLConfig
	// SignatureCache is the number of RRsets whose online signatures are kept for reuse
	// within their hour (dnssec.Cache; sign.go): 0 is dnssec.DefaultCacheSize, negative
	// none (every DO=1 answer of a signed zone signs).
	SignatureCache int
	// CookieSecrets turn DNS cookies on (RFC 7873, RFC 9018; cookie.go): the first mints
	// server cookies, every one is accepted. None: the COOKIE option is ignored.
	// SetCookieSecrets changes them while serving.
	CookieSecrets []CookieSecret
	// XDP asks for the AF_XDP path on an interface (xdp.go); off by default.
	XDP XDPConfig
}

// TCP defaults (Config).
const (
	DefaultMaxTCPConns     = 1000
	DefaultTCPIdleTimeout  = 10 * time.Second
	DefaultTCPQueryTimeout = 3 * time.Second
)

// DefaultAddr is the listen address when Config.Addr is empty: an unprivileged port on
// loopback, so that running the binary without flags exposes nothing.
const DefaultAddr = "127.0.0.1:5353"

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if len(c.Addrs) == 0 {
		c.Addrs = []string{c.Addr}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.UDPWorkers <= 0 {
		c.UDPWorkers = runtime.GOMAXPROCS(0)
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.MaxTCPConnsPerPrefix <= 0 {
		c.MaxTCPConnsPerPrefix = max(1, c.MaxTCPConns/10)
	}
	if c.TCPPrefixV4 <= 0 || c.TCPPrefixV4 > 32 {
		c.TCPPrefixV4 = 24
	}
	if c.TCPPrefixV6 <= 0 || c.TCPPrefixV6 > 128 {
		c.TCPPrefixV6 = 56
	}
	if c.TCPQueryTimeout <= 0 {
		c.TCPQueryTimeout = DefaultTCPQueryTimeout
	}
	if c.MaxTCPQueriesPerConn < 0 {
		c.MaxTCPQueriesPerConn = 0
	}
}

// HealthSource builds the health view for a snapshot. The view must index members by the
// snapshot's own Member.Index numbering, which is why it is built per snapshot.
type HealthSource interface {
	For(snap *policy.Snapshot) policy.Health
}

// state is everything a query reads that changes while serving: the snapshot, the health
// view built for it, the GeoIP database, and what the metrics and the fast path compiled
// for that snapshot. It sits behind one atomic pointer and is replaced whole (never
// changed in place), so that a query loads it once and no two of its parts can disagree:
// a view built for one snapshot's Member.Index numbering is never paired with another
// snapshot, and the answer counters a query bumps are the ones built for the members it
// selected from.
type state struct {
	snap   *policy.Snapshot
	health policy.Health
	geo    *geoip.DB // for geo and nearest services; nil: none open (they answer their default order)

	// snap's zones in the order of Set.Zones, which per-zone data follows: the metrics
	// zone slot of each (metrics.go) and, in fast, its negative SOA template. zonePos
	// finds a zone's position.
	zones     []*zones.Zone
	zoneSlots []int
	zonePosOf map[*zones.Zone]int // when there are many zones

	answers *answerSet // the per-(service, pool, member) answer counters of snap (metrics.go)
	fast    *fastData  // the fast path's wire data for snap (fastpath.go)
}

// scanZones is the most zones that zonePos finds by comparing pointers, which beats
// hashing; more go through a map.
const scanZones = 8

// zonePos is z's position in st.zones, -1 for nil or a zone of another snapshot.
func (st *state) zonePos(z *zones.Zone) int {
	if z == nil {
		return -1
	}
	if st.zonePosOf != nil {
		if i, ok := st.zonePosOf[z]; ok {
			return i
		}
		return -1
	}
	for i, x := range st.zones {
		if x == z {
			return i
		}
	}
	return -1
}

// zoneSlot is the metrics zone slot of the zone at position pos (0, "none", for -1).
func (st *state) zoneSlot(pos int) int {
	if pos < 0 {
		return 0
	}
	return st.zoneSlots[pos]
}

// zoneIndex is the metrics zone slot of z (0, "none", for nil or a zone of another
// snapshot).
func (st *state) zoneIndex(z *zones.Zone) int { return st.zoneSlot(st.zonePos(z)) }

// Server is an authoritative DNS server for the zones and services of a policy snapshot.
type Server struct {
	cfg Config
	log *slog.Logger

	state atomic.Pointer[state]

	// sigs caches the signatures of signed zones' answers (nil: Config.SignatureCache
	// is negative); presignKick (capacity 1) wakes presignLoop for a new snapshot.
	sigs        *dnssec.Cache
	presignKick chan struct{}

	// mu serialises the changes of state (not queries), and guards what the next state
	// is built from: the health source and the GeoIP database.
	mu     sync.Mutex
	source HealthSource
	geo    *geoip.DB

	panics  atomic.Uint64
	metrics *metrics

	rrl        *rrl // nil: off
	tap        *Tap // the query log (dnstap.go); nil: off. Set by SetTap before serving
	cookieKeys atomic.Pointer[cookieKeys]

	// Listeners and lifecycle.
	lmu      sync.Mutex
	started  bool
	closed   bool
	udp      []net.PacketConn         // the sockets as bound, of every address (on Linux closed again once detached)
	wake     []func()                 // wakes a UDP loop blocked in the kernel (udp_linux.go)
	xdp      atomic.Pointer[xdp.Path] // the AF_XDP path, when it is on (xdp.go)
	tcp      []net.Listener           // one per address
	conns    map[net.Conn]struct{}
	addrs    []netip.AddrPort // bound, in the order of Config.Addrs
	ready    chan struct{}
	readyOne sync.Once
	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup
	tcpConns *tcpConns
}

// New returns a server configured by cfg. It serves nothing until Start; queries answered
// before the first SetSnapshot get SERVFAIL.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "dnsserver"),
		conns: make(map[net.Conn]struct{}),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.metrics = newMetrics(&s.panics, cfg.UDPWorkers*len(cfg.Addrs)) // a shard for every UDP socket
	s.tcpConns = newTCPConns(&s.cfg)
	s.rrl = newRRL(cfg.RRL)
	s.SetCookieSecrets(cfg.CookieSecrets)
	if cfg.SignatureCache >= 0 {
		s.sigs = dnssec.NewCache(cfg.SignatureCache)
		s.presignKick = make(chan struct{}, 1)
	}
	return s
}

// SetCookieSecrets replaces the cookie secrets (Config.CookieSecrets), for a rotation:
// queries in flight finish with the ones they started with. None turns cookies off.
func (s *Server) SetCookieSecrets(secrets []CookieSecret) {
	s.cookieKeys.Store(newCookieKeys(secrets))
}

// SetSnapshot installs a new policy snapshot together with a health view built for it by
// the current HealthSource. Queries in flight finish on the previous pair.
func (s *Server) SetSnapshot(snap *policy.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swapLocked(snap)
}

// SetGeo sets the GeoIP database geo and nearest services look clients up in (nil: none,
// they answer their default order) and swaps it in with the serving snapshot. Safe to
// call while serving; queries in flight finish with the database they started with.
func (s *Server) SetGeo(db *geoip.DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.geo = db
	if st := s.state.Load(); st != nil {
		next := *st
		next.geo = db
		s.state.Store(&next)
	}
}

// locate fills c.Geo for a service that steers by location; one lookup per query, only
// for the services that need it.
func locate(st *state, svc *policy.Service, c *policy.Client) {
	if svc.NeedsGeo && st.geo != nil {
		c.Geo, c.HasGeo = st.geo.LookupIn(c.Addr, svc.GeoCity, svc.GeoASN), true
	}
}

// SetHealthSource sets where health views come from (nil = every member up,
// policy.AllUp{}) and rebuilds the view of the current snapshot. Call HealthChanged
// whenever what the source reports changes.
func (s *Server) SetHealthSource(h HealthSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source = h
	if st := s.state.Load(); st != nil {
		s.swapLocked(st.snap)
	}
}

// HealthChanged rebuilds the health view for the current snapshot and swaps it in.
func (s *Server) HealthChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.state.Load(); st != nil {
		s.swapLocked(st.snap)
	}
}

// swapLocked builds the state for snap from the health source and the GeoIP database and
// swaps it in. What was compiled for snap is reused when the serving state has the same
// snapshot (a health change).
func (s *Server) swapLocked(snap *policy.Snapshot) {
	old := s.state.Load()
	if snap == nil {
		if old != nil {
			s.metrics.retire(old.answers) // a later snapshot carries the counts on
		}
		s.state.Store(nil)
		return
	}
	var h policy.Health = policy.AllUp{}
	if s.source != nil {
		if v := s.source.For(snap); v != nil {
			h = v
		}
	}
	next := &state{snap: snap, health: h, geo: s.geo, fast: compileFast(snap, old)}
	if old != nil && old.snap == snap {
		next.zones, next.zoneSlots, next.zonePosOf, next.answers = old.zones, old.zoneSlots, old.zonePosOf, old.answers
	} else {
		var prev *answerSet
		if old != nil {
			prev = old.answers
		}
		next.zones, next.zoneSlots, next.answers = s.metrics.install(snap, prev)
		if len(next.zones) > scanZones {
			next.zonePosOf = make(map[*zones.Zone]int, len(next.zones))
			for i, z := range next.zones {
				next.zonePosOf[z] = i
			}
		}
	}
	s.state.Store(next)
	if s.presignKick != nil && len(snap.Signers) > 0 && (old == nil || old.snap != snap) {
		select {
		case s.presignKick <- struct{}{}:
		default:
		}
	}
}

// Current returns the serving snapshot and the health view built for it (nil, nil before
// the first SetSnapshot). Both are immutable.
func (s *Server) Current() (*policy.Snapshot, policy.Health) {
	if st := s.state.Load(); st != nil {
		return st.snap, st.health
	}
	return nil, nil
}

// Panics is the number of panics recovered so far (in read loops, connections and queries).
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Ready is closed once Start has bound its sockets (or failed to).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the first bound address, the same port for UDP and TCP; the zero AddrPort
// before Start has bound.
func (s *Server) Addr() netip.AddrPort {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if len(s.addrs) == 0 {
		return netip.AddrPort{}
	}
	return s.addrs[0]
}

// Addrs is every bound address, in the order of Config.Addrs; none before Start has bound.
func (s *Server) Addrs() []netip.AddrPort {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return slices.Clone(s.addrs)
}

// ErrServerClosed is returned by Start when the server was shut down before it started, or
// when it is started twice.
var ErrServerClosed = errors.New("dnsserver: server closed")

// Start binds the UDP sockets and the TCP listener of every address and serves until ctx
// is done or Shutdown is called. It returns nil after a clean stop, or the bind error
// (nothing is served when one address fails to bind).
func (s *Server) Start(ctx context.Context) error {
	s.lmu.Lock()
	if s.started || s.closed {
		s.lmu.Unlock()
		s.markReady()
		return ErrServerClosed
	}
	s.started = true
	s.lmu.Unlock()

	var (
		udp    []net.PacketConn
		tcp    []net.Listener
		counts []int // UDP sockets of each address
	)
	closeAll := func() {
		for _, c := range udp {
			c.Close()
		}
		for _, l := range tcp {
			l.Close()
		}
	}
	for _, addr := range s.cfg.Addrs {
		u, t, err := listen(ctx, addr, s.cfg.UDPWorkers, s.log)
		if err != nil {
			closeAll()
			s.lmu.Lock()
			s.closed = true
			s.lmu.Unlock()
			s.markReady()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		udp, tcp, counts = append(udp, u...), append(tcp, t), append(counts, len(u))
	}
	s.lmu.Lock()
	if s.closed { // Shutdown raced with the bind.
		s.lmu.Unlock()
		closeAll()
		s.markReady()
		return nil
	}
	s.udp, s.tcp = udp, tcp
	for _, t := range tcp {
		a := t.Addr().(*net.TCPAddr).AddrPort()
		s.addrs = append(s.addrs, netip.AddrPortFrom(a.Addr().Unmap(), a.Port()))
	}
	loops := s.udpLoops(udp) // under lmu: stop must see every loop's wake function
	loops = append(loops, s.xdpLoops()...)
	s.lmu.Unlock()

	for _, loop := range loops {
		s.goLoop("udp", loop)
	}
	if s.presignKick != nil {
		s.goLoop("presign", func() { s.presignLoop(ctx) })
	}
	for i, t := range tcp {
		s.goLoop("tcp", func() { s.serveTCP(t) })
		s.log.Info("listening", "addr", s.addrs[i].String(), "udp_sockets", counts[i])
	}
	s.markReady()

	select {
	case <-ctx.Done():
		s.stop()
		s.wg.Wait()
	case <-s.done:
	}
	return nil
}

// Shutdown stops the listeners, closes open TCP connections and waits for every loop to
// return, or for ctx to be done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}

func (s *Server) stop() {
	s.lmu.Lock()
	s.closed = true
	for _, c := range s.udp {
		c.Close()
	}
	for _, wake := range s.wake {
		wake()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.lmu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
}

// markReady closes the Ready channel once, whichever way Start ends its binding phase.
func (s *Server) markReady() { s.readyOne.Do(func() { close(s.ready) }) }

func (s *Server) isClosed() bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.closed
}

// goLoop runs loop in a goroutine tracked by the wait group. A panic is recovered, logged
// with its stack and counted, and the loop is restarted unless the server is closing: a bug
// triggered by one packet must not take a listener down.
func (s *Server) goLoop(name string, loop func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			if !s.runRecovered(name, loop) || s.isClosed() {
				return
			}
			// Bound the restart rate of a loop that panics at once every time.
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// runRecovered runs fn and reports whether it panicked.
func (s *Server) runRecovered(name string, fn func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("panic recovered", "loop", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			panicked = true
		}
	}()
	fn()
	return false
}
