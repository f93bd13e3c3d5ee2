package probe

import (
	"context"
	"crypto/x509"
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
	srv := httptest.NewServer(mux)
	defer srv.Close()
	target := targetOf(t, srv.Listener.Addr().String())

	tests := []struct {
		name   string
		check  policy.Check
		target Target
		ok     bool
		reason string // substring of Reason when !ok
	}{
		{name: "200", check: policy.Check{Path: "/ok"}, ok: true},
		{name: "500", check: policy.Check{Path: "/fail"}, reason: "unexpected status 500"},
		{name: "500 expected", check: policy.Check{Path: "/fail", ExpectStatus: []policy.StatusRange{{Lo: 500, Hi: 599}}}, ok: true},
		{name: "404 default path", check: policy.Check{}, reason: "unexpected status 404"},
		{name: "slow past timeout", check: policy.Check{Path: "/slow", Timeout: 100 * time.Millisecond}, reason: "timeout"},
		{name: "body substring", check: policy.Check{Path: "/ok", ExpectBody: "healthy"}, ok: true},
		{name: "wrong body", check: policy.Check{Path: "/ok", ExpectBody: "sick"}, reason: `body does not contain "sick"`},
		{name: "body regexp", check: policy.Check{Path: "/ok", ExpectBodyRegexp: `v\d+$`}, ok: true},
		{name: "body regexp mismatch", check: policy.Check{Path: "/ok", ExpectBodyRegexp: `^v\d+`}, reason: "body does not match"},
		{name: "bad regexp", check: policy.Check{Path: "/ok", ExpectBodyRegexp: `(`}, reason: "bad expect_body_regexp"},
		{name: "redirect not followed", check: policy.Check{Path: "/redirect", ExpectStatus: []policy.StatusRange{{Lo: 302, Hi: 302}}}, ok: true},
		{name: "redirect followed", check: policy.Check{Path: "/redirect", FollowRedirects: true}, reason: "unexpected status 500"},
		{name: "host method headers", check: policy.Check{Path: "/vhost", Method: "HEAD", Host: "app.example.com", Headers: map[string]string{"X-Probe": "yes"}}, ok: true},
		{name: "vhost missing", check: policy.Check{Path: "/vhost", Method: "HEAD"}, reason: "unexpected status 404"},
		{name: "connection refused", check: policy.Check{Path: "/ok"}, target: closedPort(t), reason: "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check.Type = "http"
			tgt := tc.target
			if tgt.Port == 0 {
				tgt = target
			}
			res := Run(context.Background(), Default, tgt, &tc.check)
			checkResult(t, res, tc.ok, tc.reason)
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
		check  policy.Check
		ok     bool
		reason string
	}{
		{name: "insecure", check: policy.Check{Insecure: true, ExpectBody: "tls ok"}, ok: true},
		{name: "untrusted", check: policy.Check{}, reason: "certificate"},
		// httptest's certificate is valid for example.com and 127.0.0.1.
		{name: "server name and CA", prober: HTTP{RootCAs: pool}, check: policy.Check{ServerName: "example.com"}, ok: true},
		{name: "host header names server", prober: HTTP{RootCAs: pool}, check: policy.Check{Host: "example.com"}, ok: true},
		{name: "wrong server name", prober: HTTP{RootCAs: pool}, check: policy.Check{ServerName: "other.test"}, reason: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check.Type = "https"
			probers := map[string]Func{"https": tc.prober.Probe}
			res := Run(context.Background(), probers, target, &tc.check)
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
		check  policy.Check
		ok     bool
		reason string
	}{
		{name: "accepts", target: accept, ok: true},
		{name: "refused", target: closedPort(t), reason: "connect"},
		{name: "never answers", target: silent, check: policy.Check{Expect: "+OK", Timeout: 100 * time.Millisecond}, reason: "timeout"},
		{name: "send expect", target: echo, check: policy.Check{Send: "PING\r\n", Expect: "+PONG"}, ok: true},
		{name: "wrong reply", target: echo, check: policy.Check{Send: "HELLO\r\n", Expect: "+PONG"}, reason: "does not start with"},
		{name: "send only", target: accept, check: policy.Check{Send: "QUIT\r\n"}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check.Type = "tcp"
			res := Run(context.Background(), Default, tc.target, &tc.check)
			checkResult(t, res, tc.ok, tc.reason)
		})
	}
}

func TestDNS(t *testing.T) {
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
	defer srv.Shutdown()
	<-started
	target := targetOf(t, pc.LocalAddr().String())

	// A UDP port with nobody behind it: the query times out or is refused (ICMP).
	silent := closedPort(t)

	tests := []struct {
		name   string
		target Target
		check  policy.Check
		ok     bool
		reason string
	}{
		{name: "noerror", check: policy.Check{QName: "up.test", QType: "A"}, ok: true},
		{name: "answer", check: policy.Check{QName: "up.test", QType: "A", ExpectAnswer: "192.0.2.7"}, ok: true},
		{name: "wrong answer", check: policy.Check{QName: "up.test", QType: "A", ExpectAnswer: "192.0.2.8"}, reason: "no answer contains 192.0.2.8"},
		{name: "nxdomain unexpected", check: policy.Check{QName: "gone.test", QType: "A"}, reason: "rcode NXDOMAIN, want NOERROR"},
		{name: "nxdomain expected", check: policy.Check{QName: "gone.test", QType: "AAAA", ExpectRcode: "NXDOMAIN"}, ok: true},
		{name: "bad qtype", check: policy.Check{QName: "up.test", QType: "BOGUS"}, reason: "unknown qtype"},
		{name: "no server", target: silent, check: policy.Check{QName: "up.test", Timeout: 200 * time.Millisecond}, reason: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check.Type = "dns"
			tgt := tc.target
			if tgt.Port == 0 {
				tgt = target
			}
			res := Run(context.Background(), Default, tgt, &tc.check)
			checkResult(t, res, tc.ok, tc.reason)
		})
	}
}

func TestRun(t *testing.T) {
	t.Run("unknown type", func(t *testing.T) {
		res := Run(context.Background(), Default, Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 1}, &policy.Check{Type: "icmp"})
		checkResult(t, res, false, `unknown check type "icmp"`)
	})
	t.Run("panic recovered", func(t *testing.T) {
		probers := map[string]Func{"boom": func(context.Context, Target, *policy.Check) Result { panic("kaboom") }}
		res := Run(context.Background(), probers, Target{}, &policy.Check{Type: "boom"})
		checkResult(t, res, false, "prober panic: kaboom")
		if res.Panic == "" {
			t.Error("Panic stack is empty")
		}
	})
	t.Run("target strings", func(t *testing.T) {
		for _, tc := range []struct {
			tgt  Target
			want string
		}{
			{Target{Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}, "192.0.2.1:80"},
			{Target{Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}, "[2001:db8::1]:443"},
			{Target{Host: "app.example.net.", Port: 8080}, "app.example.net:8080"},
		} {
			if got := tc.tgt.String(); got != tc.want {
				t.Errorf("%#v.String() = %q, want %q", tc.tgt, got, tc.want)
			}
		}
	})
}
