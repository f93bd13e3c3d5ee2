package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/glbdns/glbdns/policy"
)

// loadCheck compiles a one-pool policy whose check block is body and returns the check as
// healthd receives it: every default filled in by the policy package, as in production.
func loadCheck(tb testing.TB, port int, body string) *policy.Check {
	tb.Helper()
	src := fmt.Sprintf("pool \"p\" {\n  member \"m\" { address = \"127.0.0.1\" }\n  check \"c\" {\n    port = %d\n%s\n  }\n}\n", port, body)
	snap, diags := policy.Load([]policy.File{{Name: "probe_test.hcl", Data: []byte(src)}})
	if diags.HasErrors() {
		tb.Fatalf("load policy:\n%s\n%v", src, diags)
	}
	return snap.Members[0].Checks[0]
}

// BenchmarkHTTPProbe measures one HTTP probe round against a loopback backend: a compiled
// check with a path, a header and a body regexp, as an operator writes one.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "status: healthy v42")
	}))
	defer srv.Close()
	target := targetOf(b, srv.Listener.Addr().String())
	c := loadCheck(b, target.Port, `    type = "http"
    path = "/health?full=1"
    headers = { "X-Probe" = "healthd" }
    expect_body_regexp = "healthy v[0-9]+"`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := Run(ctx, Default, target, c); !res.OK {
			b.Fatalf("probe failed: %s", res.Reason)
		}
	}
}
