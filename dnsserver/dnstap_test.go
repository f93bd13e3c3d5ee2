package dnsserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	pb "google.golang.org/protobuf/proto"
)

// startTap opens a tap on cfg, runs it on a server of the test policy, and returns both
// with a function that stops the tap and waits for its writer to end the stream.
func startTap(t *testing.T, cfg TapConfig) (*Server, *Tap, func()) {
	t.Helper()
	cfg.Logger = testLogger()
	tap, err := NewTap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0", Logger: testLogger(), UDPWorkers: 2})
	s.SetSnapshot(loadSnapshot(t))
	s.SetTap(tap)
	serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tap.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return s, tap, stop
}

// readTap reads every dnstap frame of the file at path with golang-dnstap's Frame
// Streams reader, as dnstap-read does.
func readTap(t *testing.T, path string) []*dnstap.Dnstap {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := dnstap.NewReader(f, nil)
	if err != nil {
		t.Fatalf("frame streams reader: %v", err)
	}
	var out []*dnstap.Dnstap
	buf := make([]byte, 64<<10)
	for range 10000 { // bounded: the tests write far fewer frames
		n, err := r.ReadFrame(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, framestream.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read frame %d: %v", len(out), err)
		}
		d := new(dnstap.Dnstap)
		if err := pb.Unmarshal(buf[:n], d); err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		out = append(out, d)
	}
	t.Fatal("too many frames")
	return nil
}

// TestDnstapFile queries over UDP and TCP, from IPv4, one name the fast path answers and
// one it does not, and reads the frames back: each query is logged as AUTH_QUERY with
// the query's bytes, then AUTH_RESPONSE with the reply, with the client's address and
// port, the transport and the times.
func TestDnstapFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glbdns.dnstap")
	s, tap, stop := startTap(t, TapConfig{Path: path, Identity: "ns1", Version: "glbdns test"})

	type sent struct {
		name  string
		rcode int
		proto string
		port  uint16
	}
	var want []sent
	for _, c := range []struct {
		name, proto string
		rcode       int
	}{
		{"static.glb.example.com.", "udp", dns.RcodeSuccess},
		{"nothere.glb.example.com.", "udp", dns.RcodeNameError},
		{"www.glb.example.com.", "tcp", dns.RcodeSuccess},
		{"example.org.", "udp", dns.RcodeRefused}, // not ours
	} {
		conn, err := net.Dial(c.proto, s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		dc := &dns.Conn{Conn: conn}
		m := newQuery(c.name, dns.TypeA)
		if err := dc.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		r, err := dc.ReadMsg()
		conn.Close()
		if err != nil || r.Rcode != c.rcode {
			t.Fatalf("%s: %v %v", c.name, err, r)
		}
		want = append(want, sent{c.name, c.rcode, c.proto, netip.MustParseAddrPort(conn.LocalAddr().String()).Port()})
	}
	stop() // writes what is queued and ends the stream
	if st := tap.Stats(); st.Frames != 8 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 8 frames and none dropped", st)
	}

	frames := readTap(t, path)
	if len(frames) != 2*len(want) {
		t.Fatalf("%d frames, want %d", len(frames), 2*len(want))
	}
	for i, w := range want {
		q, r := frames[2*i], frames[2*i+1]
		for _, f := range []*dnstap.Dnstap{q, r} {
			if string(f.Identity) != "ns1" || string(f.Version) != "glbdns test" || f.GetType() != dnstap.Dnstap_MESSAGE {
				t.Errorf("%s: frame header %q %q %v", w.name, f.Identity, f.Version, f.GetType())
			}
			m := f.Message
			proto := dnstap.SocketProtocol_UDP
			if w.proto == "tcp" {
				proto = dnstap.SocketProtocol_TCP
			}
			if m.GetSocketFamily() != dnstap.SocketFamily_INET || m.GetSocketProtocol() != proto ||
				net.IP(m.QueryAddress).String() != "127.0.0.1" || m.GetQueryPort() != uint32(w.port) {
				t.Errorf("%s: socket %v %v %v:%d, want INET %v 127.0.0.1:%d", w.name, m.GetSocketFamily(),
					m.GetSocketProtocol(), net.IP(m.QueryAddress), m.GetQueryPort(), proto, w.port)
			}
			if m.GetQueryTimeSec() == 0 {
				t.Errorf("%s: no query time", w.name)
			}
		}
		if q.Message.GetType() != dnstap.Message_AUTH_QUERY || r.Message.GetType() != dnstap.Message_AUTH_RESPONSE {
			t.Fatalf("%s: frame types %v, %v", w.name, q.Message.GetType(), r.Message.GetType())
		}
		qm, rm := new(dns.Msg), new(dns.Msg)
		if err := qm.Unpack(q.Message.QueryMessage); err != nil || qm.Response || qm.Question[0].Name != w.name {
			t.Errorf("%s: query message %v %v", w.name, err, qm)
		}
		if err := rm.Unpack(r.Message.ResponseMessage); err != nil || !rm.Response || rm.Question[0].Name != w.name || rm.Rcode != w.rcode {
			t.Errorf("%s: response message %v %v, want rcode %s", w.name, err, rm, dns.RcodeToString[w.rcode])
		}
		rt := r.Message.GetResponseTimeSec()*1e9 + uint64(r.Message.GetResponseTimeNsec())
		qt := r.Message.GetQueryTimeSec()*1e9 + uint64(r.Message.GetQueryTimeNsec())
		if rt < qt {
			t.Errorf("%s: response time %d before query time %d", w.name, rt, qt)
		}
	}
}

