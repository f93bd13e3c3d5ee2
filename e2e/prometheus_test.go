package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The tests of contrib/: promtool checks the alerting rules, the sample configuration and the
// real /metrics output of both daemons; a real Prometheus scrapes both daemons and evaluates
// the alerting rules and every expression of the Grafana dashboard. Debian's prometheus
// package provides both binaries; .ci/run installs it.

const (
	contribDir   = "../contrib"
	alertsFile   = contribDir + "/prometheus/alerts.yml"
	dashboardFle = contribDir + "/grafana/glbdns.json"
)

// needBinary returns the path of an external tool. A missing tool skips the test on a
// developer's machine, but fails it in CI (CI set), where .ci/run installs it.
func needBinary(t *testing.T, path, debPackage string) string {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not found (install Debian package %q; CI unset, so skipping): %v", path, debPackage, err)
		}
		t.Fatalf("%s not found in CI (.ci/run installs Debian package %q): %v", path, debPackage, err)
	}
	return path
}

// runTool runs a tool to completion (bounded to 60s) with stdin and returns its combined output.
func runTool(t *testing.T, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestContribPromtoolRules(t *testing.T) {
	promtool := needBinary(t, "/usr/bin/promtool", "prometheus")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"check rules", []string{"check", "rules", alertsFile}, "SUCCESS: 12 rules found"},
		// alerts_test.yml feeds series to every alert and asserts which fire, with their labels
		// and rendered annotations.
		{"test rules", []string{"test", "rules", contribDir + "/prometheus/alerts_test.yml"}, "SUCCESS"},
		{"check config", []string{"check", "config", contribDir + "/prometheus/prometheus.yml"}, "is valid prometheus config file syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runTool(t, nil, promtool, tc.args...)
			if err != nil || !strings.Contains(out, tc.want) {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// TestContribGrafanaDashboard parses the dashboard and checks that every metric name its
// expressions mention is documented in docs/metrics.md, so that a renamed series cannot
// leave an empty panel behind.
func TestContribGrafanaDashboard(t *testing.T) {
	dash := readDashboard(t)
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) < 10 {
		t.Fatalf("dashboard: uid %q title %q, %d panels", dash.UID, dash.Title, len(dash.Panels))
	}
	var dsVar bool
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Error("dashboard has no Prometheus datasource variable")
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && (len(p.Targets) == 0 || p.Datasource.UID != "${datasource}") {
			t.Errorf("panel %q: %d targets, datasource %q", p.Title, len(p.Targets), p.Datasource.UID)
		}
	}

	docs, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	nameRE := regexp.MustCompile(`glbdns_[a-z_]+|healthd_[a-z_]+`)
	documented := map[string]bool{}
	for _, n := range nameRE.FindAllString(string(docs), -1) {
		documented[n] = true
	}
	seen := map[string]bool{}
	for _, e := range dash.exprs() {
		for _, n := range nameRE.FindAllString(e, -1) {
			seen[n] = true
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && documented[b] {
					base = b
				}
			}
			if !documented[base] {
				t.Errorf("dashboard uses %s, which docs/metrics.md does not document (in %s)", n, e)
			}
		}
	}
	// The list of what the dashboard must show, by the series that carry it.
	for _, n := range []string{"glbdns_dns_requests_total", "glbdns_dns_truncated_responses_total",
		"glbdns_dns_ecs_requests_total", "glbdns_policy_answers_total", "glbdns_policy_members",
		"glbdns_policy_members_usable", "glbdns_health_reporter_fresh", "glbdns_policy_reloads_total",
		"glbdns_policy_generation", "healthd_member_up", "healthd_probe_duration_seconds_bucket",
		"healthd_probes_total", "glbdns_member_up", "glbdns_member_drained", "glbdns_geoip_reloads_total",
		"healthd_build_info"} {
		if !seen[n] {
			t.Errorf("dashboard does not use %s", n)
		}
	}
}

// dashboard is the part of a Grafana dashboard JSON model the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFle)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFle, err)
	}
	return &d
}

