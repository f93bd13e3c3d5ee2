package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
)

// Secrets of the header tests: each appears in a check's headers and must appear in no
// read.
const (
	opSecret      = "Bearer op-sekrit-4f1c"
	managedSecret = "Bearer managed-sekrit-9a2e"
	apiKey        = "key-sekrit-77d0"
)

// secretPolicy is an operator pool whose check carries a credential, beside the fixture's.
const secretPolicy = `
pool "op-secret" {
  member "a" {
    address = "192.0.2.20"
  }
  check "http" {
    port    = 8080
    headers = { Authorization = "` + opSecret + `" }
  }
}
`

// secretPoolJSON is a managed pool with two credentials.
const secretPoolJSON = `{"name":"web-us","members":[{"name":"iad-1","address":"198.51.100.1"}],
 "checks":[{"name":"http","port":8080,"headers":{"Authorization":"` + managedSecret + `","X-Api-Key":"` + apiKey + `"}}]}`

// getPaths are the concrete paths the walk asks for each GET pattern the admin listener
// registers; TestHeadersNeverRead fails on a pattern missing here, so that a new read
// endpoint is walked too.
var getPaths = map[string][]string{
	"/metrics":            {"/metrics"},
	"/healthz":            {"/healthz"},
	"/readyz":             {"/readyz"},
	"/v1/state":           {"/v1/state"},
	"/v1/history":         {"/v1/history"},
	"/v1/activity":        {"/v1/activity"},
	"/v1/cluster":         {"/v1/cluster"},
	"/{$}":                {"/"},
	"/v1/pools":           {"/v1/pools"},
	"/v1/pools/{name}":    {"/v1/pools/web-us", "/v1/pools/op-secret", "/v1/pools/op-web"},
	"/v1/services":        {"/v1/services"},
	"/v1/services/{name}": {"/v1/services/www.glb.example.com", "/v1/services/op.glb.example.com"},
	"/v1/drains":          {"/v1/drains"},
	"/v1/pools/{pool}/members/{member}/drain": {"/v1/pools/web-us/members/iad-1/drain"},
	"/v1/health": {"/v1/health"},
}

// getPatterns reads the GET patterns of the admin listener from its source: the
// mux.HandleFunc("GET /...") and mux.Handle("GET /...") of admin.go, and the routes of
// api.go whose methods include GET.
func getPatterns(t *testing.T) []string {
	t.Helper()
	var out []string
	direct := regexp.MustCompile(`Handle(?:Func)?\("GET (/[^"]*)"`)
	route := regexp.MustCompile(`route\("(/[^"]*)", map\[string\]http\.HandlerFunc\{[^\n]*"GET":`)
	for _, file := range []string{"admin.go", "api.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{direct, route} {
			for _, m := range re.FindAllSubmatch(src, -1) {
				out = append(out, string(m[1]))
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only the GET patterns %v: the source changed shape, fix getPatterns", out)
	}
	return out
}

// TestHeadersNeverRead walks every GET endpoint of the admin listener, with a managed
// pool, an operator's pool and a drain in place, and wants no header value in any body:
// pools show their header names with api.HeaderMask.
func TestHeadersNeverRead(t *testing.T) {
	f := newFixtureWith(t, token, secretPolicy)
	for _, w := range []struct{ path, body string }{
		{"/v1/pools", secretPoolJSON},
		{"/v1/services", `{"name":"www.glb.example.com","pools":["web-us","op-secret"]}`},
		{"/v1/pools/web-us/members/iad-1/drain", `{"duration":"10m"}`},
	} {
		r := f.do("POST", w.path, w.body, true)
		if r.status != 201 {
			t.Fatalf("POST %s: %d %s", w.path, r.status, r.body)
		}
		if leaks(r.body) {
			t.Errorf("POST %s answers a secret: %s", w.path, r.body)
		}
	}
	adm := New(Config{Store: f.store, Token: token, Health: f.health, Logger: slog.New(slog.DiscardHandler),
		Ready: func() bool { return true }, Cluster: func() api.Cluster { return api.Cluster{} }})
	srv := httptest.NewServer(adm.Handler())
	defer srv.Close()
	for _, pattern := range getPatterns(t) {
		paths, ok := getPaths[pattern]
		if !ok {
			t.Errorf("GET %s is not walked: add its paths to getPaths", pattern)
			continue
		}
		for _, p := range paths {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
			}
			if leaks(body) || leaks([]byte(strings.Join(headerValues(resp.Header), "\n"))) {
				t.Errorf("GET %s answers a secret: %s", p, body)
			}
		}
	}
	for _, c := range []struct {
		path  string
		names []string
	}{{"/v1/pools/web-us", []string{"Authorization", "X-Api-Key"}}, {"/v1/pools/op-secret", []string{"Authorization"}}} {
		var p api.Pool
		f.do("GET", c.path, "", false).json(t, &p)
		if len(p.Checks) != 1 || len(p.Checks[0].Headers) != len(c.names) {
			t.Fatalf("GET %s: checks %+v, want the headers %v", c.path, p.Checks, c.names)
		}
		for _, n := range c.names {
			if v := p.Checks[0].Headers[n]; v != api.HeaderMask {
				t.Errorf("GET %s: header %s is %q, want %q", c.path, n, v, api.HeaderMask)
			}
		}
	}
	// The store, which healthd and the DNS server compile from, keeps the values.
	if sp := f.snap.Load().PoolByName["op-secret"]; sp == nil || sp.Checks[0].Headers["Authorization"] != opSecret {
		t.Errorf("the serving snapshot lost the operator's header")
	}
	if sp := f.snap.Load().PoolByName["web-us"]; sp == nil || sp.Checks[0].Headers["Authorization"] != managedSecret {
		t.Errorf("the serving snapshot lost the managed header")
	}
}

