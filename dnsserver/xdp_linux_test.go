package dnsserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glbdns/glbdns/internal/netns"
	"github.com/miekg/dns"
)

// xdpPair starts, in the server namespace of a veth pair, a server with the AF_XDP path on
// the veth and a reference server without it on the same addresses (other ports), both on
// the test policy. It skips when the kernel refuses the path.
func xdpPair(t *testing.T) (p *netns.Pair, withXDP, sockets *Server) {
	t.Helper()
	p = netns.New(t)
	addrs := []string{netip.AddrPortFrom(p.ServerV4, 0).String(), netip.AddrPortFrom(p.ServerV6, 0).String()}
	start := func(cfg Config) *Server {
		cfg.Addrs, cfg.Logger, cfg.CookieSecrets, cfg.UDPWorkers = addrs, testLogger(), testCookieSecrets, 1
		s := New(cfg)
		s.SetSnapshot(loadSnapshot(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- netns.Do(p.Server, func() error { return s.Start(ctx) }) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("server did not stop")
			}
		})
		select {
		case <-s.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("server did not start")
		}
		if len(s.Addrs()) != 2 {
			t.Fatalf("server bound %v", s.Addrs())
		}
		return s
	}
	withXDP = start(Config{XDP: XDPConfig{Interface: p.ServerIf}})
	if withXDP.xdp.Load() == nil {
		t.Skip("the kernel refuses the af_xdp path here (the server's log says why)")
	}
	return p, withXDP, start(Config{})
}

