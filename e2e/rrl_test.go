package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/internal/dnsflood"
)

// bigPolicy is a zone with a name of 60 addresses, whose answer (about 1 KB) is what an
// amplifier would be asked for.
func bigPolicy() string {
	var vals []string
	for i := range 60 {
		vals = append(vals, fmt.Sprintf("%q", fmt.Sprintf("192.0.2.%d", i+1)))
	}
	return clusterPolicy + `
zone "amp.test" {
  nameservers = ["ns1.amp.test"]
  record "big" {
    type   = "A"
    values = [` + strings.Join(vals, ", ") + `]
  }
}
`
}

// bigQuery is the flood's query: big.amp.test A with EDNS (1232 bytes), and a COOKIE
// option when cookie is set.
func bigQuery(t *testing.T, cookie []byte) []byte {
	m := new(dns.Msg)
	m.SetQuestion("big.amp.test.", dns.TypeA)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	if cookie != nil {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cookie)})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cookieExchange sends a query with client cookie cc over netw from local to addr and
// returns the reply's rcode and COOKIE option.
func cookieExchange(t *testing.T, netw, local, addr string, cookie []byte) (int, []byte) {
	t.Helper()
	c := dns.Client{Net: netw, Timeout: 2 * time.Second}
	if local != "" {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(local)}}
	}
	m := new(dns.Msg)
	m.SetQuestion("big.amp.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cookie)})
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query with a cookie: %v", netw, err)
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				b, err := hex.DecodeString(c.Cookie)
				if err != nil {
					t.Fatal(err)
				}
				return r.Rcode, b
			}
		}
	}
	return r.Rcode, nil
}

