package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
)

// flood opens n connections to addr from 127.0.0.1 and sends nothing on them; it
// returns how many the server still holds open a second later.
func flood(t *testing.T, addr string, n int) (held int) {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					mu.Lock()
					held++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return held
}

// fromOther is an HTTP client whose connections come from 127.0.1.1, another source.
var fromOther = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.1.1")}}).DialContext}}

// TestHTTPListenersBounded is the red team's listener exhaustion on the real binaries:
// 3,000 idle connections to glbdns's admin listener and 3,000 to healthd's, from one
// source. Each holds at most its per-source bound; the admin API, DNS over TCP, a reload
// and healthd's probes go on for everyone else.
func TestHTTPListenersBounded(t *testing.T) {
	b := newBackend(t, "127.0.0.1")
	files := map[string]string{"policy.hcl": healthPolicy([]*backend{b}, func(int) string { return b.port() }, "")}
	dir := writePolicy(t, files)
	_, haddr := start(t, "healthd", "addr", "-policy", dir, "-listen", "127.0.0.1:0", "-id", "hd")
	g, dnsAddr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir, "-admin", "127.0.0.1:0",
		"-health", "http://"+haddr)
	admin := strings.TrimPrefix(adminURL(t, g), "http://")

	heldAdmin := flood(t, admin, 3000)
	heldHealthd := flood(t, haddr, 3000)
	t.Logf("held open after a second: admin %d of 3000, healthd %d of 3000", heldAdmin, heldHealthd)
	if heldAdmin > 32 || heldHealthd > 32 {
		t.Errorf("one source holds %d admin and %d healthd connections; want at most 32 each", heldAdmin, heldHealthd)
	}
	resp, err := fromOther.Get("http://" + admin + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin from another source during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("web.glb.test.", dns.TypeA)
	if r, _, err := c.Exchange(q, dnsAddr); err != nil || len(r.Answer) != 1 {
		t.Fatalf("DNS over TCP during the flood: %v %v", r, err)
	}
	// A reload: a new service in the policy is served.
	if err := os.WriteFile(filepath.Join(dir, "more.hcl"), []byte("service \"more.glb.test\" {\n  pools = [\"web\"]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{dns: dnsAddr}
	eventually(t, 10*time.Second, "the reloaded policy served", func() bool { return n.answer(t, "more.glb.test.") != "NXDOMAIN" })
	// healthd keeps probing: the member is up, and stays up over three more rounds.
	eventually(t, 10*time.Second, "member up in healthd", func() bool {
		resp, err := fromOther.Get("http://" + haddr + "/v1/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rep api.Report
		return json.NewDecoder(resp.Body).Decode(&rep) == nil && len(rep.Members) == 1 && rep.Members[0].Status == api.StatusUp
	})
	time.Sleep(3 * time.Second)
	resp, err = fromOther.Get("http://" + haddr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var rep api.Report
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || len(rep.Members) != 1 || rep.Members[0].Status != api.StatusUp {
		t.Errorf("after three probe rounds under the flood the member is %+v (%v)", rep.Members, err)
	}
}
