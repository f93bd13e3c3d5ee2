package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// terraformZone is the operator's policy of TestTerraformApplyToDNS: the zone that the
// example's service lives in (zones are defined in files only).
const terraformZone = `
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com", "ns2.glb.example.com"]
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
  record "ns2" {
    type   = "A"
    values = ["192.0.2.54"]
  }
}
`

// tofuBinary is the OpenTofu (or Terraform) binary to drive: TF_ACC_TERRAFORM_PATH, as
// for the provider's acceptance tests (.ci/tofu.sh builds one), else tofu on PATH.
func tofuBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("TF_ACC is set but TF_ACC_TERRAFORM_PATH: %v", err)
		}
		return p
	}
	p, err := exec.LookPath("tofu")
	if err != nil {
		t.Fatalf("TF_ACC is set but there is no tofu binary (set TF_ACC_TERRAFORM_PATH=$(bash .ci/tofu.sh | tail -n1)): %v", err)
	}
	return p
}

// tofuRunner runs the tofu binary in work with the provider built from
// cmd/terraform-provider-glbdns, installed through dev_overrides in a CLI configuration
// (with which `tofu init` is neither needed nor wanted: it would try to reach the
// registry), and the admin token in the environment.
func tofuRunner(t *testing.T, tofu, work, token string) func(args ...string) (string, error) {
	t.Helper()
	binary(t, "terraform-provider-glbdns") // tofu finds it in binDir through dev_overrides
	cliConfig := filepath.Join(t.TempDir(), "tofurc")
	if err := os.WriteFile(cliConfig, []byte(fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.opentofu.org/glbdns/glbdns" = %q
  }
  direct {}
}
`, binDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, tofu, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(),
			"TF_CLI_CONFIG_FILE="+cliConfig,
			"GLBDNS_ADMIN_TOKEN="+token, // the provider block leaves the token to the environment
			"TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0",
			"TF_DATA_DIR="+filepath.Join(work, ".terraform"),
		)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// TestTerraformApplyToDNS drives the real tofu binary with the real provider binary
// (built by TestMain from cmd/terraform-provider-glbdns) against the real glbdns binary:
// it applies terraform/examples/main.tf as documented (only the endpoint points at this
// node), changes a member's address, and destroys, and after each run it polls glbdns over
// DNS every 5ms until the answers show the change. A write through the admin API returns
// once the new snapshot is serving, so the time from tofu's exit to the new answer
// (logged as MEASURE) should be about one DNS round trip.
//
// The provider is installed through dev_overrides in a CLI configuration, with which
// `tofu init` is neither needed nor wanted (it would try to reach the registry).
func TestTerraformApplyToDNS(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("TF_ACC is not set (make test sets it); this test runs tofu")
	}
	tofu := tofuBinary(t)
	const token = adminToken
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, dnsAddr, _ := startGLBDNS(t, map[string]string{"zone.hcl": terraformZone},
		"-admin", "127.0.0.1:0", "-admin-token-file", tokenFile, "-managed-dir", filepath.Join(t.TempDir(), "managed"), "-no-watch")
	adminURL := adminURL(t, p)

	// The configuration is the documented example; only the endpoint differs.
	example, err := os.ReadFile("../terraform/examples/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	const endpoint = `endpoint = "http://127.0.0.1:8053"`
	if !strings.Contains(string(example), endpoint) {
		t.Fatalf("terraform/examples/main.tf no longer sets %s", endpoint)
	}
	work := t.TempDir()
	writeTF := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.Replace(string(example), endpoint, fmt.Sprintf("endpoint = %q", adminURL), 1)
	writeTF(cfg)

	run := tofuRunner(t, tofu, work, token)
	mustRun := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("tofu %s: %v\n%s\nglbdns log:\n%s", strings.Join(args, " "), err, out, p.Logs())
		}
	}
	// measure runs tofu, then polls DNS every 5ms (bounded) until want holds for the
	// answer to www, and logs the time from tofu's exit to that answer.
	const www = "www.glb.example.com"
	measure := func(what string, want func(*dns.Msg) bool, args ...string) {
		t.Helper()
		mustRun(args...)
		exited := time.Now()
		var last *dns.Msg
		for deadline := exited.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			last = query(t, "udp", dnsAddr, www, dns.TypeA)
			if want(last) {
				t.Logf("MEASURE tofu %s → DNS answer (%s): %v", args[0], what, time.Since(exited))
				return
			}
		}
		t.Fatalf("%s: DNS not updated within 10s of tofu %s; last answer %v", what, args[0], last)
	}
	answers := func(addrs ...string) func(*dns.Msg) bool {
		return func(r *dns.Msg) bool {
			got := answerAddrs(r)
			slices.Sort(got)
			return r.Rcode == dns.RcodeSuccess && slices.Equal(got, addrs)
		}
	}

	if r := query(t, "udp", dnsAddr, www, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before apply: %s; want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	// The example: pool web-eu (fra-1 .10, ams-1 .11), weighted service www, fra-1 drained.
	measure("create: ams-1 only, fra-1 drained", answers("192.0.2.11"), "apply", "-auto-approve", "-no-color")
	// A second plan finds nothing to do: the state matches what the server returns.
	if out, err := run("plan", "-detailed-exitcode", "-no-color"); err != nil {
		t.Fatalf("plan after apply: %v (exit 2 = changes)\n%s", err, out)
	}

	writeTF(strings.Replace(cfg, `address = "192.0.2.11"`, `address = "192.0.2.12"`, 1))
	measure("update: ams-1 moved to .12", answers("192.0.2.12"), "apply", "-auto-approve", "-no-color")

	measure("destroy: NXDOMAIN", func(r *dns.Msg) bool { return r.Rcode == dns.RcodeNameError },
		"destroy", "-auto-approve", "-no-color")
	resp, err := adminGet(adminURL + "/v1/pools/web-eu")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/pools/web-eu after destroy: %s; want 404", resp.Status)
	}
}
