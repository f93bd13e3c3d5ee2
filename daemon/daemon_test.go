package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/store"
)

// testPolicy is a zone with one service whose only pool is named by pool; version v picks
// the member's address, so that a test can tell which snapshot answered.
func testPolicy(v int) string {
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

const brokenPolicy = `
pool "web" {
  member "m" { address = "not-an-address" }
}
`

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	// Write and rename, as editors do, so that a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startDaemon runs a daemon on loopback port 0 with the admin listener, and stops it at
// cleanup.
func startDaemon(t *testing.T, dir string, noWatch bool) *Daemon {
	return startDaemonLog(t, dir, noWatch, io.Discard)
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemonLog(t *testing.T, dir string, noWatch bool, w io.Writer) *Daemon {
	t.Helper()
	return startDaemonCfg(t, Config{PolicyPath: dir, NoWatch: noWatch}, w)
}

// startDaemonCfg is startDaemonLog with more of cfg: it sets the listeners, the logger
// (writing to w) and the debounce.
func startDaemonCfg(t *testing.T, cfg Config, w io.Writer) *Daemon {
	t.Helper()
	cfg.Listen, cfg.Admin, cfg.ReloadDebounce = []string{"127.0.0.1:0"}, "127.0.0.1:0", 50*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(w, nil))
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for d.AdminAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("daemon not serving after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

func dnsAddr(d *Daemon) string { return d.Server().Addr().String() }

// metric reads one sample of the daemon's registry by name and label pairs.
func metric(t *testing.T, d *Daemon, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						ok = true
					}
				}
				if !ok {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

// TestReloadUnderLoad reloads 20 times through the daemon's API while goroutines query;
// no query may fail, and after the last reload the answers are the new policy's.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.hcl")
	writeFile(t, file, testPolicy(1))
	d := startDaemon(t, dir, true)
	addr := dnsAddr(d)

	var stop atomic.Bool
	var queries, failures atomic.Int64
	var firstErr atomic.Pointer[string]
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("www.glb.test.", dns.TypeA)
			for i := 0; i < 20000 && !stop.Load(); i++ { // bounded in count and by stop
				r, _, err := c.Exchange(m, addr)
				queries.Add(1)
				if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2) {
					err = fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if err != nil {
					failures.Add(1)
					s := err.Error()
					firstErr.CompareAndSwap(nil, &s)
				}
			}
		}()
	}
	for v := 2; v <= 21; v++ {
		writeFile(t, file, testPolicy(v))
		if err := d.Reload(); err != nil {
			t.Fatalf("reload %d: %v", v, err)
		}
		for n := queries.Load() + 20; queries.Load() < n; { // let queries run between reloads
			runtime.Gosched()
		}
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d queries failed during reloads; first: %s", f, queries.Load(), *firstErr.Load())
	}
	t.Logf("%d queries, 20 reloads, 0 failures", queries.Load())
	if g := d.PolicyStatus().Generation; g != 21 {
		t.Errorf("generation = %d, want 21", g)
	}
	if v := metric(t, d, "glbdns_policy_reloads_total", "result", "success"); v != 20 {
		t.Errorf("reloads_total{success} = %v, want 20", v)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.glb.test.", dns.TypeA)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range r.Answer {
		if a := rr.(*dns.A).A.String(); a != "192.0.2.21" && a != "198.51.100.21" {
			t.Errorf("answer %s is not from the last policy", a)
		}
	}
}