func leaks(b []byte) bool {
	s := string(b)
	return strings.Contains(s, "sekrit")
}

func headerValues(h http.Header) []string {
	var out []string
	for _, vs := range h {
		out = append(out, vs...)
	}
	return out
}

// TestPutMaskedHeaders is a client's read-modify-write of a pool with credentials: the
// mask keeps the stored value, a new value replaces it, a header left out is removed, and
// a mask with nothing stored behind it is refused.
func TestPutMaskedHeaders(t *testing.T) {
	f := newFixtureWith(t, token, secretPolicy)
	if r := f.do("POST", "/v1/pools", secretPoolJSON, true); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	read := func() (api.Pool, string) {
		t.Helper()
		r := f.do("GET", "/v1/pools/web-us", "", false)
		var p api.Pool
		r.json(t, &p)
		return p, r.header.Get("ETag")
	}
	put := func(p api.Pool, headers ...string) response {
		t.Helper()
		p.Managed, p.Version = false, ""
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return f.do("PUT", "/v1/pools/web-us", string(b), true, headers...)
	}
	stored := func() map[string]string {
		t.Helper()
		p, err := f.store.GetPool("web-us")
		if err != nil {
			t.Fatal(err)
		}
		sp := f.snap.Load().PoolByName["web-us"]
		if sp == nil || len(sp.Checks) != 1 || len(p.Checks) != 1 {
			t.Fatalf("stored %+v, serving %+v", p, sp)
		}
		for k, v := range p.Checks[0].Headers {
			if sp.Checks[0].Headers[k] != v {
				t.Errorf("serving header %s is %q, stored %q", k, sp.Checks[0].Headers[k], v)
			}
		}
		return p.Checks[0].Headers
	}
	want := func(step string, got map[string]string, want ...string) {
		t.Helper()
		if len(got) != len(want)/2 {
			t.Errorf("%s: stored headers %v, want %v", step, got, want)
			return
		}
		for i := 0; i < len(want); i += 2 {
			if got[want[i]] != want[i+1] {
				t.Errorf("%s: stored headers %v, want %v", step, got, want)
			}
		}
	}

	p, etag := read()
	if r := put(p, "If-Match: "+etag); r.status != 200 || r.header.Get("ETag") != etag || leaks(r.body) {
		t.Fatalf("unchanged write-back: %d ETag %s (was %s) %s", r.status, r.header.Get("ETag"), etag, r.body)
	}
	want("unchanged write-back", stored(), "Authorization", managedSecret, "X-Api-Key", apiKey)

	p.Region = "us"
	if r := put(p, "If-Match: "+etag); r.status != 200 || leaks(r.body) {
		t.Fatalf("changed region: %d %s", r.status, r.body)
	}
	want("changed region", stored(), "Authorization", managedSecret, "X-Api-Key", apiKey)

	// A new value of one header, the other kept: only the secret changed, so a read shows
	// the same body, but the version changes (If-Match covers the secrets).
	before, etag := read()
	p.Checks[0].Headers = map[string]string{"Authorization": "Bearer rotated-sekrit", "X-Api-Key": api.HeaderMask}
	if r := put(p, "If-Match: "+etag); r.status != 200 || r.header.Get("ETag") == etag {
		t.Fatalf("rotation: %d ETag %s (was %s) %s", r.status, r.header.Get("ETag"), etag, r.body)
	}
	want("rotation", stored(), "Authorization", "Bearer rotated-sekrit", "X-Api-Key", apiKey)
	after, _ := read()
	before.Version, after.Version = "", ""
	if b, a := mustJSON(t, before), mustJSON(t, after); b != a {
		t.Errorf("a read after the rotation differs beyond the version:\n%s\n%s", b, a)
	}

	// The stale version refuses the write; a mask resolves against no other version.
	if r := put(p, "If-Match: "+etag); r.status != 412 {
		t.Errorf("stale If-Match with a mask: %d %s", r.status, r.body)
	}

	// Another spelling of a stored name keeps its value under the new spelling.
	p.Checks[0].Headers = map[string]string{"authorization": api.HeaderMask}
	if r := put(p); r.status != 200 {
		t.Fatalf("lower-case name: %d %s", r.status, r.body)
	}
	want("lower-case name, X-Api-Key left out", stored(), "authorization", "Bearer rotated-sekrit")

	for _, c := range []struct {
		name, method, path string
		pool               api.Pool
		status             int
		field              string
	}{
		{"mask of a removed header", "PUT", "/v1/pools/web-us", withHeaders(p, "X-Api-Key", api.HeaderMask), 400, "checks[0].headers.X-Api-Key"},
		{"mask on a new pool", "POST", "/v1/pools", withHeaders(api.Pool{Name: "new", Members: p.Members, Checks: p.Checks}, "Authorization", api.HeaderMask), 400, "checks[0].headers.Authorization"},
		{"mask in a renamed check", "PUT", "/v1/pools/web-us", renamedCheck(p, "probe"), 400, "checks[0].headers.authorization"},
		{"mask on an operator's pool", "PUT", "/v1/pools/op-secret", withHeaders(api.Pool{Name: "op-secret", Members: p.Members, Checks: p.Checks}, "Authorization", api.HeaderMask), 409, ""},
		{"mask on an existing pool's create", "POST", "/v1/pools", p, 409, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(c.method, c.path, mustJSON(t, c.pool), true)
			var e api.Error
			r.json(t, &e)
			if r.status != c.status || e.Field != c.field {
				t.Errorf("%d %s, want %d with field %q", r.status, r.body, c.status, c.field)
			}
		})
	}
	want("after the refused writes", stored(), "authorization", "Bearer rotated-sekrit")
	if sp := f.snap.Load().PoolByName["op-secret"]; sp == nil || sp.Checks[0].Headers["Authorization"] != opSecret {
		t.Errorf("the operator's header changed")
	}
}

// withHeaders is p with its first check's headers set to the name and value pairs kv.
func withHeaders(p api.Pool, kv ...string) api.Pool {
	p.Checks = append([]api.Check(nil), p.Checks...)
	p.Checks[0].Headers = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		p.Checks[0].Headers[kv[i]] = kv[i+1]
	}
	return p
}

// renamedCheck is p with its first check called name: a mask follows the check's name.
func renamedCheck(p api.Pool, name string) api.Pool {
	p.Checks = append([]api.Check(nil), p.Checks...)
	p.Checks[0].Name, p.Checks[0].Type = name, "http"
	return p
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMaskHeadersCopies(t *testing.T) {
	p := api.Pool{Name: "p", Checks: []api.Check{{Name: "http", Headers: map[string]string{"Authorization": "x"}}, {Name: "tcp"}}}
	m := api.MaskHeaders(p)
	if p.Checks[0].Headers["Authorization"] != "x" {
		t.Errorf("MaskHeaders changed its argument: %+v", p.Checks[0])
	}
	if m.Checks[0].Headers["Authorization"] != api.HeaderMask || m.Checks[1].Headers != nil {
		t.Errorf("masked = %+v", m.Checks)
	}
}
