package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd"
)

// answers is the sorted A records glbdns answers for www.glb.test.
func answers(t *testing.T, d *Daemon) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.glb.test.", dns.TypeA)
	r, err := dns.Exchange(m, dnsAddr(d))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// waitFor polls f every 10ms until it holds, for at most within.
func waitFor(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !f(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

// TestGraceExpiredMetrics: a real healthd API says m is down, then goes away. Past the
// grace period the members count as unknown_is (up): glbdns_health_grace_expired is 1,
// glbdns_health_grace_expired_total 1, and one WARN says so.
func TestGraceExpiredMetrics(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policy.hcl"), testPolicy(1))
	board := healthd.NewBoard("hd")
	board.Set(api.MemberReport{Pool: "web", Member: "m", Status: api.StatusDown, Since: time.Now()})
	board.Set(api.MemberReport{Pool: "web", Member: "n", Status: api.StatusUp, Since: time.Now()})
	hd := httptest.NewServer(healthd.NewHandler(board, nil, nil))
	defer hd.Close()
	var logs syncBuffer
	d := startDaemonCfg(t, Config{PolicyPath: dir, NoWatch: true, HealthURLs: []string{hd.URL},
		HealthStaleAfter: 300 * time.Millisecond, HealthGrace: 500 * time.Millisecond, AdminToken: "t"}, &logs) // the token: the test drains

	waitFor(t, 5*time.Second, "m out of the answers", func() bool { return answers(t, d) == "198.51.100.1" })
	if g := metric(t, d, "glbdns_health_grace_expired"); g != 0 {
		t.Errorf("grace_expired %v with a fresh reporter, want 0", g)
	}
	if m, n := metric(t, d, "glbdns_member_up", "pool", "web", "member", "m"), metric(t, d, "glbdns_member_up", "pool", "web", "member", "n"); m != 0 || n != 1 {
		t.Errorf("member_up m %v n %v, want 0 and 1", m, n)
	}
	if _, err := d.st.Drain("web", "n", time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	if dr, up := metric(t, d, "glbdns_member_drained", "pool", "web", "member", "n"), metric(t, d, "glbdns_member_up", "pool", "web", "member", "n"); dr != 1 || up != 0 {
		t.Errorf("drained n: member_drained %v member_up %v, want 1 and 0", dr, up)
	}
	if exp := metric(t, d, "glbdns_member_drain_expiry_timestamp_seconds", "pool", "web", "member", "n"); exp < float64(time.Now().Unix()+3500) {
		t.Errorf("drain expiry %v, want about an hour from now", exp)
	}
	if err := d.st.Undrain("web", "n"); err != nil {
		t.Fatal(err)
	}
	if dr := metric(t, d, "glbdns_member_drained", "pool", "web", "member", "n"); dr != 0 {
		t.Errorf("undrained n: member_drained %v", dr)
	}
	if ok, failed := metric(t, d, "glbdns_geoip_reloads_total", "result", "success"), metric(t, d, "glbdns_geoip_reloads_total", "result", "failure"); ok != 0 || failed != 0 {
		t.Errorf("geoip reloads %v/%v without a database, want 0/0", ok, failed)
	}
	hd.CloseClientConnections()
	hd.Close()
	waitFor(t, 5*time.Second, "grace expired", func() bool { return metric(t, d, "glbdns_health_grace_expired") == 1 })
	if n := metric(t, d, "glbdns_health_grace_expired_total"); n != 1 {
		t.Errorf("grace_expired_total %v, want 1", n)
	}
	if got := answers(t, d); got != "192.0.2.1,198.51.100.1" {
		t.Errorf("after grace: %s, want both (unknown is up)", got)
	}
	if n := strings.Count(logs.String(), `level=WARN msg="no fresh healthd reporter for the grace period`); n != 1 {
		t.Errorf("%d grace warnings, want 1:\n%s", n, logs.String())
	}
}

// TestOversizedReportKeepsHealth: a reporter that says m is down and then sends reports
// over the cap (client.ReportCap of the policy, 1 MiB here) is refused with an error
// logged, and m stays out of the answers while the reporter is fresh (the last good
// report counts).
func TestOversizedReportKeepsHealth(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policy.hcl"), testPolicy(1))
	var calls atomic.Int32
	big := strings.Repeat(" ", 2<<20) // JSON whitespace inside the report: valid, past 1 MiB
	hd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		_, _ = io.WriteString(w, `{"reporter":"hd",`)
		if n > 1 {
			_, _ = io.WriteString(w, big)
		}
		fmt.Fprintf(w, `"index":%d,"members":[{"pool":"web","member":"m","status":"down"},{"pool":"web","member":"n","status":"up"}]}`, n)
	}))
	defer hd.Close()
	var logs syncBuffer
	d := startDaemonCfg(t, Config{PolicyPath: dir, NoWatch: true, HealthURLs: []string{hd.URL},
		HealthStaleAfter: 10 * time.Second}, &logs)
	waitFor(t, 5*time.Second, "m out of the answers", func() bool { return answers(t, d) == "198.51.100.1" })
	waitFor(t, 5*time.Second, "a refusal logged", func() bool {
		return strings.Contains(logs.String(), `level=ERROR msg="health report refused`)
	})
	if got := answers(t, d); got != "198.51.100.1" {
		t.Errorf("after a refused report: %s, want m still out", got)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("%d requests, want the oversized one", n)
	}
}