// exprs returns every PromQL expression of the dashboard: panel targets and annotations.
func (d *dashboard) exprs() []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, a.Expr)
		}
	}
	return out
}

// stack is healthd and glbdns (with -health and -admin) on a health policy over backends.
type stack struct {
	backends []*backend
	healthd  *proc
	hurl     string // healthd base URL
	glbdns   *proc
	dnsAddr  string
	admin    string // glbdns admin base URL
}

// startStack starts one backend per address in addrs, healthd, and glbdns subscribed to it with its
// admin listener on port 0, and waits until glbdns answers with every member.
func startStack(t *testing.T, addrs ...string) *stack {
	t.Helper()
	return startStackWith(t, nil, addrs...)
}

// startStackWith is startStack with extra glbdns flags.
func startStackWith(t *testing.T, extra []string, addrs ...string) *stack {
	t.Helper()
	s := &stack{}
	for _, ip := range addrs {
		s.backends = append(s.backends, newBackend(t, ip))
	}
	pol := healthPolicy(s.backends, func(i int) string { return s.backends[i].port() }, "")
	s.healthd, s.hurl = startHealthd(t, "hd1", map[string]string{"p.hcl": pol})
	s.glbdns, s.dnsAddr, _ = startGLBDNS(t, map[string]string{"p.hcl": pol}, append([]string{"-health", s.hurl, "-admin", "127.0.0.1:0"}, extra...)...)
	s.admin = adminURL(t, s.glbdns)
	// glbdns may answer with every member before healthd has probed any (unknown members
	// count as up): wait for healthd's verdicts and for glbdns to have heard them.
	eventually(t, 15*time.Second, "healthd sees every member up", func() bool {
		m := scrape(t, s.hurl)
		for i := range s.backends {
			if m[fmt.Sprintf(`healthd_member_up{member="m%d",pool="web"}`, i)] != 1 {
				return false
			}
		}
		return true
	})
	eventually(t, 15*time.Second, "glbdns has a fresh reporter", func() bool {
		return sumFamily(t, s.admin, "glbdns_health_reporter_fresh") == 1
	})
	all := ips(s.backends...)
	eventually(t, 15*time.Second, "glbdns answers with every member", func() bool { return answerSet(t, s.dnsAddr, "web.glb.test") == all })
	return s
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", u, resp.StatusCode, err, b)
	}
	return b
}

// TestPromtoolCheckMetrics lints both daemons' real /metrics output with promtool after
// some traffic, so that every series family has been created.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := needBinary(t, "/usr/bin/promtool", "prometheus")
	s := startStack(t, "127.0.0.41", "127.0.0.42")
	for i := 0; i < 5; i++ {
		query(t, "udp", s.dnsAddr, "web.glb.test", dns.TypeA, withECS("192.0.2.0/24"))
		query(t, "tcp", s.dnsAddr, "nothere.glb.test", dns.TypeAAAA)
	}
	for _, tc := range []struct {
		name, url string
		want      []string // families that must be in the output
	}{
		{"glbdns", s.admin + "/metrics", []string{"glbdns_dns_requests_total", "glbdns_policy_answers_total", "glbdns_health_reporter_fresh", "glbdns_dns_ecs_requests_total"}},
		{"healthd", s.hurl + "/metrics", []string{"healthd_member_up", "healthd_probes_total", "healthd_probe_duration_seconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := httpGet(t, tc.url)
			for _, f := range tc.want {
				if !bytes.Contains(body, []byte("# TYPE "+f+" ")) {
					t.Errorf("%s has no family %s", tc.url, f)
				}
			}
			out, err := runTool(t, body, promtool, "check", "metrics")
			if err != nil || strings.TrimSpace(out) != "" {
				t.Fatalf("promtool check metrics on %s: %v\n%s", tc.url, err, out)
			}
		})
	}
}

