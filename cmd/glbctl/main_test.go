package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateBad runs `glbctl validate` on one broken policy per validation rule. Each file's
// first line says where the error must point ("# want: line N: text"): the exit status must
// be 1 and the output must hold FILE:N:COL and the text.
func TestValidateBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.hcl")
	if err != nil || len(files) < 10 {
		t.Fatalf("want at least 10 bad policies, found %d (%v)", len(files), err)
	}
	wantRE := regexp.MustCompile(`^# want: line (\d+): (.*)$`)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".hcl"), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := wantRE.FindStringSubmatch(strings.SplitN(string(src), "\n", 2)[0])
			if m == nil {
				t.Fatalf("%s: first line must be '# want: line N: text'", f)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", f}, &stdout, &stderr)
			out := stderr.String()
			if code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, out)
			}
			pos := fmt.Sprintf("%s:%s:", f, m[1])
			if !regexp.MustCompile(regexp.QuoteMeta(pos) + `\d+: `).MatchString(out) {
				t.Fatalf("no diagnostic at %sCOL in:\n%s", pos, out)
			}
			if !strings.Contains(out, m[2]) {
				t.Fatalf("output does not mention %q:\n%s", m[2], out)
			}
		})
	}
}

// TestValidateGood validates the example policy that `make run` serves.
func TestValidateGood(t *testing.T) {
	for _, p := range []string{"testdata/good", "../../examples/policy"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", p}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d\n%s", p, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), ": ok: ") {
			t.Fatalf("%s: %s", p, stdout.String())
		}
	}
}

// TestExplain explains a weighted answer and a client-subnet-hash answer with ECS.
func TestExplain(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"weighted", []string{"-name", "www.glb.example.com", "-type", "A"}, []string{"service: www.glb.example.com.", "weighted"}},
		{"hash with ECS", []string{"-name", "sticky.glb.example.com", "-ecs", "203.0.113.0/24"}, []string{"client_subnet_hash", "203.0.113.0/24"}},
		{"static", []string{"-name", "mail.glb.example.com"}, []string{"static", "192.0.2.25"}},
		{"nxdomain", []string{"-name", "nope.glb.example.com"}, []string{"NXDOMAIN"}},
		{"refused", []string{"-name", "example.org"}, []string{"REFUSED"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"explain", "-policy", "testdata/good"}, c.args...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stdout.String(), w) {
					t.Fatalf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

// TestExplainGeo explains a geo answer with the real GeoIP2 test database: the lookup
// (country, continent, network), the matched rule, the pool order and the ECS scope.
func TestExplainGeo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"explain", "-policy", "testdata/geo/p.hcl", "-name", "app.glb.test", "-ecs", "81.2.69.142/32"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, w := range []string{`country "GB"`, `continent "EU"`, "network 81.2.69.142/31", "(countries)", "answer    192.0.2.1", "scope     /31"} {
		if !strings.Contains(stdout.String(), w) {
			t.Fatalf("output lacks %q:\n%s", w, stdout.String())
		}
	}
}
