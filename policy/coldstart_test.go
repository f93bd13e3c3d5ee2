package policy

import (
	"strings"
	"testing"
	"time"
)

// coldPool is a pool with an http check (interval 1s, timeout 500ms, m1 overriding them
// to 2s and 1s) and body as its cold_start block's.
func coldPool(body string) string {
	return `pool "fn" {
  check "http" {
    interval = "1s"
    timeout  = "500ms"
  }
  member "m0" { address = "192.0.2.10" }
  member "m1" {
    address = "192.0.2.11"
    check "http" {
      interval = "2s"
      timeout  = "1s"
    }
  }
` + body + "}\n"
}

func TestColdStart(t *testing.T) {
	if p := load(t, coldPool("")).Pools[0]; p.ColdStart != nil {
		t.Errorf("no block: %+v, want nil", p.ColdStart)
	}
	for _, c := range []struct {
		block string
		want  ColdStart
	}{
		{"  cold_start {}\n", ColdStart{Timeout: DefaultColdTimeout, IdleAfter: DefaultIdleAfter, IdleInterval: DefaultIdleInterval}},
		{"  cold_start {\n    timeout       = \"30s\"\n    idle_after    = \"5m\"\n    idle_interval = \"2s\"\n  }\n",
			ColdStart{Timeout: 30 * time.Second, IdleAfter: 5 * time.Minute, IdleInterval: 2 * time.Second}},
	} {
		p := load(t, coldPool(c.block)).Pools[0]
		if p.ColdStart == nil || *p.ColdStart != c.want {
			t.Errorf("%q: %+v, want %+v", c.block, p.ColdStart, c.want)
		}
	}
}

// TestColdStartErrors: each refusal at its attribute (file:line:col); the member's check
// override counts against the cold timeout and idle interval.
func TestColdStartErrors(t *testing.T) {
	for _, c := range []struct{ name, block, want string }{
		{"shorter than a member's check timeout", "  cold_start {\n    timeout = \"800ms\"\n  }\n", `test.hcl:19,15-22: Invalid cold_start timeout`},
		{"too long", "  cold_start {\n    timeout = \"1h\"\n  }\n", `test.hcl:19,15-19: Invalid cold_start timeout`},
		{"idle interval shorter than a check's", "  cold_start {\n    idle_interval = \"1500ms\"\n  }\n", `test.hcl:19,21-29: Invalid cold_start idle_interval`},
		{"bad duration", "  cold_start {\n    idle_after = \"soon\"\n  }\n", `test.hcl:19,18-24: Invalid duration`},
		{"unknown attribute", "  cold_start {\n    warm = true\n  }\n", `test.hcl:19,5-9: Unsupported argument`},
		{"two blocks", "  cold_start {}\n  cold_start {}\n", `test.hcl:19,3-13: Duplicate cold_start block`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := Load([]File{{Name: "test.hcl", Data: []byte(testZone + coldPool(c.block))}})
			if !diags.HasErrors() || !strings.HasPrefix(diags.Error(), c.want) {
				t.Fatalf("diags = %v, want %q", diags, c.want)
			}
		})
	}
}
