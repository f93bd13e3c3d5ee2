package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"github.com/prometheus/client_golang/prometheus"
	pb "google.golang.org/protobuf/proto"
)

// The query log, in dnstap (https://dnstap.info): the Frame Streams container of
// protobuf messages that BIND, Knot, Unbound and CoreDNS write, read by dnstap-read,
// kdig -G and the golang-dnstap tools. Each sampled query gives two frames, as BIND's
// "dnstap { auth; }" writes them: AUTH_QUERY with the query as received, then
// AUTH_RESPONSE with the reply as sent; a query that got no reply (dropped, or held back
// by rate limiting) has only the first.
//
// Logging never holds a query up. handle copies a sampled query and its reply into a
// pooled entry and offers it to a bounded queue; when the queue is full the entry is
// dropped and counted. One goroutine (Tap.Run) encodes and writes the frames, so the
// encoding, the protobuf allocations and the writes (a file, or a unix socket whose
// reader may be slow or gone) all happen off the DNS path. With no tap the path pays a
// nil check.

// TapConfig configures a dnstap query log.
type TapConfig struct {
	// Path is where frames go: a file, created anew (truncated) when the tap opens; or
	// "unix:" and a socket path, to which the tap connects as a Frame Streams client
	// (bidirectional handshake; reconnecting every second while the reader is away, the
	// frames of that time dropped and counted).
	Path string
	// Sample logs one query in Sample, counted across every listener: the first, the
	// Sample+1st, and so on, so that 100 queries at 10 log exactly 10. Default 1: every
	// query.
	Sample int
	// Queue is how many sampled queries may wait for the writer. Default 4096: a
	// burst of some milliseconds at a high query rate, at most a few MB of copies.
	Queue int
	// Identity and Version fill the frames' identity and version fields (empty: none).
	Identity, Version string
	// Logger receives the tap's errors (a write that failed, a lost socket), at most
	// once per reconnect. Default slog.Default().
	Logger *slog.Logger
}

// DefaultTapQueue is the default TapConfig.Queue.
const DefaultTapQueue = 4096

// tapRetry is how long the tap waits before connecting again to a socket whose reader
// went away or was never there: as golang-dnstap's SocketWriter retries, without its
// blocking the writes in the meantime.
const tapRetry = time.Second

// tapTimeout bounds one write to a socket and its handshake: a reader stalled that long
// loses the connection, and the queue fills and drops rather than the writer hanging.
const tapTimeout = 5 * time.Second

// tapKeep is the largest entry buffer the pool keeps: a TCP reply can be 64 KiB, and
// an entry kept at that size per queue slot would pin memory for rare big answers.
const tapKeep = 4096

// Tap is a dnstap query log (see TapConfig). Hand it to a Server with SetTap before
// Start, and run it with Run.
type Tap struct {
	cfg    TapConfig
	log    *slog.Logger
	sample uint64
	queue  chan *tapEntry
	reopen chan struct{}

	n       atomic.Uint64 // queries seen, for the sampler (only when Sample > 1)
	dropped atomic.Uint64 // sampled queries not logged: the queue was full, or the output down
	frames  atomic.Uint64 // frames written
	errs    atomic.Uint64 // failed writes and connections

	// What only the writer (Run) touches: the open file (nil for a socket, or after a
	// rotation until it is created again), and the frame it encodes.
	file *os.File
	msg  tapMsg
}

// tapEntry is one sampled query and its reply: buf holds the query's bytes then the
// reply's (qlen of them are the query); no reply: rlen 0 and rtime 0.
type tapEntry struct {
	buf          []byte
	qlen         int
	src          netip.AddrPort
	tcp          bool
	qtime, rtime int64 // Unix nanoseconds
}

var tapPool = sync.Pool{New: func() any { return &tapEntry{buf: make([]byte, 0, 1024)} }}