// TestDnstapSample logs exactly one query in N, the first of each N, counted across
// sources.
func TestDnstapSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glbdns.dnstap")
	tap, err := NewTap(TapConfig{Path: path, Sample: 10, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := fastServer(t)
	s.SetTap(tap)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tap.Run(ctx); close(done) }()
	out := make([]byte, 0, ednsUDPSize)
	var ids []uint16
	for i := range 95 {
		m := newQuery("static.glb.example.com.", dns.TypeA)
		m.Id = uint16(i)
		req, _ := m.Pack()
		if i%10 == 0 {
			ids = append(ids, m.Id)
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 5353)
		if out = s.Handle(req, src, false, out); out == nil {
			t.Fatal("no reply")
		}
	}
	cancel()
	<-done
	frames := readTap(t, path)
	if len(frames) != 2*len(ids) {
		t.Fatalf("%d frames, want %d", len(frames), 2*len(ids))
	}
	for i, id := range ids {
		m := new(dns.Msg)
		if err := m.Unpack(frames[2*i].Message.QueryMessage); err != nil || m.Id != id {
			t.Errorf("logged query %d: id %d, want %d (%v)", i, m.Id, id, err)
		}
	}
}

// TestDnstapQueueFull drops what the writer cannot keep up with, and counts it: with no
// writer running, a queue of 4 takes 4 queries and drops the rest, and the DNS path
// answers every one.
func TestDnstapQueueFull(t *testing.T) {
	tap, err := NewTap(TapConfig{Path: filepath.Join(t.TempDir(), "q.dnstap"), Queue: 4, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := fastServer(t)
	s.SetTap(tap)
	req, _ := newQuery("static.glb.example.com.", dns.TypeA).Pack()
	out := make([]byte, 0, ednsUDPSize)
	for range 10 {
		if out = s.Handle(req, netip.MustParseAddrPort("192.0.2.1:53"), false, out); out == nil {
			t.Fatal("no reply")
		}
	}
	if st := tap.Stats(); st.Dropped != 6 || len(tap.queue) != 4 {
		t.Fatalf("dropped %d, queued %d; want 6 and 4", st.Dropped, len(tap.queue))
	}
}

// TestDnstapReopen follows a rotation: after the file is renamed and Reopen called, new
// frames go to a new file at the path, and the renamed one is a complete stream.
func TestDnstapReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "glbdns.dnstap")
	s, tap, stop := startTap(t, TapConfig{Path: path})
	exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA))
	waitFrames(t, tap, 2)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	tap.Reopen()
	for range 1000 { // bounded: the writer takes the request at its next turn
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	exchange(t, s, "udp", newQuery("www.glb.example.com.", dns.TypeA))
	waitFrames(t, tap, 4)
	stop()
	if n := len(readTap(t, path+".1")); n != 2 {
		t.Errorf("rotated file: %d frames, want 2", n)
	}
	f := readTap(t, path)
	m := new(dns.Msg)
	if len(f) != 2 || m.Unpack(f[0].Message.QueryMessage) != nil || m.Question[0].Name != "www.glb.example.com." {
		t.Errorf("new file: %d frames, %v", len(f), m)
	}
}

// waitFrames waits, bounded, until tap has written n frames.
func waitFrames(t *testing.T, tap *Tap, n uint64) {
	t.Helper()
	for range 1000 {
		if tap.Stats().Frames >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d frames written, want %d", tap.Stats().Frames, n)
}

// TestDnstapSocket logs to a unix socket read by golang-dnstap's own Frame Streams
// socket input (the bidirectional handshake), as dnstap -u reads it.
func TestDnstapSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tap.sock")
	in, err := dnstap.NewFrameStreamSockInputFromPath(sock)
	if err != nil {
		t.Fatal(err)
	}
	frames := make(chan []byte, 16)
	go in.ReadInto(frames)
	s, _, _ := startTap(t, TapConfig{Path: "unix:" + sock})
	exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA))
	for i, want := range []dnstap.Message_Type{dnstap.Message_AUTH_QUERY, dnstap.Message_AUTH_RESPONSE} {
		var b []byte
		select {
		case b = <-frames: // the writer flushes every burst
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d not received", i)
		}
		d := new(dnstap.Dnstap)
		if err := pb.Unmarshal(b, d); err != nil || d.Message.GetType() != want {
			t.Fatalf("frame %d: %v %v, want %v", i, err, d, want)
		}
	}
}

// benchTap is BenchmarkFastPathStatic with a query log to a file, one query in sample
// logged, its writer running: the difference is what the log costs the DNS path. It
// reports the share of sampled queries the writer could not keep up with (dropped/op).
func benchTap(b *testing.B, sample int) {
	tap, err := NewTap(TapConfig{Path: filepath.Join(b.TempDir(), "bench.dnstap"), Sample: sample, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	s := fastServer(b)
	s.SetTap(tap)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tap.Run(ctx); close(done) }()
	benchFastOn(b, s, newQuery("static.glb.example.com.", dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(tap.Stats().Dropped)/float64(b.N), "dropped/op")
}

func BenchmarkFastPathStaticDnstap(b *testing.B)          { benchTap(b, 1) }
func BenchmarkFastPathStaticDnstapSample100(b *testing.B) { benchTap(b, 100) }

// TestDnstapMetricsLint lints the tap's series with promlint, as TestMetricsLint the
// server's.
func TestDnstapMetricsLint(t *testing.T) {
	tap, err := NewTap(TapConfig{Path: filepath.Join(t.TempDir(), "m.dnstap"), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(tap.Collector())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 4 {
		t.Errorf("%d series, %v; want 4", n, err)
	}
}
