package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/admin"
	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/policy"
)

// TestStatus runs `glbctl status` against a real admin listener serving the example
// policy, after known traffic, with one member drained.
func TestStatus(t *testing.T) {
	snap, diags := policy.LoadPath("testdata/good")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := dnsserver.New(dnsserver.Config{Logger: log})
	h := health.New(health.Config{Logger: log, OnChange: srv.HealthChanged})
	h.SetDrains([]api.Drain{{Pool: "web-eu", Member: "fra-1", Until: time.Now().Add(time.Hour), Reason: "kernel upgrade"}})
	srv.SetHealthSource(h)
	srv.SetSnapshot(snap)
	a := admin.New(admin.Config{Server: srv, Health: h, Logger: log,
		Policy: func() api.PolicyStatus {
			return api.PolicyStatus{Hash: snap.Hash, Generation: 3, LastResult: "success"}
		},
		Cluster: func() api.Cluster {
			return api.Cluster{PolicyHashes: 2, Nodes: []api.NodeState{
				{ID: "ns1", DNS: "192.0.2.53:53", PolicyHash: snap.Hash, Generation: 3,
					Reporters: []api.ReporterState{{URL: "http://h1/v1/health", Fresh: true}, {URL: "http://h2/v1/health"}}},
				{ID: "ns2", DNS: "198.51.100.53:53", PolicyHash: "0123456789abcdef", Generation: 2, FromCache: true},
			}}
		}})
	hs := httptest.NewServer(a.Handler())
	defer hs.Close()

	m := new(dns.Msg)
	m.SetQuestion("rr.glb.example.com.", dns.TypeA)
	req, _ := m.Pack()
	for i := 0; i < 10; i++ {
		srv.Handle(req, netip.MustParseAddrPort("192.0.2.1:53"), false, nil)
	}

	var out, errb bytes.Buffer
	if code := run([]string{"status", "-admin", hs.URL}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, re := range []string{
		`(?m)^NODE\s+DNS\s+ADMIN\s+POLICY\s+GENERATION\s+REPORTERS$`,
		`(?m)^ns1\s+192\.0\.2\.53:53\s+` + snap.Hash[:12] + `\s+3\s+1/2 fresh$`,
		`(?m)^ns2\s+198\.51\.100\.53:53\s+0123456789ab \(cached\)\s+2\s+0/0 fresh$`,
		`(?m)^WARNING: the nodes serve 2 different policies$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("cluster section lacks %s:\n%s", re, text)
		}
	}
	if !strings.Contains(text, "policy "+snap.Hash[:12]+"  generation 3") {
		t.Errorf("no policy line:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^SERVICE\s+METHOD\s+POOL\s+MEMBER\s+ADDRESS\s+WEIGHT\s+STATE\s+ANSWERS\s+SHARE\s+WHY$`).MatchString(text) {
		t.Errorf("no header row:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^www\.glb\.example\.com\.\s+\S+\s+web-eu\s+fra-1\s+127\.0\.0\.11\s+\d+\s+drained\s+\d+\s+\S+\s+kernel upgrade \(until 20\d\d-`).MatchString(text) {
		t.Errorf("fra-1 not shown drained with its reason and end:\n%s", text)
	}
	// Round robin over the service's usable members: the shares of rr add up to 100%.
	var total float64
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 9 && f[0] == "rr.glb.example.com." {
			rows++
			var share float64
			if _, err := fmt.Sscan(strings.TrimSuffix(f[8], "%"), &share); err != nil {
				t.Fatal(err)
			}
			total += share
		}
	}
	if rows == 0 || total < 99.5 || total > 100.5 {
		t.Errorf("rr rows %d, shares add up to %.1f%%, want 100%%:\n%s", rows, total, text)
	}

	t.Run("unreachable admin", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run([]string{"status", "-admin", "http://127.0.0.1:1"}, &out, &errb); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	})
}