// NewTap makes a tap from cfg. A file is opened (created, truncated) at once, so that a
// path it cannot write is refused at start; a socket is connected to by Run.
func NewTap(cfg TapConfig) (*Tap, error) {
	if cfg.Path == "" || cfg.Path == "unix:" {
		return nil, errors.New("dnstap: no output path")
	}
	if cfg.Sample <= 0 {
		cfg.Sample = 1
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultTapQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tap{cfg: cfg, log: cfg.Logger.With("component", "dnstap"), sample: uint64(cfg.Sample),
		queue: make(chan *tapEntry, cfg.Queue), reopen: make(chan struct{}, 1)}
	if cfg.Identity != "" {
		t.msg.identity = []byte(cfg.Identity)
	}
	if cfg.Version != "" {
		t.msg.version = []byte(cfg.Version)
	}
	if !t.socket() {
		f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return nil, fmt.Errorf("dnstap: %w", err)
		}
		t.file = f
	}
	return t, nil
}

// socket says that the output is a unix socket.
func (t *Tap) socket() bool { return strings.HasPrefix(t.cfg.Path, "unix:") }

// SetTap makes s log its queries to t (nil: none). Call it before Start or Handle: the
// query path reads the tap without synchronisation.
func (s *Server) SetTap(t *Tap) { s.tap = t }

// take is the sampler: the Unix time in nanoseconds when this query is to be logged, 0
// when not. One atomic add per query when sampling, none when every query is logged.
func (t *Tap) take() int64 {
	if t.sample > 1 && (t.n.Add(1)-1)%t.sample != 0 {
		return 0
	}
	return time.Now().UnixNano()
}

// offer queues a sampled query (req, received at qtime) and its reply (nil: none) for
// the writer, copying both: the caller reuses its buffers. A full queue drops it.
func (t *Tap) offer(req, reply []byte, src netip.AddrPort, tcp bool, qtime int64) {
	e := tapPool.Get().(*tapEntry)
	e.buf = append(append(e.buf[:0], req...), reply...)
	e.qlen, e.src, e.tcp, e.qtime, e.rtime = len(req), src, tcp, qtime, 0
	if reply != nil {
		e.rtime = time.Now().UnixNano()
	}
	select {
	case t.queue <- e:
	default:
		t.dropped.Add(1)
		t.put(e)
	}
}

// put returns e to the pool, unless its buffer grew past tapKeep.
func (t *Tap) put(e *tapEntry) {
	if cap(e.buf) <= tapKeep {
		tapPool.Put(e)
	}
}

// Reopen asks the writer to check its file: when the path no longer names the open
// file (log rotation moved or removed it), the file is closed and created anew at the
// path. A socket is left alone. It never blocks; the daemon calls it on SIGHUP.
func (t *Tap) Reopen() {
	select {
	case t.reopen <- struct{}{}:
	default:
	}
}

// Run writes queued queries until ctx is done, then writes what is queued, ends the
// stream (a Frame Streams STOP frame, and FINISH awaited from a socket's reader) and
// closes the output. Call it once.
//
// A socket whose reader is away is connected to again every tapRetry, its frames
// dropped in the meantime. A file that failed a write (a full disk) is not truncated
// again behind the operator's back: its frames are dropped until it is rotated and
// Reopen called.
func (t *Tap) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil { // a bug here must not take the DNS server down
			t.errs.Add(1)
			t.log.Error("panic recovered", "loop", "dnstap", "panic", fmt.Sprint(r))
		}
	}()
	out := t.open()
	defer func() { out.close() }()
	var retry <-chan time.Time
	if out == nil && t.socket() {
		retry = time.After(tapRetry)
	}
	buf := make([]byte, 0, 2048)
	for {
		select {
		case <-ctx.Done():
			t.drain(out, buf)
			return
		case <-t.reopen:
			if !t.socket() && (out == nil || out.moved(t.cfg.Path)) {
				out.close()
				out, t.file = nil, nil
				out = t.open()
			}
		case <-retry:
			retry = nil
			if out = t.open(); out == nil {
				retry = time.After(tapRetry)
			}
		case e := <-t.queue:
			if out == nil {
				t.dropped.Add(1)
				t.put(e)
				continue
			}
			buf = t.write(out, e, buf)
			if len(t.queue) == 0 && !out.broken { // a burst is written: let the reader see it
				if err := out.w.Flush(); err != nil {
					out.broken, out.err = true, err
				}
			}
			if out.broken && out.err != nil { // once per broken stream
				t.errs.Add(1)
				t.log.Warn("dnstap write failed", "path", t.cfg.Path, "err", out.err)
				out.err = nil
				if t.socket() {
					out.close()
					out, retry = nil, time.After(tapRetry)
				}
			}
		}
	}
}

