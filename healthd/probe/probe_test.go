package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// loadCheck compiles a one-pool policy whose check block holds port and the attributes in
// body, and returns the check as healthd receives it: every default filled in by the
// policy package, as in production.
func loadCheck(tb testing.TB, port int, body string) *policy.Check {
	tb.Helper()
	src := fmt.Sprintf("pool \"p\" {\n  member \"m\" { address = \"127.0.0.1\" }\n  check \"c\" {\n    port = %d\n%s\n  }\n}\n", port, body)
	snap, diags := policy.Load([]policy.File{{Name: "probe_test.hcl", Data: []byte(src)}})
	if diags.HasErrors() {
		tb.Fatalf("load policy:\n%s\n%v", src, diags)
	}
	return snap.Members[0].Checks[0]
}

// probeOnce prepares c with preparers and probes target once; a check that the test
// expects to run must prepare without error.
func probeOnce(t *testing.T, preparers map[string]Preparer, c *policy.Check, target Target) Result {
	t.Helper()
	p := Prepare(preparers, c)
	if err := p.Err(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return p.Probe(context.Background(), target)
}

// targetOf turns a loopback "127.0.0.1:port" listener address into a Target.
func targetOf(t testing.TB, addr string) Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("parse %q: %v", addr, err)
	}
	return Target{Addr: ap.Addr(), Port: int(ap.Port())}
}

// closedPort returns a loopback port nothing listens on (bound, then released).
func closedPort(t *testing.T) Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return targetOf(t, addr)
}

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "status: healthy v42") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "app.example.com" || r.Header.Get("X-Probe") != "yes" || r.Method != http.MethodHead {
			http.Error(w, "wrong vhost", 404)
		}
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "full=1" || r.UserAgent() != userAgent {
			http.Error(w, "wrong query or user agent", 400)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	target := targetOf(t, srv.Listener.Addr().String())

	tests := []struct {
		name   string
		check  string // the check block's attributes besides type and port
		target Target
		ok     bool
		reason string // substring of Reason when !ok
	}{
		{name: "200", check: `path = "/ok"`, ok: true},
		{name: "500", check: `path = "/fail"`, reason: "unexpected status 500"},
		{name: "500 expected", check: `path = "/fail"` + "\n" + `expect_status = ["500-599"]`, ok: true},
		{name: "404 default path", reason: "unexpected status 404"},
		{name: "query and user agent", check: `path = "/query?full=1"`, ok: true},
		{name: "slow past timeout", check: `path = "/slow"` + "\n" + `timeout = "100ms"`, reason: "timeout"},
		{name: "body substring", check: `path = "/ok"` + "\n" + `expect_body = "healthy"`, ok: true},
		{name: "wrong body", check: `path = "/ok"` + "\n" + `expect_body = "sick"`, reason: `body does not contain "sick"`},
		{name: "body regexp", check: `path = "/ok"` + "\n" + `expect_body_regexp = "v\\d+$"`, ok: true},
		{name: "body regexp mismatch", check: `path = "/ok"` + "\n" + `expect_body_regexp = "^v\\d+"`, reason: "body does not match"},
		{name: "redirect not followed", check: `path = "/redirect"` + "\n" + `expect_status = [302]`, ok: true},
		{name: "redirect followed", check: `path = "/redirect"` + "\n" + `follow_redirects = true`, reason: "unexpected status 500"},
		{name: "host method headers", check: `path = "/vhost"` + "\n" + `method = "head"` + "\n" + `host = "app.example.com"` + "\n" + `headers = { "X-Probe" = "yes" }`, ok: true},
		{name: "host header wins", check: `path = "/vhost"` + "\n" + `method = "HEAD"` + "\n" + `host = "other.example.com"` + "\n" + `headers = { "X-Probe" = "yes", "Host" = "app.example.com" }`, ok: true},
		{name: "vhost missing", check: `path = "/vhost"` + "\n" + `method = "HEAD"`, reason: "unexpected status 404"},
		{name: "connection refused", check: `path = "/ok"`, target: closedPort(t), reason: "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgt := tc.target
			if tgt.Port == 0 {
				tgt = target
			}
			c := loadCheck(t, tgt.Port, "type = \"http\"\n"+tc.check)
			res := probeOnce(t, Default, c, tgt)
			checkResult(t, res, tc.ok, tc.reason)
			if tc.ok && !hasPhase(res, "connect") {
				t.Errorf("phases %v lack connect", res.Phases)
			}
		})
	}
}