// TestRRLFlood is the red team's amplification flood on the real binary with its default
// rate limiting (100 replies a second, every second limited one slipped): 20,000
// identical queries from 127.0.0.50 in one second get at most the rate of full answers a
// second, and the slips; a client of another network asking meanwhile is answered in
// full; the same flood with a valid server cookie is answered in full. The amplification
// (bytes out over bytes in) is logged beside that of a server with rate limiting off.
func TestRRLFlood(t *testing.T) {
	const n, rate = 20000, 100
	files := map[string]string{"zone.hcl": bigPolicy()}
	_, addr, _ := startGLBDNS(t, files)
	_, open, _ := startGLBDNS(t, files, "-rrl-rate", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Meanwhile, another network asks 50 times, 20 ms apart.
	var wg sync.WaitGroup
	var otherFull, otherAsked int
	wg.Go(func() {
		c := dns.Client{Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.1.1")}}}
		for range 50 {
			m := new(dns.Msg)
			m.SetQuestion("big.amp.test.", dns.TypeA)
			m.SetEdns0(1232, false)
			otherAsked++
			if r, _, err := c.Exchange(m, addr); err == nil && !r.Truncated && len(r.Answer) == 60 {
				otherFull++
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	flood, err := dnsflood.Run(ctx, "127.0.0.50:0", addr, bigQuery(t, nil), n, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("rate limited: %+v, bytes out/in %.2f", flood, flood.Amplification())
	seconds := math.Ceil(flood.Took.Seconds())
	if flood.Full < rate || float64(flood.Full) > rate*(1+seconds) {
		t.Errorf("%d full answers to %d queries in %v, want %d a second (the bucket's burst and its refills)", flood.Full, flood.Sent, flood.Took, rate)
	}
	limited := flood.Sent - flood.Full
	if flood.Truncated > limited/2+1 || flood.Truncated < limited*4/10 {
		t.Errorf("%d slipped replies of %d limited, want half (-rrl-slip 2)", flood.Truncated, limited)
	}
	if otherFull != otherAsked {
		t.Errorf("another network: %d of %d answered in full during the flood", otherFull, otherAsked)
	}
	if a := flood.Amplification(); a > 1 {
		t.Errorf("rate limited flood: %.2f bytes out per byte in, want under 1", a)
	}

	// The same flood from a network with a valid server cookie: all answered.
	cc := []byte("glbdns-t")
	rc, cookie := cookieExchange(t, "udp", "127.0.2.1", addr, cc)
	if rc != dns.RcodeSuccess || len(cookie) != 24 {
		t.Fatalf("a client cookie got rcode %d, cookie %x", rc, cookie)
	}
	withCookie, err := dnsflood.Run(ctx, "127.0.2.1:0", addr, bigQuery(t, cookie), n, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with a valid server cookie: %+v, bytes out/in %.2f", withCookie, withCookie.Amplification())
	// Nothing limited: no slip (every second limited reply would be one) and far more full
	// answers than the rate allows. What does not come back is lost in the sockets'
	// buffers, which a busy host fills (13% once, with other tests running).
	if withCookie.Truncated != 0 || withCookie.Full < n/2 {
		t.Errorf("with a valid server cookie: %d full and %d truncated of %d, want none limited", withCookie.Full, withCookie.Truncated, n)
	}

	before, err := dnsflood.Run(ctx, "127.0.0.50:0", open, bigQuery(t, nil), n, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rate limiting off: %+v, bytes out/in %.2f", before, before.Amplification())
	if a := before.Amplification(); a < 10 {
		t.Errorf("without rate limiting the flood got %.2f bytes out per byte in; the test's answer is meant to amplify", a)
	}
}

// TestCookiesAcrossNodes runs two nodes that share a cookie secret file and one that has
// its own: a server cookie minted by one node is valid at the other, BADCOOKIE at the
// third (over UDP; over TCP it is answered), and a rotation by the file, reloaded with
// SIGHUP, keeps the old cookies valid while the old secret is listed second.
func TestCookiesAcrossNodes(t *testing.T) {
	dir := t.TempDir()
	shared, own := filepath.Join(dir, "shared"), filepath.Join(dir, "own")
	oldSecret, newSecret := "000102030405060708090a0b0c0d0e0f", "f0e0d0c0b0a090807060504030201000"
	for f, s := range map[string]string{shared: oldSecret + "\n", own: "8899aabbccddeeff0011223344556677\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"zone.hcl": bigPolicy()}
	a, addrA, _ := startGLBDNS(t, files, "-cookie-secret-file", shared)
	_, addrB, _ := startGLBDNS(t, files, "-cookie-secret-file", shared)
	_, addrC, _ := startGLBDNS(t, files, "-cookie-secret-file", own)
	cc := []byte{1, 2, 3, 4, 5, 6, 7, 8}

	rc, cookie := cookieExchange(t, "udp", "", addrA, cc)
	if rc != dns.RcodeSuccess || len(cookie) != 24 || string(cookie[:8]) != string(cc) {
		t.Fatalf("node A: a client cookie got rcode %d, cookie %x", rc, cookie)
	}
	if rc, back := cookieExchange(t, "udp", "", addrB, cookie); rc != dns.RcodeSuccess || string(back) != string(cookie) {
		t.Errorf("node B, same secret: rcode %d, cookie %x, want NOERROR and A's cookie echoed", rc, back)
	}
	rc, fresh := cookieExchange(t, "udp", "", addrC, cookie)
	if rc != dns.RcodeBadCookie || len(fresh) != 24 || string(fresh) == string(cookie) {
		t.Errorf("node C, another secret, UDP: rcode %s, cookie %x, want BADCOOKIE with a fresh cookie", dns.RcodeToString[rc], fresh)
	}
	if rc, _ := cookieExchange(t, "udp", "", addrC, fresh); rc != dns.RcodeSuccess {
		t.Errorf("node C with its own fresh cookie: rcode %s", dns.RcodeToString[rc])
	}
	if rc, _ := cookieExchange(t, "tcp", "", addrC, cookie); rc != dns.RcodeSuccess {
		t.Errorf("node C, another secret, TCP: rcode %s, want NOERROR", dns.RcodeToString[rc])
	}

	// Rotation on node A: the new secret first, the old one still accepted; then the old
	// one gone.
	rotate := func(content string) {
		if err := os.WriteFile(shared, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(a.Logs(), "DNS cookie secrets loaded")
		a.signal(syscall.SIGHUP)
		eventually(t, 5*time.Second, "node A reloads its cookie secrets", func() bool {
			return strings.Count(a.Logs(), "DNS cookie secrets loaded") > n
		})
	}
	rotate(newSecret + "\n" + oldSecret + "\n")
	rc, renewed := cookieExchange(t, "udp", "", addrA, cookie)
	if rc != dns.RcodeSuccess || string(renewed) != string(cookie) {
		t.Errorf("after the rotation, a cookie of the old secret: rcode %s, cookie %x, want it valid and echoed", dns.RcodeToString[rc], renewed)
	}
	rc, minted := cookieExchange(t, "udp", "", addrA, cc)
	if rc != dns.RcodeSuccess || string(minted) == string(cookie) {
		t.Fatalf("after the rotation, a client cookie: rcode %s, cookie %x", dns.RcodeToString[rc], minted)
	}
	rotate(newSecret + "\n")
	if rc, _ := cookieExchange(t, "udp", "", addrA, cookie); rc != dns.RcodeBadCookie {
		t.Errorf("with the old secret gone, its cookie: rcode %s, want BADCOOKIE", dns.RcodeToString[rc])
	}
	if rc, back := cookieExchange(t, "udp", "", addrA, minted); rc != dns.RcodeSuccess || string(back) != string(minted) {
		t.Errorf("the new secret's cookie: rcode %s, cookie %x", dns.RcodeToString[rc], back)
	}
	if rc, _ := cookieExchange(t, "udp", "", addrB, minted); rc != dns.RcodeBadCookie {
		t.Errorf("node B, not rotated yet, the new secret's cookie: rcode %s, want BADCOOKIE", dns.RcodeToString[rc])
	}
}