// drain writes what is queued, at the end of Run.
func (t *Tap) drain(out *tapOutput, buf []byte) {
	for out != nil && !out.broken {
		select {
		case e := <-t.queue:
			buf = t.write(out, e, buf)
		default:
			return
		}
	}
}

// open starts a Frame Streams writer: on the file (opened by NewTap, or created anew
// after a rotation), or on a new connection to the socket. nil when it cannot.
func (t *Tap) open() *tapOutput {
	var c io.ReadWriteCloser
	bidi := false
	if t.socket() {
		conn, err := net.DialTimeout("unix", strings.TrimPrefix(t.cfg.Path, "unix:"), tapTimeout)
		if err != nil {
			t.errs.Add(1)
			t.log.Debug("dnstap socket not connected", "path", t.cfg.Path, "err", err)
			return nil
		}
		c, bidi = conn, true
	} else {
		if t.file == nil {
			f, err := os.OpenFile(t.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
			if err != nil {
				t.errs.Add(1)
				t.log.Warn("dnstap file not opened", "path", t.cfg.Path, "err", err)
				return nil
			}
			t.file = f
		}
		c = t.file
	}
	w, err := framestream.NewWriter(c, &framestream.WriterOptions{
		ContentTypes: [][]byte{dnstap.FSContentType}, Bidirectional: bidi, Timeout: tapTimeout})
	if err != nil {
		t.errs.Add(1)
		t.log.Warn("dnstap stream not started", "path", t.cfg.Path, "err", err)
		_ = c.Close()
		t.file = nil
		return nil
	}
	t.log.Info("dnstap logging", "path", t.cfg.Path, "sample", t.cfg.Sample)
	return &tapOutput{w: w, c: c, f: t.file}
}

// write encodes e as its frames and writes them, returning the protobuf buffer for
// reuse, and e to the pool.
func (t *Tap) write(out *tapOutput, e *tapEntry, buf []byte) []byte {
	defer t.put(e)
	if out.broken {
		t.dropped.Add(1)
		return buf
	}
	var err error
	buf, err = t.frame(out, buf, e, dnstap.Message_AUTH_QUERY)
	if err == nil && e.rtime != 0 {
		buf, err = t.frame(out, buf, e, dnstap.Message_AUTH_RESPONSE)
	}
	if err != nil {
		out.broken, out.err = true, err
		t.dropped.Add(1)
	}
	return buf
}

// tapMsg is the writer's reusable frame: the protobuf messages and the values their
// optional fields point to, so that encoding a frame allocates nothing.
type tapMsg struct {
	d                 dnstap.Dnstap
	m                 dnstap.Message
	dtype             dnstap.Dnstap_Type
	mtype             dnstap.Message_Type
	fam               dnstap.SocketFamily
	proto             dnstap.SocketProtocol
	addr              [16]byte
	port, qns, rns    uint32
	qsec, rsec        uint64
	identity, version []byte
}

// frame writes one frame of e, of type typ.
func (t *Tap) frame(out *tapOutput, buf []byte, e *tapEntry, typ dnstap.Message_Type) ([]byte, error) {
	f := &t.msg
	f.m.Reset()
	f.d.Reset()
	f.mtype, f.m.Type = typ, &f.mtype
	a := e.src.Addr().Unmap()
	f.fam = dnstap.SocketFamily_INET
	if a.Is6() {
		f.fam = dnstap.SocketFamily_INET6
	}
	f.addr = a.As16()
	if a.Is4() {
		f.m.QueryAddress = f.addr[12:]
	} else {
		f.m.QueryAddress = f.addr[:]
	}
	f.proto = dnstap.SocketProtocol_UDP
	if e.tcp {
		f.proto = dnstap.SocketProtocol_TCP
	}
	f.m.SocketFamily, f.m.SocketProtocol = &f.fam, &f.proto
	f.port = uint32(e.src.Port())
	f.qsec, f.qns = uint64(e.qtime/1e9), uint32(e.qtime%1e9)
	f.m.QueryPort, f.m.QueryTimeSec, f.m.QueryTimeNsec = &f.port, &f.qsec, &f.qns
	if typ == dnstap.Message_AUTH_QUERY {
		f.m.QueryMessage = e.buf[:e.qlen]
	} else {
		f.m.ResponseMessage = e.buf[e.qlen:]
		f.rsec, f.rns = uint64(e.rtime/1e9), uint32(e.rtime%1e9)
		f.m.ResponseTimeSec, f.m.ResponseTimeNsec = &f.rsec, &f.rns
	}
	f.dtype = dnstap.Dnstap_MESSAGE
	f.d.Type, f.d.Message, f.d.Identity, f.d.Version = &f.dtype, &f.m, f.identity, f.version
	buf, err := pb.MarshalOptions{}.MarshalAppend(buf[:0], &f.d)
	if err != nil { // not reached: every required field is set
		return buf, err
	}
	if _, err := out.w.WriteFrame(buf); err != nil {
		return buf, err
	}
	t.frames.Add(1)
	return buf, nil
}

// tapOutput is a running Frame Streams writer and what it writes to.
type tapOutput struct {
	w      *framestream.Writer
	c      io.Closer
	f      *os.File // the file, to tell whether it was moved (nil: a socket)
	broken bool
	err    error
}

// close ends the stream (unless it broke: then the peer may never answer) and closes
// the output; nil is a no-op.
func (o *tapOutput) close() {
	if o == nil {
		return
	}
	if !o.broken {
		_ = o.w.Flush()
		_ = o.w.Close()
	}
	_ = o.c.Close()
}

// moved says that path no longer names the open file (it was renamed or removed).
func (o *tapOutput) moved(path string) bool {
	if o.f == nil {
		return false
	}
	open, err := o.f.Stat()
	if err != nil {
		return true
	}
	now, err := os.Stat(path)
	return err != nil || !os.SameFile(open, now)
}

// TapStats are a tap's counts since it was made.
type TapStats struct {
	Frames  uint64 // frames written
	Dropped uint64 // sampled queries not logged: queue full, or output down
	Errors  uint64 // failed writes, connections and opens
}

// Stats returns t's counts.
func (t *Tap) Stats() TapStats {
	return TapStats{Frames: t.frames.Load(), Dropped: t.dropped.Load(), Errors: t.errs.Load()}
}

var (
	descTapFrames = prometheus.NewDesc("glbdns_dnstap_frames_total",
		"dnstap frames written to the query log (two per logged query with a reply: AUTH_QUERY and AUTH_RESPONSE).", nil, nil)
	descTapDropped = prometheus.NewDesc("glbdns_dnstap_dropped_total",
		"Sampled queries not logged because the dnstap queue was full or its output was down; the DNS path never waits for the log.", nil, nil)
	descTapErrors = prometheus.NewDesc("glbdns_dnstap_errors_total",
		"Failed dnstap writes, socket connections and file opens.", nil, nil)
	descTapQueue = prometheus.NewDesc("glbdns_dnstap_queue_length",
		"Sampled queries waiting for the dnstap writer.", nil, nil)
)

// Collector exports t's series (listed in the package comment).
func (t *Tap) Collector() prometheus.Collector { return (*tapCollector)(t) }

type tapCollector Tap

func (c *tapCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTapFrames
	ch <- descTapDropped
	ch <- descTapErrors
	ch <- descTapQueue
}

func (c *tapCollector) Collect(ch chan<- prometheus.Metric) {
	t := (*Tap)(c)
	st := t.Stats()
	ch <- prometheus.MustNewConstMetric(descTapFrames, prometheus.CounterValue, float64(st.Frames))
	ch <- prometheus.MustNewConstMetric(descTapDropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(descTapErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(descTapQueue, prometheus.GaugeValue, float64(len(t.queue)))
}
