package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestValidateZoneFiles: glbctl validate reports every error of a zone file and of the
// files it includes, each at its file:line, and refuses a CNAME loop naming its records;
// glbdns serves a zone whose file includes another, with MX additional data, and reloads
// when the included file changes.
func TestValidateZoneFiles(t *testing.T) {
	const zone = `zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
  file        = "glb.zone"
}
`
	t.Run("every error", func(t *testing.T) {
		dir := writePolicy(t, map[string]string{
			"policy.hcl": zone,
			"glb.zone":   "$ORIGIN glb.example.com.\nok A 192.0.2.1\nbad A 192.0.2.999\nmx MX x mail\n$INCLUDE hosts.zone\n$INCLUDE ../outside.zone\nout.example.org. A 192.0.2.2\n",
			"hosts.zone": "h1 A 192.0.2.3\nh2 AAAA nope\n",
		})
		out, err := execBin(t, "glbctl", "validate", dir)
		if err == nil {
			t.Fatalf("validate succeeded:\n%s", out)
		}
		for _, want := range []string{"glb.zone line 3", "glb.zone line 4", "glb.zone line 6", "glb.zone line 7", "hosts.zone line 2", "outside the policy folder"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("cname loop", func(t *testing.T) {
		dir := writePolicy(t, map[string]string{
			"policy.hcl": zone + `zone "other.example.com" {
  nameservers = ["ns1.other.example.com"]
  record "x" {
    type   = "CNAME"
    values = ["a.glb.example.com."]
  }
}
`,
			"glb.zone": "$ORIGIN glb.example.com.\na CNAME b\nb CNAME x.other.example.com.\n",
		})
		out, err := execBin(t, "glbctl", "validate", dir)
		if err == nil {
			t.Fatalf("validate succeeded:\n%s", out)
		}
		for _, want := range []string{"CNAME loop", "a.glb.example.com. at " + filepath.Join(dir, "glb.zone") + ":2", "x.other.example.com. at " + filepath.Join(dir, "policy.hcl") + ":7:"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("served and reloaded", func(t *testing.T) {
		_, addr, dir := startGLBDNS(t, map[string]string{
			"policy.hcl": zone,
			"glb.zone":   "$ORIGIN glb.example.com.\n@ MX 10 mail\n$INCLUDE hosts.zone\n",
			"hosts.zone": "mail A 192.0.2.25\n",
		})
		for _, netw := range []string{"udp", "tcp"} {
			r := query(t, netw, addr, "glb.example.com.", dns.TypeMX)
			if len(r.Answer) != 1 || len(r.Extra) == 0 || r.Extra[0].(*dns.A).A.String() != "192.0.2.25" {
				t.Fatalf("%s MX: answer %v extra %v", netw, r.Answer, r.Extra)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts.zone"), []byte("mail A 192.0.2.26\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the included file's change served", func() bool {
			r := query(t, "udp", addr, "mail.glb.example.com.", dns.TypeA)
			return len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.26"
		})
	})
}