// udpInDatagrams is the server namespace's count of UDP datagrams the kernel delivered to
// sockets: Udp InDatagrams of /proc/net/snmp (IPv4) plus Udp6InDatagrams of snmp6.
func udpInDatagrams(t *testing.T, ns string) int {
	t.Helper()
	total := 0
	err := netns.Do(ns, func() error {
		v4, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		v6, err := os.ReadFile("/proc/thread-self/net/snmp6")
		if err != nil {
			return err
		}
		// snmp has a line of names and a line of values per protocol; snmp6 a name and a
		// value per line.
		lines := strings.Split(string(v4), "\n")
		found := 0
		for i := 0; i+1 < len(lines); i++ {
			names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || names[0] != "Udp:" || len(vals) != len(names) {
				continue
			}
			for j := range names {
				if names[j] == "InDatagrams" {
					n, err := strconv.Atoi(vals[j])
					total += n
					found++
					if err != nil {
						return err
					}
				}
			}
			break
		}
		for _, line := range strings.Split(string(v6), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Udp6InDatagrams" {
				n, err := strconv.Atoi(f[1])
				total += n
				found++
				if err != nil {
					return err
				}
			}
		}
		if found != 2 {
			return fmt.Errorf("no UDP InDatagrams counters in /proc/net/snmp and snmp6")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestXDPAnswersLikeSockets sends the fast-path corpus (every name, type and EDNS variant
// of TestFastPathIdenticalBytes) from one client socket to a server answering from AF_XDP
// and to one answering from its sockets: the answers must be the same bytes, and the
// kernel must have delivered only the second server's queries to a UDP socket.
func TestXDPAnswersLikeSockets(t *testing.T) {
	p, withXDP, sockets := xdpPair(t)
	type family struct {
		network string
		x, s    netip.AddrPort
		client  netip.Addr
	}
	fams := []family{
		{"udp4", withXDP.Addrs()[0], sockets.Addrs()[0], p.ClientV4},
		{"udp6", withXDP.Addrs()[1], sockets.Addrs()[1], p.ClientV6},
	}
	conns := make([]*net.UDPConn, len(fams))
	for i, f := range fams {
		if err := netns.Do(p.Client, func() error {
			var err error
			conns[i], err = net.ListenUDP(f.network, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	buf := make([]byte, 65536)
	ask := func(c *net.UDPConn, dst netip.AddrPort, req []byte, wait time.Duration) []byte {
		if _, err := c.WriteToUDPAddrPort(req, dst); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(wait))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return nil
			}
			if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) == dst {
				return bytes.Clone(buf[:n])
			}
		}
	}
	// The first datagrams may wait for the client's neighbour resolution.
	for i, f := range fams {
		req := packed(t, newQuery("static.glb.example.com.", dns.TypeA))
		for try := 0; try < 20 && ask(conns[i], f.x, req, 250*time.Millisecond) == nil; try++ {
		}
		for try := 0; try < 20 && ask(conns[i], f.s, req, 250*time.Millisecond) == nil; try++ {
		}
	}

	names := []string{
		"glb.example.com.", "ns1.glb.example.com.", "static.glb.example.com.", "mail.glb.example.com.",
		"x.wild.glb.example.com.", "alias.glb.example.com.", "out.glb.example.com.", "manymx.glb.example.com.",
		"_sip._udp.glb.example.com.", "svcb.glb.example.com.", "sub.glb.example.com.", "x.sub.glb.example.com.",
		"big.glb.example.com.", "www.glb.example.com.", "v4only.glb.example.com.", "rr.glb.example.com.",
		"hash.glb.example.com.", "cdn.glb.example.com.", "nothere.glb.example.com.", "example.org.",
		"multi.glb.example.com.",
	}
	weighted := map[string]bool{"www.glb.example.com.": true, "v4only.glb.example.com.": true, "alias.glb.example.com.": true}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeSRV, dns.TypeHTTPS}
	ednsCases := []ednsCase{
		{name: "none"},
		{name: "edns", edns: true, size: 1232},
		{name: "edns-do-small", edns: true, do: true, size: 100},
		{name: "ecs4-24", edns: true, size: 4096, ecs: "203.0.113.0/24"},
		{name: "ecs6-56", edns: true, do: true, size: 1400, ecs: "2001:db8:1234:5600::/56"},
		{name: "cookie-valid", edns: true, size: 1232, ecs: "203.0.113.0/24", cookie: "valid"},
	}
	before := udpInDatagrams(t, p.Server)
	total, lost := 0, 0
	for _, name := range names {
		for _, qt := range qtypes {
			for _, ec := range ednsCases {
				for ci := range 2 {
					fi := total % len(fams)
					f, c := fams[fi], conns[fi]
					src := netip.AddrPortFrom(f.client, uint16(c.LocalAddr().(*net.UDPAddr).Port))
					req := packed(t, ec.query(t, letterCase(name, ci*2), qt, ci == 1, src))
					total++
					label := fmt.Sprintf("%s/%s/%s/%s", f.network, name, dns.TypeToString[qt], ec.name)
					x := ask(c, f.x, req, 2*time.Second)
					s := ask(c, f.s, req, 2*time.Second)
					if x == nil || s == nil {
						lost++
						t.Errorf("%s: no answer (af_xdp %v, sockets %v)", label, x != nil, s != nil)
						continue
					}
					if weighted[name] && (qt == dns.TypeA || qt == dns.TypeAAAA || qt == dns.TypeANY || name == "alias.glb.example.com.") {
						if len(x) != len(s) || !bytes.Equal(x[:12], s[:12]) {
							t.Errorf("%s: weighted answer shape differs:\naf_xdp  %x\nsockets %x", label, x, s)
						}
						continue
					}
					if !bytes.Equal(x, s) {
						t.Errorf("%s: answers differ:\naf_xdp  %x\nsockets %x", label, x, s)
					}
				}
			}
		}
	}
	delivered := udpInDatagrams(t, p.Server) - before
	// Every query to the socket server reached a socket; none of the af_xdp server's did.
	if delivered != total-lost {
		t.Errorf("the kernel delivered %d datagrams to UDP sockets for %d queries to each server", delivered, total)
	}
	t.Logf("%d queries to each server, byte-compared; %d reached a kernel socket", total, delivered)

	// Malformed messages: the same answer (FORMERR, or none) from both.
	for _, bad := range [][]byte{
		{0x12},
		bytes.Repeat([]byte{0xff}, 40),
		append(packed(t, newQuery("static.glb.example.com.", dns.TypeA))[:12], 0x3f),
		binary.BigEndian.AppendUint16(packed(t, newQuery("static.glb.example.com.", dns.TypeA)), 0xabcd),
	} {
		x := ask(conns[0], fams[0].x, bad, 300*time.Millisecond)
		s := ask(conns[0], fams[0].s, bad, 300*time.Millisecond)
		if !bytes.Equal(x, s) {
			t.Errorf("malformed %x: af_xdp %x, sockets %x", bad, x, s)
		}
	}
}

// TestXDPKeepsTCP: TCP to the address and port the path steers still reaches the server's
// listener, and a query over it is answered.
func TestXDPKeepsTCP(t *testing.T) {
	p, withXDP, _ := xdpPair(t)
	for _, addr := range withXDP.Addrs() {
		var c *dns.Conn
		if err := netns.Do(p.Client, func() error {
			var err error
			c, err = dns.DialTimeout("tcp", addr.String(), 5*time.Second)
			return err
		}); err != nil {
			t.Fatalf("tcp to %s: %v", addr, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMsg(newQuery("static.glb.example.com.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMsg()
		c.Close()
		if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
			t.Errorf("tcp to %s: %v %v", addr, m, err)
		}
	}
}

// TestXDPFallsBack: an interface the path cannot take leaves the server answering from its
// sockets, and the log says why.
func TestXDPFallsBack(t *testing.T) {
	var log bytes.Buffer
	var mu sync.Mutex
	s := New(Config{Addr: "127.0.0.1:0", UDPWorkers: 1, XDP: XDPConfig{Interface: "glbt-none0"},
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))})
	s.SetSnapshot(loadSnapshot(t))
	serve(t, s)
	if s.xdp.Load() != nil {
		t.Fatal("the path is on for an interface that does not exist")
	}
	if r := exchange(t, s, "udp", newQuery("static.glb.example.com.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("the sockets do not answer: %v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if l := log.String(); !strings.Contains(l, `msg="af_xdp path off, answering from sockets"`) || !strings.Contains(l, `err="interface \"glbt-none0\": `) {
		t.Errorf("the log does not say the path is off, and why:\n%s", log.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