// TestReloadRefusesBrokenPolicy: a broken policy is refused whole, counted, and the old
// snapshot keeps serving.
func TestReloadRefusesBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.hcl")
	writeFile(t, file, testPolicy(1))
	var logs syncBuffer
	d := startDaemonLog(t, dir, true, &logs)
	hash := d.PolicyStatus().Hash

	writeFile(t, file, brokenPolicy)
	err := d.Reload()
	if !errors.Is(err, ErrPolicy) {
		t.Fatalf("reload of a broken policy: %v, want ErrPolicy", err)
	}
	if want := "pos=" + file + ":3:26"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
	st := d.PolicyStatus()
	if st.Hash != hash || st.Generation != 1 || st.LastResult != "failure" || st.LastError == "" {
		t.Errorf("status after refused reload = %+v", st)
	}
	// The state names files relative to the directory that holds the policy path.
	shown := filepath.Join(filepath.Base(dir), "policy.hcl")
	if !slices.Contains(st.Files, shown) || !strings.Contains(st.LastError, shown+":3,26") || strings.Contains(st.LastError, dir) {
		t.Errorf("state files %v, error %q: want %s, no absolute path", st.Files, st.LastError, shown)
	}
	for name, want := range map[string]float64{
		"glbdns_policy_reloads_total":          1,
		"glbdns_policy_last_reload_successful": 0,
		"glbdns_policy_generation":             1,
	} {
		labels := []string{}
		if name == "glbdns_policy_reloads_total" {
			labels = []string{"result", "failure"}
		}
		if v := metric(t, d, name, labels...); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := metric(t, d, "glbdns_policy_info", "hash", hash); v != 1 {
		t.Errorf("policy_info{hash=old} = %v, want 1", v)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.glb.test.", dns.TypeA)
	r, err := dns.Exchange(m, dnsAddr(d))
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Fatalf("old policy not serving: %v %v", err, r)
	}
}

// TestWatchReloads: a rename-write of a policy file in the watched directory reloads it
// (debounced), without SIGHUP.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.hcl")
	writeFile(t, file, testPolicy(1))
	d := startDaemon(t, dir, false)
	writeFile(t, file, testPolicy(7))
	deadline := time.Now().Add(10 * time.Second)
	for d.PolicyStatus().Generation < 2 {
		if time.Now().After(deadline) {
			t.Fatal("policy not reloaded within 10s of a file change")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.glb.test.", dns.TypeA)
	r, err := dns.Exchange(m, dnsAddr(d))
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("query after reload: %v %v", err, r)
	}
	for _, rr := range r.Answer {
		if a := rr.(*dns.A).A.String(); !strings.HasSuffix(a, ".7") {
			t.Errorf("answer %s is not from the edited policy", a)
		}
	}
}

// TestWatchFollowsManagedDocuments: a managed document written by another process (here a
// second store on the same policy and folder, as a second glbdns would be) reloads the
// daemon, and so does its deletion.
func TestWatchFollowsManagedDocuments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policy.hcl"), testPolicy(1))
	d := startDaemon(t, dir, false)
	other, err := store.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := other.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	waitPool := func(present bool, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err := d.st.GetPool("extra")
			if (err == nil) == present {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reloaded within 10s", what)
			}
		}
	}
	pool := api.Pool{Name: "extra", Members: []api.Member{{Name: "x", Address: "192.0.2.77"}}}
	if _, _, err := other.PutPool(pool, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitPool(true, "a pool another process created")
	if err := other.DeletePool("extra", store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitPool(false, "a pool another process deleted")
	if g := d.PolicyStatus().Generation; g < 3 {
		t.Errorf("generation %d after two reloads, want at least 3", g)
	}
}

// TestAdminEndpoints checks the admin listener's probes and the metrics lint.
func TestAdminEndpoints(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policy.hcl"), testPolicy(1))
	d := startDaemon(t, dir, true)
	base := "http://" + d.AdminAddr().String()
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"}, {"/readyz", "ready"}, {"/metrics", "glbdns_build_info"},
		{"/v1/state", `"www.glb.test."`}, {"/", `data-member="web/m"`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
				t.Errorf("GET %s: %d, body lacks %q:\n%.500s", tc.path, resp.StatusCode, tc.want, b)
			}
		})
	}
	problems, err := testutil.GatherAndLint(d.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestReturnMemoryCoalesces: installs that land while memory is being returned are served
// by exactly one more run after it (not dropped, not one run each), and the worker then
// stops.
func TestReturnMemoryCoalesces(t *testing.T) {
	var runs atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	d := &Daemon{}
	d.freeOS = func() {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
	}
	d.returnMemory()
	<-started
	for range 3 { // three installs during the first run
		d.returnMemory()
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for d.freeing.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still returning memory after 5 s (%d runs)", runs.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if got := runs.Load(); got != 2 {
		t.Fatalf("%d runs, want 2: the first, and one for the installs during it", got)
	}
	d.returnMemory() // idle again: a new request starts a new run
	for deadline := time.Now().Add(5 * time.Second); d.freeing.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := runs.Load(); got != 3 {
		t.Fatalf("%d runs after a later install, want 3", got)
	}
}
