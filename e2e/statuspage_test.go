package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
)

// chromiumPath is Debian's chromium; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test and returns its chromedp context.
// The browser is stopped (and its profile directory released) before the test's
// temporary directories are removed.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := needBinary(t, chromiumPath, "chromium")
	profile := t.TempDir() // registered first, so removed after the browser has exited
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 700),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
	})
	// Start the browser now, so that a broken Chromium fails here and not later. The first
	// action binds the browser's lifetime to its context, so it gets ctx itself (a timeout
	// context would close the browser when it is cancelled); a timer bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		cancelCtx()
		t.Fatal("chromium did not start within 30s")
	}
	return ctx
}

// rowStatus is a JavaScript expression: the data-status of member id's row, or "" when the
// row is missing. The page's script replaces the rows on every refresh, so the row is
// looked up each time.
func rowStatus(id string) string {
	return fmt.Sprintf(`((document.querySelector('tr[data-member=%q]') || {dataset: {}}).dataset.status || "")`, id)
}

// TestStatusPageChromium opens glbdns's status page in a real headless Chromium, sees every
// member up, stops one backend, and sees that member's row turn down through the page's
// own refresh (every 2s from /v1/state), without a reload.
func TestStatusPageChromium(t *testing.T) {
	ctx := newBrowser(t)
	s := startStack(t, "127.0.0.51", "127.0.0.52", "127.0.0.53")
	for i := 0; i < 9; i++ { // some answers, so that the answers and share columns are not empty
		query(t, "udp", s.dnsAddr, "web.glb.test", dns.TypeA)
	}
	members := []string{"web/m0", "web/m1", "web/m2"}

	run := func(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		chromeRun(t, ctx, d, what, actions...)
	}
	// waitStatus polls the page (bounded) until member id's row shows status.
	waitStatus := func(d time.Duration, id, status string) {
		t.Helper()
		run(d+time.Second, fmt.Sprintf("row %s shows %s", id, status),
			chromedp.Poll[chromedp.Void](rowStatus(id)+` === `+fmt.Sprintf("%q", status),
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
	}

	run(15*time.Second, "open the status page",
		chromedp.Navigate(s.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-member="web/m0"]`)))
	for _, id := range members {
		waitStatus(15*time.Second, id, "up")
	}
	// Mark this document: if anything reloaded the page, the mark would be gone.
	if mark := evaluate[int](t, ctx, `window.glbdnsTestMark = 42`); mark != 42 {
		t.Fatalf("mark the document: %d", mark)
	}
	title := evaluate[string](t, ctx, `document.title`)
	if title != "glbdns status" {
		t.Errorf("title %q", title)
	}

	s.backends[0].stop()
	start := time.Now()
	waitStatus(15*time.Second, "web/m0", "down")
	t.Logf("backend stopped -> status page row down: %v (fall 2 x 1s, then the page's 2s refresh)", time.Since(start).Round(100*time.Millisecond))

	if mark := evaluate[int](t, ctx, `window.glbdnsTestMark || 0`); mark != 42 {
		t.Errorf("the page was reloaded (mark %d): the row must change through the page's own refresh", mark)
	}
	for _, id := range members[1:] {
		if st := evaluate[string](t, ctx, rowStatus(id)); st != "up" {
			t.Errorf("row %s: status %q, want up", id, st)
		}
	}
	if badge := evaluate[string](t, ctx, `document.querySelector('tr[data-member="web/m0"] .badge').textContent`); badge != "down" {
		t.Errorf("row web/m0 badge %q, want down", badge)
	}

	shot := func() []byte {
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		b, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return b
	}()
	if !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(shot))
	}
	out := filepath.Join(t.TempDir(), "statuspage.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("GLBDNS_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(dir, "statuspage.png")
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))
}

// evaluate runs a JavaScript expression in the page (bounded to 5s) and returns its value.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestStatusPageDrainChromium: in a real headless Chromium, `glbctl drain` a member and see
// its row say "drained" with the reason, and its line of the page's plot (inline SVG, from
// /v1/history sampled every 300ms here) drop to a share of 0 while the others take its
// answers; then stop another member's backend and see "down" with the failed probe's
// reason.
func TestStatusPageDrainChromium(t *testing.T) {
	ctx := newBrowser(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStackWith(t, []string{"-admin-token-file", tokenFile, "-admin-public-status", "-admin-public-metrics", "-history-interval", "300ms"},
		"127.0.0.61", "127.0.0.62", "127.0.0.63")
	// Steady traffic, so that every history point has answers to share (bounded: at most
	// 60s, and stopped with the test).
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			select {
			case <-stop:
				return
			case <-tick.C:
				m := new(dns.Msg)
				m.SetQuestion("web.glb.test.", dns.TypeA)
				_, _ = dns.Exchange(m, s.dnsAddr)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })

	run := func(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		chromeRun(t, ctx, d, what, actions...)
	}
	waitJS := func(d time.Duration, what, expr string) {
		t.Helper()
		run(d+time.Second, what, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
	}
	rowState := func(id string) string {
		return fmt.Sprintf(`((document.querySelector('tr[data-member=%q]') || {dataset: {}}).dataset.state || "")`, id)
	}
	reasonOf := func(id string) string {
		return fmt.Sprintf(`((document.querySelector('tr[data-member=%q] .reason') || {}).textContent || "")`, id)
	}
	shares := func(id string) string {
		return fmt.Sprintf(`((document.querySelector('svg.plot polyline[data-member=%q]') || {getAttribute: function () { return ""; }}).getAttribute("data-shares") || "")`, id)
	}
	// lastZero: the member's last 3 points have share 0 and an earlier one had more.
	lastZero := func(id string) string {
		return `(function () { var v = ` + shares(id) + `.split(",").map(Number); var n = v.length;
			return n > 4 && v[n-1] === 0 && v[n-2] === 0 && v[n-3] === 0 && v.slice(0, n-3).some(function (x) { return x > 0; }); })()`
	}

	run(15*time.Second, "open the status page", chromedp.Navigate(s.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`svg.plot[data-service="web.glb.test."] polyline[data-member="web/m1"]`)))
	for _, id := range []string{"web/m0", "web/m1", "web/m2"} {
		waitJS(15*time.Second, id+" up", rowState(id)+` === "up"`)
	}
	waitJS(15*time.Second, "web/m1 answered in the plot", shares("web/m1")+`.split(",").some(function (x) { return Number(x) > 0; })`)

	if out, err := execBin(t, "glbctl", "drain", "-admin", s.admin, "-admin-token-file", tokenFile,
		"web", "m1", "-for", "10m", "-reason", "kernel upgrade"); err != nil || !strings.Contains(out, "web/m1: drained until") {
		t.Fatalf("glbctl drain: %v\n%s", err, out)
	}
	waitJS(15*time.Second, "web/m1 drained", rowState("web/m1")+` === "drained"`)
	if r := evaluate[string](t, ctx, reasonOf("web/m1")); r != "kernel upgrade" {
		t.Errorf("web/m1 reason %q, want the drain's", r)
	}
	waitJS(15*time.Second, "web/m1's share drops to 0 in the plot", lastZero("web/m1"))
	last := func(id string) float64 {
		v := strings.Split(evaluate[string](t, ctx, shares(id)), ",")
		f, _ := strconv.ParseFloat(v[len(v)-1], 64)
		return f
	}
	if m0, m2 := last("web/m0"), last("web/m2"); m0+m2 < 0.99 {
		t.Errorf("after the drain m0 %.2f + m2 %.2f of the answers, want all", m0, m2)
	}
	states := evaluate[string](t, ctx, `document.querySelector('svg.plot g.states[data-member="web/m1"]').getAttribute("data-states")`)
	if !strings.HasSuffix(states, "drained") || !strings.Contains(states, "up") {
		t.Errorf("web/m1 state strip %q, want up then drained", states)
	}

	s.backends[0].stop()
	waitJS(15*time.Second, "web/m0 down", rowState("web/m0")+` === "down"`)
	if r := evaluate[string](t, ctx, reasonOf("web/m0")); r == "" {
		t.Error("web/m0 is down with no reason")
	} else {
		t.Logf("web/m0 down: %s", r)
	}
	waitJS(15*time.Second, "web/m0's share drops to 0 in the plot", lastZero("web/m0"))

	if out, err := execBin(t, "glbctl", "undrain", "-admin", s.admin, "-admin-token-file", tokenFile, "web", "m1"); err != nil {
		t.Fatalf("glbctl undrain: %v\n%s", err, out)
	}
	waitJS(15*time.Second, "web/m1 up again", rowState("web/m1")+` === "up"`)
}

// chromeRun runs actions in the browser of ctx, bounded by d, and fails the test on an
// error.
func chromeRun(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
