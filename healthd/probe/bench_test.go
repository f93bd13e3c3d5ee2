package probe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/glbdns/glbdns/policy"
)

// BenchmarkHTTPProbe measures one HTTP probe round against a loopback backend: a compiled
// check with a path, a header and a body regexp, as an operator writes one. The
// allocations counted include the backend's, which runs in the same process.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "status: healthy v42")
	}))
	defer srv.Close()
	addr := targetOf(b, srv.Listener.Addr().String())
	c := loadCheck(b, addr.Port, `    type = "http"
    path = "/health?full=1"
    headers = { "X-Probe" = "healthd" }
    expect_body_regexp = "healthy v[0-9]+"`)
	target := TargetOf(&policy.Member{Addr: addr.Addr}, c)
	p := Prepare(Default, c)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := p.Probe(ctx, target); !res.OK {
			b.Fatalf("probe failed: %s", res.Reason)
		}
	}
}