func checkResult(t *testing.T, res Result, ok bool, reason string) {
	t.Helper()
	if res.OK != ok {
		t.Fatalf("OK = %v (reason %q), want %v", res.OK, res.Reason, ok)
	}
	if ok && res.Reason != "" {
		t.Errorf("Reason = %q on success", res.Reason)
	}
	if !ok && !strings.Contains(res.Reason, reason) {
		t.Errorf("Reason = %q, want it to contain %q", res.Reason, reason)
	}
	if res.At.IsZero() || res.Latency <= 0 {
		t.Errorf("At = %v, Latency = %v: want both set", res.At, res.Latency)
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	defer srv.Close()
	target := targetOf(t, srv.Listener.Addr().String())
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	tests := []struct {
		name   string
		prober HTTP
		check  string
		ok     bool
		reason string
	}{
		{name: "insecure", check: `insecure = true` + "\n" + `expect_body = "tls ok"`, ok: true},
		{name: "untrusted", reason: "certificate"},
		// httptest's certificate is valid for example.com and 127.0.0.1.
		{name: "address and CA", prober: HTTP{RootCAs: pool}, ok: true},
		{name: "server name and CA", prober: HTTP{RootCAs: pool}, check: `server_name = "example.com"`, ok: true},
		{name: "host header names server", prober: HTTP{RootCAs: pool}, check: `host = "example.com:443"`, ok: true},
		{name: "wrong server name", prober: HTTP{RootCAs: pool}, check: `server_name = "other.test"`, reason: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCheck(t, target.Port, "type = \"https\"\n"+tc.check)
			res := probeOnce(t, map[string]Preparer{"https": tc.prober.Prepare}, c, target)
			checkResult(t, res, tc.ok, tc.reason)
			if tc.ok && !hasPhase(res, "tls") {
				t.Errorf("phases %v lack tls", res.Phases)
			}
		})
	}
}

func hasPhase(r Result, name string) bool {
	for _, p := range r.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

// tcpServer accepts connections and hands each to serve.
func tcpServer(t *testing.T, serve func(net.Conn)) Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return targetOf(t, ln.Addr().String())
}

func TestTCP(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	accept := tcpServer(t, func(net.Conn) {})
	silent := tcpServer(t, func(net.Conn) { <-done })
	echo := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(buf)
		if string(buf[:n]) == "PING\r\n" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR\r\n")
		}
	})
	tests := []struct {
		name   string
		target Target
		check  string
		ok     bool
		reason string
	}{
		{name: "accepts", target: accept, ok: true},
		{name: "refused", target: closedPort(t), reason: "connect"},
		{name: "never answers", target: silent, check: `expect = "+OK"` + "\n" + `timeout = "100ms"`, reason: "read reply: timeout"},
		{name: "send expect", target: echo, check: `send = "PING\r\n"` + "\n" + `expect = "+PONG"`, ok: true},
		{name: "wrong reply", target: echo, check: `send = "HELLO\r\n"` + "\n" + `expect = "+PONG"`, reason: "does not start with"},
		{name: "send only", target: accept, check: `send = "QUIT\r\n"`, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCheck(t, tc.target.Port, "type = \"tcp\"\n"+tc.check)
			res := probeOnce(t, Default, c, tc.target)
			checkResult(t, res, tc.ok, tc.reason)
		})
	}
}

// dnsServer serves up.test (an A record) and NXDOMAIN for the rest of test. on a
// loopback UDP port.
func dnsServer(t *testing.T) Target {
	t.Helper()
	mux := dns.NewServeMux()
	mux.HandleFunc("up.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR("up.test. 60 IN A 192.0.2.7")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	mux.HandleFunc("test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	<-started
	return targetOf(t, pc.LocalAddr().String())
}

func TestDNS(t *testing.T) {
	target := dnsServer(t)
	// A UDP port with nobody behind it: the query times out or is refused (ICMP).
	silent := closedPort(t)

	tests := []struct {
		name   string
		target Target
		check  string
		ok     bool
		reason string
	}{
		{name: "noerror", check: `qname = "up.test"`, ok: true},
		{name: "answer", check: `qname = "up.test"` + "\n" + `expect_answer = "192.0.2.7"`, ok: true},
		{name: "wrong answer", check: `qname = "up.test"` + "\n" + `expect_answer = "192.0.2.8"`, reason: "no answer contains 192.0.2.8"},
		{name: "nxdomain unexpected", check: `qname = "gone.test"`, reason: "rcode NXDOMAIN, want NOERROR"},
		{name: "nxdomain expected", check: `qname = "gone.test"` + "\n" + `qtype = "aaaa"` + "\n" + `expect_rcode = "nxdomain"`, ok: true},
		{name: "no server", target: silent, check: `qname = "up.test"` + "\n" + `timeout = "200ms"`, reason: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgt := tc.target
			if tgt.Port == 0 {
				tgt = target
			}
			c := loadCheck(t, tgt.Port, "type = \"dns\"\n"+tc.check)
			res := probeOnce(t, Default, c, tgt)
			checkResult(t, res, tc.ok, tc.reason)
		})
	}
}

