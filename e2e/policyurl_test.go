package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/objstore"
)

// policyArchive is `tar czf` of a folder "policy" holding files.
func policyArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: "policy/", Typeflag: tar.TypeDir, Mode: 0o755})
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "policy/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// urlPolicy is roPolicy at ADDR, and a zone whose records are in a zone file of the
// archive.
func urlPolicy(addr string) map[string]string {
	return map[string]string{
		"p.hcl": strings.ReplaceAll(roPolicy, "ADDR", addr),
		"static.hcl": `zone "static.test" {
  nameservers = ["ns1.static.test"]
  file        = "zones/static.zone"
}
`,
		"zones/static.zone": "$ORIGIN static.test.\nwww 300 IN A 192.0.2.99\n",
	}
}

// TestPolicyFromURL: glbdns with -policy-url and no policy on disk serves a tar.gz of a
// policy folder (its zone file included), follows a new publication through its poll
// (conditional GETs: the unchanged polls are 304s), refuses a policy with errors, a
// corrupt archive and a failing store while the old policy keeps serving, and fetches on
// SIGHUP when it does not poll; healthd probes the members of the same URL.
func TestPolicyFromURL(t *testing.T) {
	o := objstore.New(policyArchive(t, urlPolicy("192.0.2.10")))
	srv := httptest.NewServer(o)
	defer srv.Close()
	url := srv.URL + "/glb/policy.tar.gz?X-Amz-Signature=s3cr3t"
	g, addr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy-url", url,
		"-policy-url-interval", "100ms", "-admin", "127.0.0.1:0", "-log-level", "debug")
	if got := answerSet(t, addr, "web.glb.test"); got != "192.0.2.10" {
		t.Fatalf("web: %q, want 192.0.2.10\n%s", got, g.Logs())
	}
	if got := answerSet(t, addr, "www.static.test"); got != "192.0.2.99" {
		t.Fatalf("the archive's zone file: %q, want 192.0.2.99\n%s", got, g.Logs())
	}
	time.Sleep(500 * time.Millisecond) // a few polls of the same publication
	if c := o.Counts(); c.Full != 1 || c.NotModified < 2 {
		t.Fatalf("%d full GETs and %d 304s for an unchanged policy; want 1 and several", c.Full, c.NotModified)
	}

	o.Put(policyArchive(t, urlPolicy("192.0.2.11")), 0)
	took := eventually(t, 10*time.Second, "the new publication is served", func() bool {
		return answerSet(t, addr, "web.glb.test") == "192.0.2.11"
	})
	t.Logf("a new publication served %v after it was put (poll 100ms, debounce 200ms)", took)

	bad := urlPolicy("192.0.2.12")
	bad["p.hcl"] = strings.Replace(bad["p.hcl"], `pools  = ["web"]`, `pools  = ["nope"]`, 1)
	corrupt := policyArchive(t, urlPolicy("192.0.2.13"))
	corrupt[len(corrupt)-6] ^= 0xff
	for _, c := range []struct {
		what   string
		body   []byte
		status int
		log    string
	}{
		{"a policy with errors", policyArchive(t, bad), 0, "reload refused"},
		{"a corrupt archive", corrupt, 0, "policy fetch failed"},
		{"a failing store", nil, http.StatusServiceUnavailable, "503"},
	} {
		o.Put(c.body, c.status)
		g.waitLog(t, c.log, 10*time.Second)
		if got := answerSet(t, addr, "web.glb.test"); got != "192.0.2.11" {
			t.Fatalf("after %s: %q, want the old policy's 192.0.2.11", c.what, got)
		}
	}
	if strings.Contains(g.Logs(), "s3cr3t") {
		t.Fatal("the logs show the URL's query")
	}
	var st api.State
	getJSON(t, adminURL(t, g)+"/v1/state", &st)
	if st.Policy.LastResult != "failure" || !strings.Contains(st.Policy.LastError, "nope") {
		t.Fatalf("state: last result %q, error %q; want the refused policy's", st.Policy.LastResult, st.Policy.LastError)
	}
	o.Put(policyArchive(t, urlPolicy("192.0.2.14")), 0)
	eventually(t, 10*time.Second, "a good publication after the bad ones", func() bool {
		return answerSet(t, addr, "web.glb.test") == "192.0.2.14"
	})

	// A single .hcl file, no poll: SIGHUP fetches.
	one := objstore.New([]byte(strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.20")))
	srv1 := httptest.NewServer(one)
	defer srv1.Close()
	g1, addr1 := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy-url", srv1.URL+"/glb.hcl",
		"-policy-url-interval", "-1s")
	if got := answerSet(t, addr1, "web.glb.test"); got != "192.0.2.20" {
		t.Fatalf("single file: %q\n%s", got, g1.Logs())
	}
	one.Put([]byte(strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.21")), 0)
	g1.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "SIGHUP fetches the single file", func() bool {
		return answerSet(t, addr1, "web.glb.test") == "192.0.2.21"
	})

	// The write API on a URL policy keeps its objects in -managed-dir, which it needs.
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := execBin(t, "glbdns", "-listen", "127.0.0.1:0", "-policy-url", srv1.URL+"/glb.hcl", "-admin-token-file", tokenFile)
	if err == nil || !strings.Contains(out, "-managed-dir or in etcd") {
		t.Fatalf("the write API without a managed folder: %v\n%s", err, out)
	}
	managed := filepath.Join(t.TempDir(), "managed")
	gw, addrw := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy-url", srv1.URL+"/glb.hcl",
		"-managed-dir", managed, "-admin", "127.0.0.1:0", "-admin-token-file", tokenFile)
	admin := adminURL(t, gw)
	if code, body := adminCall(t, "POST", admin+"/v1/pools", adminToken, api.Pool{Name: "made", Members: []api.Member{{Name: "x", Address: "192.0.2.30"}}}); code != http.StatusCreated {
		t.Fatalf("POST /v1/pools: %d %s", code, body)
	}
	if code, body := adminCall(t, "POST", admin+"/v1/services", adminToken, api.Service{Name: "made.glb.test", Pools: []string{"made"}}); code != http.StatusCreated {
		t.Fatalf("POST /v1/services: %d %s", code, body)
	}
	if got := answerSet(t, addrw, "made.glb.test"); got != "192.0.2.30" {
		t.Fatalf("a service made through the API: %q", got)
	}
	if code, body := adminCall(t, "POST", admin+"/v1/pools", adminToken, api.Pool{Name: "web", Members: []api.Member{{Name: "x", Address: "192.0.2.31"}}}); code != http.StatusConflict {
		t.Fatalf("POST of the URL policy's own pool: %d %s, want 409", code, body)
	}

	// healthd on a URL: its members are probed.
	b := newBackend(t, "127.0.0.1")
	hs := objstore.New(policyArchive(t, map[string]string{"p.hcl": healthPolicy([]*backend{b}, func(int) string { return b.port() }, "")}))
	srv2 := httptest.NewServer(hs)
	defer srv2.Close()
	_, haddr := start(t, "healthd", "addr", "-policy-url", srv2.URL+"/h.tgz", "-listen", "127.0.0.1:0", "-id", "h1")
	eventually(t, 15*time.Second, "healthd reports the URL policy's member up", func() bool {
		var rep api.Report
		getJSON(t, "http://"+haddr+"/v1/health", &rep)
		return len(rep.Members) == 1 && rep.Members[0].Member == "m0" && rep.Members[0].Status == api.StatusUp
	})
}
