package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// runOnce runs healthd -once on the policy folder and returns its report, exit status and
// run time.
func runOnce(t *testing.T, dir string, args ...string) (api.Report, int, time.Duration, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, "healthd"), append([]string{"-once", "-policy", dir, "-id", "once"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("healthd -once: %v; %s", err, stderr.String())
	}
	var r api.Report
	if code != 2 || len(out) > 0 { // 2 after a failed push still printed the report
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("healthd -once printed no JSON report (%v): %q; stderr %s", err, out, stderr.String())
		}
	}
	return r, code, took, stderr.String()
}

// TestHealthdOnce: healthd -once against three real backends, one stopped, checks each
// with rise and fall 2 at 1 s, prints every member's verdict as JSON and exits 1; with all
// three up it exits 0; a timeout shorter than a verdict takes leaves them unknown, exit 3;
// a policy with an error exits 2.
func TestHealthdOnce(t *testing.T) {
	bs := []*backend{newBackend(t, "127.0.0.71"), newBackend(t, "127.0.0.72"), newBackend(t, "127.0.0.73")}
	bs[1].stop()
	dir := writePolicy(t, map[string]string{"glb.hcl": healthPolicy(bs, func(i int) string { return bs[i].port() }, "")})

	r, code, took, logs := runOnce(t, dir)
	status := map[string]api.Status{}
	for _, m := range r.Members {
		status[m.Member] = m.Status
	}
	if code != 1 || status["m0"] != api.StatusUp || status["m1"] != api.StatusDown || status["m2"] != api.StatusUp || r.Reporter != "once" {
		t.Fatalf("one backend down: exit %d, statuses %v, reporter %q; stderr %s", code, status, r.Reporter, logs)
	}
	for _, m := range r.Members {
		if m.Member == "m1" && (len(m.Checks) != 1 || m.Checks[0].LastResult == nil || m.Checks[0].LastResult.OK) {
			t.Errorf("the down member's report carries no failed probe: %+v", m.Checks)
		}
	}
	t.Logf("one down: exit %d after %v", code, took.Round(time.Millisecond))

	bs[1].restart()
	if _, code, took, logs := runOnce(t, dir); code != 0 {
		t.Errorf("all up: exit %d, want 0; stderr %s", code, logs)
	} else {
		t.Logf("all up: exit 0 after %v", took.Round(time.Millisecond))
	}
	if r, code, _, logs := runOnce(t, dir, "-once-timeout", "300ms"); code != 3 || len(r.Members) != 3 || r.Members[0].Status != api.StatusUnknown {
		t.Errorf("timeout before rise 2 at 1 s: exit %d, %+v, want 3 and unknown; stderr %s", code, r.Members, logs)
	}
	bad := writePolicy(t, map[string]string{"glb.hcl": "pool \"p\" {\n  member \"a\" { address = \"not-an-address\" }\n}\n"})
	if _, code, _, logs := runOnce(t, bad); code != 2 || !strings.Contains(logs, "glb.hcl:2") {
		t.Errorf("bad policy: exit %d, want 2 with file:line; stderr %s", code, logs)
	}
}

// TestHealthdOncePush: healthd -once -push against three real backends, one stopped,
// pushes its verdicts to glbdns with the report token: glbdns drops the stopped member
// from its answers once healthd exits (1: one down) and lists the pusher; a wrong token
// is exit 2 with glbdns's reason, after the report is printed; -push without a token is
// a usage error (2).
func TestHealthdOncePush(t *testing.T) {
	bs := []*backend{newBackend(t, "127.0.0.74"), newBackend(t, "127.0.0.75"), newBackend(t, "127.0.0.76")}
	bs[1].stop()
	files := map[string]string{"glb.hcl": healthPolicy(bs, func(i int) string { return bs[i].port() }, "")}
	dir := writePolicy(t, files)
	tokFile := filepath.Join(t.TempDir(), "report-token")
	if err := os.WriteFile(tokFile, []byte("push-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, dns, _ := startGLBDNS(t, files, "-admin", "127.0.0.1:0", "-report-token-file", tokFile)
	admin := adminURL(t, p)
	all := bs[0].ip() + "," + bs[1].ip() + "," + bs[2].ip()
	if got := answerSet(t, dns, "web.glb.test"); got != all {
		t.Fatalf("before the push: %s, want every member (no reporter: unknown counts as up)", got)
	}

	r, code, took, logs := runOnce(t, dir, "-push", admin, "-report-token-file", tokFile, "-push-ttl", "1m")
	if code != 1 || len(r.Members) != 3 {
		t.Fatalf("one down, pushed: exit %d, %d members; stderr %s", code, len(r.Members), logs)
	}
	t.Logf("MEASURE healthd -once -push, one of three down: exit %d after %v", code, took.Round(time.Millisecond))
	if got := answerSet(t, dns, "web.glb.test"); got != bs[0].ip()+","+bs[2].ip() {
		t.Errorf("after healthd -once pushed: %s, want the stopped member out", got)
	}
	if st := getState(t, admin); !strings.Contains(st, "push:once") {
		t.Errorf("/v1/state does not list the pusher: %.600s", st)
	}

	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, code, _, logs := runOnce(t, dir, "-push", admin, "-report-token-file", wrong); code != 2 || len(r.Members) != 3 || !strings.Contains(logs, "wrong report token") {
		t.Errorf("wrong token: exit %d, %d members, want 2 with the report printed and glbdns's reason; stderr %s", code, len(r.Members), logs)
	}
	if _, code, _, logs := runOnce(t, dir, "-push", admin); code != 2 || !strings.Contains(logs, "report token") {
		t.Errorf("-push without a token: exit %d, want 2 naming the token; stderr %s", code, logs)
	}
}
