package e2e

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// srvSet returns glbdns's SRV answer for name as sorted "target:port" items, and the
// addresses of the additional section.
func srvSet(t *testing.T, addr, name string) (string, string) {
	t.Helper()
	r := query(t, "udp", addr, name, dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(1232, false) })
	var srv, extra []string
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			srv = append(srv, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
	}
	for _, rr := range r.Extra {
		if a, ok := rr.(*dns.A); ok {
			extra = append(extra, a.A.String())
		}
	}
	sort.Strings(srv)
	sort.Strings(extra)
	return strings.Join(srv, ","), strings.Join(extra, ",")
}

// TestSRVFollowsHealth: three backends checked by a real healthd; glbdns answers SRV at
// the service (port from the pool), Go's resolver gets the healthy set, and a stopped
// backend leaves the SRV answer as fast as the A answer: both read one health view.
func TestSRVFollowsHealth(t *testing.T) {
	bs := []*backend{newBackend(t, "127.0.0.31"), newBackend(t, "127.0.0.32"), newBackend(t, "127.0.0.33")}
	pol := healthPolicy(bs, func(i int) string { return bs[i].port() }, "")
	pol = strings.Replace(pol, "pool \"web\" {\n", "pool \"web\" {\n  port = 8443\n", 1)
	pol = strings.Replace(pol, "answers = 3", "answers = 0", 1)
	_, hurl := startHealthd(t, "hd1", map[string]string{"p.hcl": pol})
	_, dnsAddr, _ := startGLBDNS(t, map[string]string{"p.hcl": pol}, "-health", hurl)

	target := func(i int) string { return fmt.Sprintf("m%d.web.web.glb.test.:8443", i) }
	all := strings.Join([]string{target(0), target(1), target(2)}, ",")
	eventually(t, 10*time.Second, "all three members in SRV", func() bool {
		srv, extra := srvSet(t, dnsAddr, "web.glb.test")
		return srv == all && extra == ips(bs...)
	})

	// Go's own resolver, as a client balancing by itself would ask.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, addrs, err := res.LookupSRV(ctx, "", "", "web.glb.test.")
	if err != nil || len(addrs) != 3 {
		t.Fatalf("LookupSRV: %v, %v; want 3 records", addrs, err)
	}
	if hosts, err := res.LookupHost(ctx, addrs[0].Target); err != nil || len(hosts) != 1 {
		t.Errorf("LookupHost(%s) = %v, %v; want its member's address", addrs[0].Target, hosts, err)
	}

	died := time.Now()
	bs[0].stop()
	var aGone, srvGone time.Time
	for aGone.IsZero() || srvGone.IsZero() {
		if time.Since(died) > 10*time.Second {
			t.Fatalf("stopped backend still answered after 10s (A gone %v, SRV gone %v)", !aGone.IsZero(), !srvGone.IsZero())
		}
		if aGone.IsZero() && answerSet(t, dnsAddr, "web.glb.test") == ips(bs[1], bs[2]) {
			aGone = time.Now()
		}
		if srv, _ := srvSet(t, dnsAddr, "web.glb.test"); srvGone.IsZero() && srv == target(1)+","+target(2) {
			srvGone = time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("MEASURE backend death -> A answer without it: %v, SRV answer without it: %v (interval 1s, fall 2)",
		aGone.Sub(died).Round(time.Millisecond), srvGone.Sub(died).Round(time.Millisecond))
	if d := srvGone.Sub(aGone); d > 100*time.Millisecond || d < -100*time.Millisecond {
		t.Errorf("SRV and A answers dropped the backend %v apart, want together", d)
	}
	// The target of the down member still resolves (targets are health-independent).
	r := query(t, "udp", dnsAddr, "m0.web.web.glb.test", dns.TypeA)
	if got := answerAddrs(r); len(got) != 1 || got[0] != bs[0].ip() {
		t.Errorf("target of the down member: %v, want %s", got, bs[0].ip())
	}
}