// TestPrepareErrors covers checks that cannot run. Some are compiled checks the policy
// accepts but net/http refuses; the others are checks the policy refuses, made by hand
// from a compiled one, as a caller bypassing the policy package would. Each must give a
// prober whose every probe fails with the reason, never a panic.
func TestPrepareErrors(t *testing.T) {
	edit := func(body string, f func(c *policy.Check)) *policy.Check {
		c := *loadCheck(t, 80, body)
		f(&c)
		return &c
	}
	panics := map[string]Preparer{"http": func(*policy.Check) (Func, error) { panic("kaboom") }}
	refuses := map[string]Preparer{"http": func(*policy.Check) (Func, error) { return nil, errors.New("no such thing") }}
	tests := []struct {
		name      string
		preparers map[string]Preparer
		check     *policy.Check
		reason    string
	}{
		{name: "path with a host", check: loadCheck(t, 80, `type = "http"`+"\n"+`path = "//elsewhere.example/x"`), reason: `bad path "//elsewhere.example/x"`},
		{name: "method not a token", check: loadCheck(t, 80, `type = "http"`+"\n"+`method = "GET /"`), reason: "build request"},
		{name: "bad regexp", check: edit(`type = "http"`, func(c *policy.Check) { c.ExpectBodyRegexp = "(" }), reason: "bad expect_body_regexp"},
		{name: "no expect_status", check: edit(`type = "https"`, func(c *policy.Check) { c.ExpectStatus = nil }), reason: "check has no expect_status"},
		{name: "no timeout", check: edit(`type = "tcp"`, func(c *policy.Check) { c.Timeout = 0 }), reason: "check has no timeout"},
		{name: "unknown type", check: edit(`type = "tcp"`, func(c *policy.Check) { c.Type = "icmp" }), reason: `unknown check type "icmp"`},
		{name: "dns without qname", check: edit(`type = "dns"`+"\n"+`qname = "up.test"`, func(c *policy.Check) { c.QName = "" }), reason: "check has no qname"},
		{name: "bad qtype", check: edit(`type = "dns"`+"\n"+`qname = "up.test"`, func(c *policy.Check) { c.QType = "BOGUS" }), reason: `unknown qtype "BOGUS"`},
		{name: "bad rcode", check: edit(`type = "dns"`+"\n"+`qname = "up.test"`, func(c *policy.Check) { c.ExpectRcode = "" }), reason: `unknown rcode ""`},
		{name: "preparer error", preparers: refuses, check: loadCheck(t, 80, `type = "http"`), reason: "no such thing"},
		{name: "preparer panic", preparers: panics, check: loadCheck(t, 80, `type = "http"`), reason: "prober panic: kaboom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			preparers := tc.preparers
			if preparers == nil {
				preparers = Default
			}
			p := Prepare(preparers, tc.check)
			if err := p.Err(); err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Err() = %v, want it to contain %q", err, tc.reason)
			}
			for range 2 {
				checkResult(t, p.Probe(context.Background(), closedPort(t)), false, tc.reason)
			}
		})
	}
}

func TestProbePanic(t *testing.T) {
	preparers := map[string]Preparer{"http": func(*policy.Check) (Func, error) {
		return func(context.Context, Target) Result { panic("kaboom") }, nil
	}}
	res := probeOnce(t, preparers, loadCheck(t, 80, `type = "http"`), closedPort(t))
	checkResult(t, res, false, "prober panic: kaboom")
	if res.Panic == "" {
		t.Error("Panic stack is empty")
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		member policy.Member
		want   string
	}{
		{policy.Member{Addr: netip.MustParseAddr("192.0.2.1")}, "192.0.2.1:80"},
		{policy.Member{Addr: netip.MustParseAddr("2001:db8::1")}, "[2001:db8::1]:80"},
		{policy.Member{Addr: netip.MustParseAddr("::ffff:192.0.2.1")}, "192.0.2.1:80"},
		{policy.Member{Host: "app.example.net."}, "app.example.net:80"},
	} {
		tgt := TargetOf(&tc.member, &policy.Check{Port: 80})
		bare := Target{Addr: tgt.Addr, Host: tgt.Host, Port: tgt.Port}
		if got := tgt.String(); got != tc.want || bare.String() != tc.want {
			t.Errorf("target of %+v: %q (literal %q), want %q", tc.member, got, bare.String(), tc.want)
		}
	}
}
