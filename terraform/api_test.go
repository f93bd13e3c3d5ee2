package terraform

import (
	"testing"

	"github.com/glbdns/glbdns/terraform/internal/apitest"
)

// testZone is the zone the acceptance tests' services live in; it must be defined in the
// policy files of whatever startAPI starts.
const testZone = "glb.example.com"

// startAPI starts the admin API that every acceptance test runs against and returns its
// URL and admin token. It is the one place to change to test against a real glbdns: start
// the binary with a policy directory holding zone "glb.example.com" (and nothing else), an
// admin token, and -admin 127.0.0.1:0, and return its admin URL and token. The tests use
// nothing but the documented API (docs/admin-api.md).
func startAPI(t *testing.T) (url, token string) {
	t.Helper()
	const tok = "acc-test-token"
	s := apitest.Start(t, apitest.Options{Token: tok, Zones: []string{testZone}})
	return s.URL, tok
}
