package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// credentialBackend answers 200 on /v2 to requests that carry Authorization: want, 401 to
// others, and remembers the Authorization of every /v2 request.
type credentialBackend struct {
	srv  *httptest.Server
	want string
	mu   sync.Mutex
	seen []string
}

func newCredentialBackend(t *testing.T, want string) *credentialBackend {
	b := &credentialBackend{want: want}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if r.URL.Path == "/v2" {
			b.mu.Lock()
			b.seen = append(b.seen, auth)
			b.mu.Unlock()
		}
		if auth != b.want {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *credentialBackend) seenOnV2() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// TestAdminHeadersReachHealthd: a check's credential written through the admin API is
// never read back, yet healthd (which compiles the managed documents itself) probes with
// it, before and after a client's read-modify-write of the pool that sends the mask back.
func TestAdminHeadersReachHealthd(t *testing.T) {
	const secret = "Bearer e2e-sekrit-31b7"
	backend := newCredentialBackend(t, secret)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(backend.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writePolicy(t, map[string]string{"p.hcl": followPolicy})
	managed := filepath.Join(t.TempDir(), "managed")
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, haddr := start(t, "healthd", "addr", "-policy", dir, "-managed-dir", managed, "-listen", "127.0.0.1:0", "-id", "hd")
	hurl := "http://" + haddr
	g, _ := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir, "-managed-dir", managed,
		"-admin", "127.0.0.1:0", "-admin-token-file", tokenFile, "-health", hurl)
	admin := adminURL(t, g)

	one := 1
	pool := api.Pool{Name: "secret", Members: []api.Member{{Name: "m1", Address: host}},
		Checks: []api.Check{{Name: "http", Type: "http", Port: ptr(atoi(t, port)), Path: "/v1", Interval: "1s",
			Timeout: "500ms", Rise: &one, Fall: &one, Headers: map[string]string{"Authorization": secret}}}}
	if code, body := adminCall(t, "POST", admin+"/v1/pools", adminToken, pool); code != http.StatusCreated || strings.Contains(body, "sekrit") {
		t.Fatalf("POST /v1/pools: %d %s", code, body)
	}
	waitReport(t, hurl, 10*time.Second, "healthd probes with the credential", func(r api.Report) bool {
		return verdicts(r, "secret")["m1"] == api.StatusUp
	})

	// A client reads the pool, moves the check to /v2 and writes the body back: the
	// header it sends is the mask.
	code, body := adminCall(t, "GET", admin+"/v1/pools/secret", adminToken, nil)
	if code != http.StatusOK || strings.Contains(body, "sekrit") || !strings.Contains(body, `"Authorization": "`+api.HeaderMask+`"`) {
		t.Fatalf("GET /v1/pools/secret: %d %s", code, body)
	}
	var read api.Pool
	if err := json.Unmarshal([]byte(body), &read); err != nil {
		t.Fatal(err)
	}
	read.Managed, read.Version = false, ""
	read.Checks[0].Path = "/v2"
	if code, body := adminCall(t, "PUT", admin+"/v1/pools/secret", adminToken, read); code != http.StatusOK || strings.Contains(body, "sekrit") {
		t.Fatalf("PUT /v1/pools/secret with the mask: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "healthd probes /v2", func() bool { return len(backend.seenOnV2()) >= 2 })
	for _, auth := range backend.seenOnV2() {
		if auth != secret {
			t.Fatalf("healthd sent Authorization %q to /v2, want the stored credential", auth)
		}
	}
	if v := verdicts(healthWatch(t, hurl, 0, time.Now()), "secret")["m1"]; v != api.StatusUp {
		t.Errorf("m1 is %v after the write-back, want up", v)
	}
}
