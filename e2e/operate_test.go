package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// operatePolicy has one round-robin service answering both members of pool "web"; v sets
// the members' last octet so that a test can tell which policy answered.
func operatePolicy(v int) string {
	return fmt.Sprintf(`
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  soa {
    minimum = 60
  }
  record "ns1" {
    type = "A"
    values = ["192.0.2.53"]
  }
  record "static" {
    type = "A"
    values = ["192.0.2.1"]
  }
}

pool "web" {
  member "m" { address = "192.0.2.%d" }
  member "n" { address = "198.51.100.%d" }
}

service "www.glb.test" {
  policy  = "round_robin"
  pools   = ["web"]
  answers = 2
}
`, v, v)
}

// startOperated starts glbdns with -admin on port 0 and returns the DNS address, the
// admin base URL and the policy directory.
func startOperated(t *testing.T) (*proc, string, string, string) {
	t.Helper()
	p, dnsAddr, dir := startGLBDNS(t, map[string]string{"policy.hcl": operatePolicy(1)}, "-admin", "127.0.0.1:0")
	admin := adminURL(t, p)
	return p, dnsAddr, admin, dir
}

// scrape reads /metrics into a map keyed `name{k="v",...}` with labels sorted by name.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	pair := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var ls []string
		for _, p := range pair.FindAllStringSubmatch(m[2], -1) {
			ls = append(ls, p[1]+`="`+p[2]+`"`)
		}
		sort.Strings(ls)
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out[m[1]+"{"+strings.Join(ls, ",")+"}"] = v
	}
	return out
}

// TestOperateMetrics sends known traffic over UDP and TCP and checks the exact counters.
func TestOperateMetrics(t *testing.T) {
	_, addr, admin, _ := startOperated(t)
	for i := 0; i < 5; i++ {
		if r := query(t, "udp", addr, "www.glb.test", dns.TypeA); len(r.Answer) != 2 {
			t.Fatalf("www: %v", r)
		}
	}
	for i := 0; i < 2; i++ {
		if r := query(t, "udp", addr, "nothere.glb.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Fatalf("nothere: %v", r)
		}
	}
	query(t, "tcp", addr, "static.glb.test", dns.TypeAAAA)
	query(t, "udp", addr, "www.example.org", dns.TypeMX)

	got := scrape(t, admin)
	for k, want := range map[string]float64{
		`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NOERROR",zone="glb.test."}`:    5,
		`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NXDOMAIN",zone="glb.test."}`:   2,
		`glbdns_dns_requests_total{proto="tcp",qtype="AAAA",rcode="NOERROR",zone="glb.test."}`: 1,
		`glbdns_dns_requests_total{proto="udp",qtype="MX",rcode="REFUSED",zone="none"}`:        1,
		`glbdns_dns_response_size_bytes_count{proto="udp"}`:                                    8,
		`glbdns_policy_answers_total{member="m",pool="web",service="www.glb.test."}`:           5,
		`glbdns_policy_answers_total{member="n",pool="web",service="www.glb.test."}`:           5,
		`glbdns_policy_members{pool="web"}`:                                                    2,
		`glbdns_policy_members_usable{pool="web"}`:                                             2,
		`glbdns_policy_generation{}`:                                                           1,
		`glbdns_policy_reloads_total{result="failure"}`:                                        0,
		`glbdns_dns_truncated_responses_total{}`:                                               0,
	} {
		if g, ok := got[k]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, want)
		}
	}
	if v := got[`glbdns_build_info{goversion="`+runtime.Version()+`",revision="unknown",version="dev"}`]; v != 1 {
		t.Errorf("glbdns_build_info = %v, want 1", v)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(admin + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

// TestOperateReload edits the policy under load: no query fails, answers follow the new
// policy, and a broken edit is refused while the old policy keeps serving.
func TestOperateReload(t *testing.T) {
	p, addr, admin, dir := startOperated(t)
	defer func() {
		if t.Failed() {
			t.Logf("glbdns log:\n%s", p.Logs())
		}
	}()
	file := filepath.Join(dir, "policy.hcl")
	write := func(body string) {
		t.Helper()
		tmp := filepath.Join(dir, ".policy.hcl.swp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil { // as editors save
			t.Fatal(err)
		}
	}
	metric := func(k string) float64 { return scrape(t, admin)[k] }

	var stop atomic.Bool
	var queries, failures atomic.Int64
	var mu sync.Mutex
	var firstErr string
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("www.glb.test.", dns.TypeA)
			for i := 0; i < 50000 && !stop.Load(); i++ {
				r, _, err := c.Exchange(m, addr)
				queries.Add(1)
				if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2) {
					err = fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for v := 2; v <= 4; v++ {
		write(operatePolicy(v))
		eventually(t, 10*time.Second, fmt.Sprintf("generation %d", v), func() bool {
			return metric(`glbdns_policy_generation{}`) == float64(v)
		})
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d queries failed while the policy was edited; first: %s", f, queries.Load(), firstErr)
	}
	t.Logf("%d queries during 3 file edits, 0 failures", queries.Load())
	r := query(t, "udp", addr, "www.glb.test", dns.TypeA)
	if got := strings.Join(sortedAddrs(r), ","); got != "192.0.2.4,198.51.100.4" {
		t.Errorf("answers after the edits = %s, want the last policy's", got)
	}

	write("pool \"web\" {\n  member \"m\" { address = \"not-an-address\" }\n}\n")
	eventually(t, 10*time.Second, "failed reload counted", func() bool {
		return metric(`glbdns_policy_reloads_total{result="failure"}`) == 1
	})
	if v := metric(`glbdns_policy_last_reload_successful{}`); v != 0 {
		t.Errorf("last_reload_successful = %v, want 0", v)
	}
	r = query(t, "udp", addr, "www.glb.test", dns.TypeA)
	if got := strings.Join(sortedAddrs(r), ","); got != "192.0.2.4,198.51.100.4" {
		t.Errorf("answers after a broken edit = %s, want the old policy's", got)
	}
}

func sortedAddrs(r *dns.Msg) []string {
	a := answerAddrs(r)
	sort.Strings(a)
	return a
}