// prometheus is a real Prometheus server started by a test.
type prometheus struct {
	base string
	cmd  *exec.Cmd
	out  *lockedBuffer
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPrometheus writes a configuration that scrapes the targets every second and loads
// contrib's alerting rules, starts Prometheus on a free loopback port with its TSDB in a
// temporary directory, waits until it is ready and stops it on cleanup.
func startPrometheus(t *testing.T, bin string, jobs map[string]string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %q\nscrape_configs:\n", rules)
	for job, target := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%q]\n", job, target)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	p := &prometheus{base: "http://" + addr, out: &lockedBuffer{}}
	p.cmd = exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
			t.Errorf("prometheus did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("prometheus exited early:\n%s", p.out.String())
		default:
		}
		if resp, err := c.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 30s:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one series of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return -1
	}
	return v
}

// api calls GET /api/v1/<path> and decodes data into v; it returns Prometheus's error, if any.
func (p *prometheus) api(t *testing.T, path string, v any) error {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + "/api/v1/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	if v != nil {
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return nil
}

// query runs an instant query and returns its vector.
func (p *prometheus) query(t *testing.T, q string) ([]sample, error) {
	t.Helper()
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := p.api(t, "query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s", q, data.ResultType)
	}
	return data.Result, nil
}

// waitQuery polls q (bounded) until ok accepts its result.
func (p *prometheus) waitQuery(t *testing.T, within time.Duration, q string, ok func([]sample) bool) []sample {
	t.Helper()
	var last []sample
	var lastErr error
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		last, lastErr = p.query(t, q)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("query %s: not as expected within %v: %v %+v", q, within, lastErr, last)
	return nil
}

