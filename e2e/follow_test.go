package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// followPolicy is the operator's part: a zone and nothing to probe.
const followPolicy = `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
`

// adminCall sends one admin API request with the bearer token and returns the status and
// body; body is JSON-encoded when not nil.
func adminCall(t *testing.T, method, url, token string, body any) (int, string) {
	t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// healthWatch reads healthd's report, blocking (bounded by until) while its index is
// still index; index 0 answers at once.
func healthWatch(t *testing.T, url string, index uint64, until time.Time) api.Report {
	t.Helper()
	wait := max(time.Until(until), time.Millisecond)
	resp, err := http.Get(fmt.Sprintf("%s/v1/health?index=%d&wait=%s", url, index, wait))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitReport follows healthd's blocking watch until ok holds for its report, or fails
// after within. It returns how long that took.
func waitReport(t *testing.T, url string, within time.Duration, what string, ok func(api.Report) bool) time.Duration {
	t.Helper()
	start := time.Now()
	until := start.Add(within)
	var index uint64
	for {
		r := healthWatch(t, url, index, until)
		if ok(r) {
			return time.Since(start)
		}
		if time.Now().After(until) {
			b, _ := json.Marshal(r)
			t.Fatalf("%s: not within %v; last report:\n%s", what, within, b)
		}
		index = r.Index
	}
}

// verdicts returns the status of every member of pool in r.
func verdicts(r api.Report, pool string) map[string]api.Status {
	out := map[string]api.Status{}
	for _, m := range r.Members {
		if m.Pool == pool {
			out[m.Member] = m.Status
		}
	}
	return out
}

// TestHealthdFollowsTheStore: healthd and glbdns on the same policy and managed folder. A
// pool created through glbdns's admin API is checked by healthd (every member has a
// verdict) without a signal or a restart, and a service made on it answers the members
// healthd found up; deleting them takes the members off healthd's report. The check's
// interval is 5s: the new members are probed within QuickStart (500ms) of healthd's
// reload, not up to an interval later. The times are logged for the issue; the test fails
// only past a generous bound.
func TestHealthdFollowsTheStore(t *testing.T) {
	up := newBackend(t, "127.0.0.41")
	dir := writePolicy(t, map[string]string{"p.hcl": followPolicy})
	managed := filepath.Join(t.TempDir(), "managed")
	token := adminToken
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, haddr := start(t, "healthd", "addr", "-policy", dir, "-managed-dir", managed, "-listen", "127.0.0.1:0", "-id", "hd")
	hurl := "http://" + haddr
	g, dnsAddr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir, "-managed-dir", managed,
		"-admin", "127.0.0.1:0", "-admin-token-file", tokenFile, "-health", hurl)
	admin := adminURL(t, g)

	// m1 is the backend (up); m2 is an address with nothing on the port (down). rise and
	// fall 1: the first probe gives the verdict, so "checked" and "has a verdict" coincide.
	one := 1
	pool := api.Pool{Name: "api-made", Members: []api.Member{
		{Name: "m1", Address: up.ip()}, {Name: "m2", Address: "127.0.0.42"},
	}, Checks: []api.Check{{Name: "http", Type: "http", Port: ptr(atoi(t, up.port())), Path: "/healthz",
		Interval: "5s", Timeout: "1s", Rise: &one, Fall: &one}}}
	created := time.Now()
	if code, body := adminCall(t, "POST", admin+"/v1/pools", token, pool); code != http.StatusCreated {
		t.Fatalf("POST /v1/pools: %d %s", code, body)
	}
	waitReport(t, hurl, 10*time.Second, "healthd checks the new pool's members", func(r api.Report) bool {
		v := verdicts(r, "api-made")
		return v["m1"] == api.StatusUp && v["m2"] == api.StatusDown
	})
	t.Logf("MEASURE admin API create -> healthd has a verdict on every new member: %v (check interval 5s)", time.Since(created).Round(time.Millisecond))

	// The whole loop: a service on the pool answers the member healthd found up.
	if code, body := adminCall(t, "POST", admin+"/v1/services", token, api.Service{Name: "follow.glb.test", Pools: []string{"api-made"}}); code != http.StatusCreated {
		t.Fatalf("POST /v1/services: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "the service answers the member that is up", func() bool {
		return answerSet(t, dnsAddr, "follow.glb.test") == up.ip()
	})

	if code, body := adminCall(t, "DELETE", admin+"/v1/services/follow.glb.test", token, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE service: %d %s", code, body)
	}
	deleted := time.Now()
	if code, body := adminCall(t, "DELETE", admin+"/v1/pools/api-made", token, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE pool: %d %s", code, body)
	}
	waitReport(t, hurl, 10*time.Second, "healthd drops the deleted pool", func(r api.Report) bool {
		return len(verdicts(r, "api-made")) == 0
	})
	t.Logf("MEASURE admin API delete -> members gone from healthd's report: %v", time.Since(deleted).Round(time.Millisecond))
}

func ptr[T any](v T) *T { return &v }

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
