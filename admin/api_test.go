package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

const token = "s3cret-token"

// fixture is a real store on a temporary copy of testdata/policy.hcl and a real health
// merger behind a real HTTP server. What the store publishes is installed as the daemon
// does: the snapshot becomes the serving one, the drains go to health, and health builds
// the view for it.
type fixture struct {
	t         *testing.T
	srv       *httptest.Server
	store     *store.Store
	health    *health.Health
	snap      atomic.Pointer[policy.Snapshot]
	publishes atomic.Int32
}

func newFixture(t *testing.T, tok string) *fixture {
	t.Helper()
	return newFixtureWith(t, tok, "")
}

// newFixtureWith is newFixture with extra appended to the operator's policy.
func newFixtureWith(t *testing.T, tok, extra string) *fixture {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(path, append(src, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fixture{t: t, store: st}
	f.health = health.New(health.Config{Logger: log, OnChange: f.rebuild})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.health.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	st.Publish(f.publish)
	if _, diags := st.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	api := New(Config{Store: st, Token: tok, Health: f.health, Logger: log})
	f.srv = httptest.NewServer(api.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) publish(snap *policy.Snapshot, drains []api.Drain) error {
	f.snap.Store(snap)
	f.publishes.Add(1)
	f.health.SetDrains(drains)
	f.health.For(snap)
	return nil
}

func (f *fixture) rebuild() {
	if snap := f.snap.Load(); snap != nil {
		f.health.For(snap)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; headers are "Name: value" strings; auth adds the bearer token,
// which reads always carry (they need it when a token is configured; TestReadsNeedToken
// sends them without).
func (f *fixture) do(method, path, body string, auth bool, headers ...string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth || method == http.MethodGet || method == http.MethodHead {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

const poolJSON = `{"name":"web-us","region":"us","members":[
  {"name":"iad-1","address":"198.51.100.1","weight":3},
  {"name":"iad-2","address":"198.51.100.2"}],
 "checks":[{"name":"http","port":8080,"path":"/healthz","interval":"2s","timeout":"1s","rise":2,"fall":2,"expect_status":[200,"300-399"]}]}`

// TestStatusCodes walks every status code of docs/admin-api.md, in order, over real HTTP.
func TestStatusCodes(t *testing.T) {
	f := newFixture(t, token)
	var version string
	steps := []struct {
		name, method, path, body string
		auth                     bool
		headers                  []string
		status                   int
		field                    string // the error's field, when an error is expected
		check                    func(t *testing.T, r response)
	}{
		{name: "list shows operator pool read-only", method: "GET", path: "/v1/pools", status: 200,
			check: func(t *testing.T, r response) {
				var l struct{ Pools []api.Pool }
				r.json(t, &l)
				if len(l.Pools) != 1 || l.Pools[0].Name != "op-web" || l.Pools[0].Managed {
					t.Errorf("pools = %+v", l.Pools)
				}
			}},
		{name: "no token 401", method: "POST", path: "/v1/pools", body: poolJSON, status: 401,
			check: func(t *testing.T, r response) {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
			}},
		{name: "malformed authorization 401", method: "POST", path: "/v1/pools", body: poolJSON, headers: []string{"Authorization: Basic Zm9vOmJhcg=="}, status: 401},
		{name: "wrong token 403", method: "POST", path: "/v1/pools", body: poolJSON, headers: []string{"Authorization: Bearer nope"}, status: 403},
		{name: "create 201", method: "POST", path: "/v1/pools", body: poolJSON, auth: true, status: 201,
			check: func(t *testing.T, r response) {
				var p api.Pool
				r.json(t, &p)
				version = p.Version
				if r.header.Get("ETag") != `"`+p.Version+`"` || r.header.Get("Location") != "/v1/pools/web-us" {
					t.Errorf("ETag %q Location %q", r.header.Get("ETag"), r.header.Get("Location"))
				}
				if !p.Managed || *p.Members[1].Weight != 1 || p.Checks[0].ExpectStatus[0] != "200" {
					t.Errorf("pool = %+v", p)
				}
				if sp := f.snap.Load().PoolByName["web-us"]; sp == nil || sp.Members[0].Weight != 3 {
					t.Errorf("the write is not in the serving snapshot")
				}
			}},
		{name: "get 200 with etag", method: "GET", path: "/v1/pools/web-us", status: 200,
			check: func(t *testing.T, r response) {
				if r.header.Get("ETag") != `"`+version+`"` {
					t.Errorf("ETag %q, want %q", r.header.Get("ETag"), version)
				}
			}},
		{name: "create existing 409", method: "POST", path: "/v1/pools", body: poolJSON, auth: true, status: 409},
		{name: "operator pool read-only 409", method: "PUT", path: "/v1/pools/op-web", body: `{"members":[{"name":"a","address":"192.0.2.1"}]}`, auth: true, status: 409},
		{name: "bad address 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "members[1].address",
			body: `{"members":[{"name":"a","address":"192.0.2.1"},{"name":"b","address":"192.0.2.300"}]}`},
		{name: "bad check 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "checks[0].path",
			body: `{"members":[{"name":"a","address":"192.0.2.1"}],"checks":[{"name":"tcp","port":25,"path":"/x"}]}`},
		{name: "bad unknown_is 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "unknown_is",
			body: `{"unknown_is":"maybe","members":[{"name":"a","address":"192.0.2.1"}]}`},
		{name: "unknown field 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "colour",
			body: `{"colour":"red","members":[]}`},
		{name: "wrong type 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "members.weight",
			body: `{"members":[{"name":"a","address":"192.0.2.1","weight":"heavy"}]}`},
		{name: "malformed json 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, body: `{"members":`},
		{name: "name mismatch 400", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 400, field: "name",
			body: `{"name":"other","members":[]}`},
		{name: "body too large 413", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 413,
			body: `{"region":"` + strings.Repeat("x", maxBody) + `"}`},
		{name: "missing 404", method: "GET", path: "/v1/pools/nope", status: 404},
		{name: "unknown endpoint 404", method: "GET", path: "/v1/nothing", status: 404},
		{name: "wrong method 405", method: "DELETE", path: "/v1/pools", auth: true, status: 405,
			check: func(t *testing.T, r response) {
				if r.header.Get("Allow") != "GET, HEAD, POST" {
					t.Errorf("Allow = %q", r.header.Get("Allow"))
				}
			}},
		{name: "stale if-match 412", method: "PUT", path: "/v1/pools/web-us", body: poolJSON, auth: true, headers: []string{`If-Match: "0123456789abcdef"`}, status: 412},
		{name: "if-none-match on existing 412", method: "PUT", path: "/v1/pools/web-us", body: poolJSON, auth: true, headers: []string{"If-None-Match: *"}, status: 412},
		{name: "replace with if-match 200", method: "PUT", path: "/v1/pools/web-us", auth: true, status: 200,
			body: strings.Replace(poolJSON, `"us"`, `"ca"`, 1), headers: []string{`If-Match: "` + "VERSION" + `"`}},
		{name: "service with unknown pool 422", method: "POST", path: "/v1/services", auth: true, status: 422, field: "pools[1]",
			body: `{"name":"www.glb.example.com","pools":["web-us","nope"]}`},
		{name: "service outside zones 400", method: "POST", path: "/v1/services", auth: true, status: 400, field: "name",
			body: `{"name":"www.example.org","pools":["web-us"]}`},
		{name: "service 201", method: "POST", path: "/v1/services", auth: true, status: 201,
			body: `{"name":"WWW.glb.example.com","policy":"weighted","pools":["web-us","op-web"]}`,
			check: func(t *testing.T, r response) {
				var s api.Service
				r.json(t, &s)
				if s.Name != "www.glb.example.com" || *s.TTL != 30 || s.WhenAllDown != "all" || r.header.Get("Location") != "/v1/services/www.glb.example.com" {
					t.Errorf("service = %+v", s)
				}
			}},
		{name: "delete referenced pool 409", method: "DELETE", path: "/v1/pools/web-us", auth: true, status: 409},
		{name: "delete operator service 409", method: "DELETE", path: "/v1/services/op.glb.example.com", auth: true, status: 409},
		{name: "drain unknown member 422", method: "POST", path: "/v1/pools/web-us/members/nope/drain", auth: true, status: 422,
			body: `{"duration":"10m"}`},
		{name: "drain bad duration 400", method: "POST", path: "/v1/pools/web-us/members/iad-1/drain", auth: true, status: 400, field: "duration",
			body: `{"duration":"soon"}`},
		{name: "drain 201", method: "POST", path: "/v1/pools/web-us/members/iad-1/drain", auth: true, status: 201,
			body: `{"duration":"10m","reason":"kernel upgrade"}`},
		{name: "get drain 200", method: "GET", path: "/v1/pools/web-us/members/iad-1/drain", status: 200},
		{name: "drains listed", method: "GET", path: "/v1/drains", status: 200,
			check: func(t *testing.T, r response) {
				var l struct{ Drains []api.Drain }
				r.json(t, &l)
				if len(l.Drains) != 1 || l.Drains[0].Reason != "kernel upgrade" || time.Until(l.Drains[0].Until) < 9*time.Minute {
					t.Errorf("drains = %+v", l.Drains)
				}
			}},
		{name: "undrain 204", method: "DELETE", path: "/v1/pools/web-us/members/iad-1/drain", auth: true, status: 204},
		{name: "not drained 404", method: "GET", path: "/v1/pools/web-us/members/iad-1/drain", status: 404},
		{name: "delete service 204", method: "DELETE", path: "/v1/services/www.glb.example.com", auth: true, status: 204},
		{name: "delete pool 204", method: "DELETE", path: "/v1/pools/web-us", auth: true, status: 204,
			check: func(t *testing.T, r response) {
				if f.snap.Load().PoolByName["web-us"] != nil {
					t.Errorf("deleted pool still serving")
				}
			}},
		{name: "deleted 404", method: "GET", path: "/v1/pools/web-us", status: 404},
		{name: "health", method: "GET", path: "/v1/health", status: 200,
			check: func(t *testing.T, r response) {
				var h struct{ Members []api.MemberHealth }
				r.json(t, &h)
				if len(h.Members) != 2 || h.Members[0].Member != "ams-1" || h.Members[0].Status != "unknown" {
					t.Errorf("health = %+v", h.Members)
				}
			}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			for i, h := range st.headers {
				st.headers[i] = strings.Replace(h, "VERSION", version, 1)
			}
			r := f.do(st.method, st.path, st.body, st.auth, st.headers...)
			if r.status != st.status {
				t.Fatalf("status %d, want %d: %s", r.status, st.status, r.body)
			}
			if r.status >= 400 {
				var e struct{ Error, Field string }
				r.json(t, &e)
				if e.Error == "" || e.Field != st.field {
					t.Errorf("error body %s, want field %q", r.body, st.field)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if st.check != nil {
				st.check(t, r)
			}
		})
	}
}

func TestWritesDisabledWithoutToken(t *testing.T) {
	f := newFixture(t, "")
	r := f.do("POST", "/v1/pools", poolJSON, true)
	var e struct{ Error string }
	r.json(t, &e)
	if r.status != 403 || e.Error != "write API disabled: no admin token configured" {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/pools", "", false); r.status != 200 {
		t.Fatalf("reads need no token: %d", r.status)
	}
}

// TestConcurrentIfMatch runs read-modify-write cycles from several goroutines: in a round
// where everyone read the same version exactly one write wins; with retries every writer
// eventually succeeds once and no update is lost.
func TestConcurrentIfMatch(t *testing.T) {
	const writers = 8
	f := newFixture(t, token)
	if r := f.do("POST", "/v1/pools", `{"name":"race","members":[{"name":"m0","address":"192.0.2.1"}]}`, true); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	get := func() api.Pool {
		var p api.Pool
		f.do("GET", "/v1/pools/race", "", false).json(t, &p)
		return p
	}
	put := func(p api.Pool, ifMatch string) int {
		b, _ := json.Marshal(p)
		return f.do("PUT", "/v1/pools/race", string(b), true, `If-Match: "`+ifMatch+`"`).status
	}
	addMember := func(p api.Pool, name string, n int) api.Pool {
		p.Members = append(append([]api.Member(nil), p.Members...), api.Member{Name: name, Address: fmt.Sprintf("192.0.2.%d", n)})
		return p
	}

	t.Run("one round, one winner", func(t *testing.T) {
		base := get()
		var ok, stale atomic.Int32
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				switch put(addMember(base, fmt.Sprintf("r%d", i), 10+i), base.Version) {
				case 200:
					ok.Add(1)
				case 412:
					stale.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || stale.Load() != writers-1 {
			t.Fatalf("%d succeeded, %d got 412; want 1 and %d", ok.Load(), stale.Load(), writers-1)
		}
	})

	t.Run("retries lose no update", func(t *testing.T) {
		var ok, stale atomic.Int32
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				for attempt := 0; attempt < 200; attempt++ { // bounded: 8 writers need far fewer
					p := get()
					switch put(addMember(p, fmt.Sprintf("w%d", i), 100+i), p.Version) {
					case 200:
						ok.Add(1)
						return
					case 412:
						stale.Add(1)
					default:
						return
					}
				}
			})
		}
		wg.Wait()
		if ok.Load() != writers {
			t.Fatalf("%d writers succeeded, want %d (%d stale)", ok.Load(), writers, stale.Load())
		}
		final := get()
		if len(final.Members) != 2+writers {
			t.Fatalf("final pool has %d members, want %d: %+v", len(final.Members), 2+writers, final.Members)
		}
		// The version served is the one the store computes from disk, and the serving
		// snapshot holds the same members.
		again, err := f.store.GetPool("race")
		if err != nil || again.Version != final.Version {
			t.Fatalf("store version %s, API %s (%v)", again.Version, final.Version, err)
		}
		if sp := f.snap.Load().PoolByName["race"]; sp == nil || len(sp.Members) != 2+writers {
			t.Fatalf("serving snapshot disagrees")
		}
		t.Logf("%d stale writes retried", stale.Load())
	})
}

// TestDrainExpires drains a member briefly and waits (bounded) for it to come back by
// itself, without any further write.
func TestDrainExpires(t *testing.T) {
	f := newFixture(t, token)
	if r := f.do("POST", "/v1/pools/op-web/members/fra-1/drain", `{"duration":"300ms","reason":"test"}`, true); r.status != 201 {
		t.Fatalf("drain: %d %s", r.status, r.body)
	}
	snap := f.snap.Load()
	fra := snap.Members[0]
	if v := f.health.View(); fra.Name != "fra-1" || v.Up(fra) || !v.Up(snap.Members[1]) {
		t.Fatalf("drained member is up (or the other is down)")
	}
	var hv struct{ Members []api.MemberHealth }
	f.do("GET", "/v1/health", "", false).json(t, &hv)
	if !hv.Members[1].Drained || hv.Members[0].Drained {
		t.Fatalf("health view = %+v", hv.Members)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.health.View().Up(fra) {
		if time.Now().After(deadline) {
			t.Fatal("drain did not expire within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := f.do("GET", "/v1/pools/op-web/members/fra-1/drain", "", false); r.status != 404 {
		t.Errorf("expired drain: status %d", r.status)
	}
	var l struct{ Drains []api.Drain }
	f.do("GET", "/v1/drains", "", false).json(t, &l)
	if len(l.Drains) != 0 {
		t.Errorf("expired drain listed: %+v", l.Drains)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	t.Setenv("GLBDNS_ADMIN_TOKEN", " from-env ")
	tests := []struct {
		name, file, want string
		err              bool
	}{
		{"file wins", file, "from-file", false},
		{"env", "", "from-env", false},
		{"missing file", filepath.Join(dir, "nope"), "", true},
		{"empty file", empty, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadToken(tc.file)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("LoadToken = %q, %v", got, err)
			}
		})
	}
}

func BenchmarkGetPool(b *testing.B) {
	dir := b.TempDir()
	src, _ := os.ReadFile("testdata/policy.hcl")
	path := filepath.Join(dir, "policy.hcl")
	os.WriteFile(path, src, 0o644)
	st, _ := store.Open(path, "")
	st.Load()
	h := New(Config{Store: st}).Handler()
	req := httptest.NewRequest("GET", "/v1/pools/op-web", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// TestReadsNeedToken: with a token configured, reads need it too but for the probes, and
// the public opt-ins open /metrics and the status page; without a token reads are open.
func TestReadsNeedToken(t *testing.T) {
	get := func(t *testing.T, h http.Handler, path, tok string) int {
		t.Helper()
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	f := newFixture(t, token)
	cases := []struct {
		cfg  Config
		path string
		tok  string
		want int
	}{
		{Config{Token: token}, "/v1/pools", "", 401},
		{Config{Token: token}, "/v1/pools", "nope", 403},
		{Config{Token: token}, "/v1/pools", token, 200},
		{Config{Token: token}, "/v1/state", "", 401},
		{Config{Token: token}, "/", "", 401},
		{Config{Token: token}, "/metrics", "", 401},
		{Config{Token: token}, "/healthz", "", 200},
		{Config{Token: token}, "/readyz", "", 200},
		{Config{Token: token, PublicMetrics: true}, "/metrics", "", 200},
		{Config{Token: token, PublicStatus: true}, "/", "", 200},
		{Config{Token: token, PublicStatus: true}, "/v1/state", "", 200},
		{Config{Token: token, PublicStatus: true, PublicMetrics: true}, "/v1/pools", "", 401},
		{Config{}, "/v1/pools", "", 200},
		{Config{}, "/metrics", "", 200},
	}
	for _, c := range cases {
		c.cfg.Store, c.cfg.Health, c.cfg.Ready = f.store, f.health, func() bool { return true }
		c.cfg.Logger = slog.New(slog.DiscardHandler)
		if got := get(t, New(c.cfg).Handler(), c.path, c.tok); got != c.want {
			t.Errorf("token %v, public metrics %v status %v: GET %s with %q: %d, want %d",
				c.cfg.Token != "", c.cfg.PublicMetrics, c.cfg.PublicStatus, c.path, c.tok, got, c.want)
		}
	}
}