// TestPrometheusScrapesBothDaemons: a real Prometheus scrapes glbdns and healthd every
// second. It sees the exact number of DNS queries sent, every member up as healthd reports
// it, and the pools as glbdns counts them; it loads contrib's alerting rules, evaluates them
// without error and puts HealthdMemberDown in pending when a backend stops; and every
// expression of the Grafana dashboard is valid PromQL against it.
func TestPrometheusScrapesBothDaemons(t *testing.T) {
	bin := needBinary(t, "/usr/bin/prometheus", "prometheus")
	s := startStack(t, "127.0.0.44", "127.0.0.45", "127.0.0.46")
	// startStack's own queries count too: read the current total from glbdns first.
	before := sumFamily(t, s.admin, "glbdns_dns_requests_total")
	const nA, nNX = 7, 3
	for i := 0; i < nA; i++ {
		if r := query(t, "udp", s.dnsAddr, "web.glb.test", dns.TypeA); len(r.Answer) != 3 {
			t.Fatalf("web.glb.test: %v", r)
		}
	}
	for i := 0; i < nNX; i++ {
		if r := query(t, "udp", s.dnsAddr, "nothere.glb.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Fatalf("nothere.glb.test: %v", r)
		}
	}
	want := before + nA + nNX

	prom := startPrometheus(t, bin, map[string]string{
		"glbdns":  strings.TrimPrefix(s.admin, "http://"),
		"healthd": strings.TrimPrefix(s.hurl, "http://"),
	})
	within := 20 * time.Second

	t.Run("both targets up", func(t *testing.T) {
		prom.waitQuery(t, within, `up`, func(r []sample) bool {
			jobs := map[string]float64{}
			for _, x := range r {
				jobs[x.Metric["job"]] = x.value()
			}
			return len(r) == 2 && jobs["glbdns"] == 1 && jobs["healthd"] == 1
		})
	})
	t.Run("dns requests", func(t *testing.T) {
		prom.waitQuery(t, within, `sum(glbdns_dns_requests_total)`, func(r []sample) bool {
			return len(r) == 1 && r[0].value() == want
		})
		r := prom.waitQuery(t, within, `glbdns_dns_requests_total{rcode="NXDOMAIN"}`, func(r []sample) bool {
			return len(r) == 1 && r[0].value() == nNX
		})
		for k, v := range map[string]string{"job": "glbdns", "zone": "glb.test.", "qtype": "A", "proto": "udp"} {
			if r[0].Metric[k] != v {
				t.Errorf("NXDOMAIN series label %s = %q, want %q (%v)", k, r[0].Metric[k], v, r[0].Metric)
			}
		}
	})
	t.Run("healthd member up", func(t *testing.T) {
		prom.waitQuery(t, within, `healthd_member_up`, func(r []sample) bool {
			var members []string
			for _, x := range r {
				if x.Metric["job"] != "healthd" || x.Metric["pool"] != "web" || x.value() != 1 {
					return false
				}
				members = append(members, x.Metric["member"])
			}
			slices.Sort(members)
			return slices.Equal(members, []string{"m0", "m1", "m2"})
		})
	})
	t.Run("pool and reporter as glbdns sees them", func(t *testing.T) {
		prom.waitQuery(t, within, `glbdns_policy_members_usable{pool="web"} == 3 and on (pool) glbdns_policy_members == 3`, func(r []sample) bool { return len(r) == 1 })
		prom.waitQuery(t, within, `glbdns_health_reporter_fresh`, func(r []sample) bool {
			// The label is the URL glbdns polls: healthd's base URL and /v1/health.
			return len(r) == 1 && strings.HasPrefix(r[0].Metric["reporter"], s.hurl) && r[0].value() == 1
		})
	})
	t.Run("alert rules loaded and evaluated", func(t *testing.T) {
		want := []string{"glbdns-config", "glbdns-dns", "glbdns-health"}
		var got []string
		eventually(t, within, "every rule evaluated without error", func() bool {
			var data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
						Type   string `json:"type"`
					} `json:"rules"`
				} `json:"groups"`
			}
			if err := prom.api(t, "rules", &data); err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			ok := true
			n := 0
			for _, g := range data.Groups {
				got = append(got, g.Name)
				for _, r := range g.Rules {
					n++
					ok = ok && r.Type == "alerting" && r.Health == "ok"
				}
			}
			slices.Sort(got)
			return ok && n == 12 && slices.Equal(got, want)
		})
		// A healthy stack fires nothing.
		if r, err := prom.query(t, `ALERTS{alertstate="firing"}`); err != nil || len(r) != 0 {
			t.Errorf("firing alerts on a healthy stack: %v %+v", err, r)
		}
	})
	t.Run("dashboard expressions are valid", func(t *testing.T) {
		subst := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*", "$healthd", ".*", "$service", ".*")
		for _, e := range readDashboard(t).exprs() {
			if _, err := prom.query(t, subst.Replace(e)); err != nil {
				t.Errorf("dashboard expression %s: %v", e, err)
			}
		}
		// And the per-member share adds up to 1 for the service once rates exist.
		for i := 0; i < 5; i++ {
			query(t, "udp", s.dnsAddr, "web.glb.test", dns.TypeA)
		}
		prom.waitQuery(t, within, `sum(sum by (service, pool, member) (rate(glbdns_policy_answers_total[1m])) / on (service) group_left sum by (service) (rate(glbdns_policy_answers_total[1m])))`,
			func(r []sample) bool { return len(r) == 1 && r[0].value() > 0.999 && r[0].value() < 1.001 })
	})
	t.Run("member down goes pending", func(t *testing.T) {
		s.backends[2].stop()
		prom.waitQuery(t, within, `healthd_member_up{member="m2"}`, func(r []sample) bool { return len(r) == 1 && r[0].value() == 0 })
		prom.waitQuery(t, within, `ALERTS{alertname="HealthdMemberDown"}`, func(r []sample) bool {
			return len(r) == 1 && r[0].Metric["member"] == "m2" && r[0].Metric["alertstate"] == "pending" && r[0].Metric["severity"] == "ticket"
		})
		prom.waitQuery(t, within, `glbdns_policy_members_usable{pool="web"}`, func(r []sample) bool { return len(r) == 1 && r[0].value() == 2 })
	})
}

// sumFamily scrapes a /metrics endpoint and sums the samples of one family.
func sumFamily(t *testing.T, base, family string) float64 {
	t.Helper()
	var sum float64
	for k, v := range scrape(t, base) {
		if strings.HasPrefix(k, family+"{") {
			sum += v
		}
	}
	return sum
}
