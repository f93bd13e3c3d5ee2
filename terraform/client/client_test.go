package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

const token = "s3cret"

func newClient(t *testing.T, url, tok string) *client.Client {
	t.Helper()
	c, err := client.New([]string{url}, tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func webEU() api.Pool {
	return api.Pool{Name: "web-eu", Region: "eu",
		Members: []api.Member{{Name: "fra-1", Address: "192.0.2.10", Weight: ptr(3)}, {Name: "ams-1", Address: "192.0.2.11"}},
		Checks:  []api.Check{{Name: "http", Port: ptr(8080), Path: "/healthz", ExpectStatus: api.StatusList{"200-299"}}},
	}
}

func TestPoolLifecycle(t *testing.T) {
	srv := glbtest.Start(t, glbtest.Options{Token: token})
	c := newClient(t, srv.URL, token)
	ctx := context.Background()

	p, err := c.CreatePool(ctx, webEU())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if p.Version == "" || !p.Managed {
		t.Fatalf("create returned version %q managed %v; want a version and managed", p.Version, p.Managed)
	}
	// The server fills in a member's weight; a check is kept as written (its defaults
	// apply when the pool is compiled).
	if *p.Members[1].Weight != 1 || p.Checks[0].Type != "" || p.Checks[0].Interval != "" || *p.Checks[0].Port != 8080 {
		t.Errorf("create returned %+v; want weight 1 filled in and the check as sent", p)
	}
	got, err := c.GetPool(ctx, "web-eu")
	if err != nil || got.Version != p.Version {
		t.Fatalf("get: %v, version %q want %q", err, got.Version, p.Version)
	}

	upd := webEU()
	upd.Region = "europe"
	p2, err := c.PutPool(ctx, upd, p.Version)
	if err != nil {
		t.Fatalf("put with the current version: %v", err)
	}
	if p2.Version == p.Version || p2.Region != "europe" {
		t.Errorf("put: version %q region %q; want a new version and region europe", p2.Version, p2.Region)
	}
	if _, err := c.PutPool(ctx, upd, p.Version); !errors.Is(err, client.ErrPreconditionFailed) {
		t.Errorf("put with a stale version: err %v; want ErrPreconditionFailed", err)
	}
	if err := c.DeletePool(ctx, "web-eu", p2.Version); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GetPool(ctx, "web-eu"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get after delete: err %v; want ErrNotFound", err)
	}
}

// TestPoolSteeringFields writes the steering attributes through the client and reads them
// back from the real server: a whole-number min_healthy comes back as a JSON number (read
// as the same string), a percentage as a string, a bias of 0 as 0 (not omitted), and unset
// attributes stay unset (the server fills in no default). A service's method round-trips.
func TestPoolSteeringFields(t *testing.T) {
	srv := glbtest.Start(t, glbtest.Options{Token: token})
	c := newClient(t, srv.URL, token)
	ctx := context.Background()
	members := []api.Member{{Name: "a", Address: "192.0.2.1"}, {Name: "b", Address: "192.0.2.2"}}
	tests := []struct {
		name string
		in   api.Pool
	}{
		{"number", api.Pool{Name: "n", Location: []float64{51.5074, -0.1278}, Bias: ptr(200.5), Method: "weighted", MinHealthy: "2", Members: members}},
		{"percentage", api.Pool{Name: "p", Location: []float64{-33.8688, 151.2093}, Bias: ptr(-40.0), Method: "client_subnet_hash", MinHealthy: "50%", Members: members}},
		{"bias 0", api.Pool{Name: "z", Location: []float64{0, 0}, Bias: ptr(0.0), Members: members}},
		{"unset", api.Pool{Name: "u", Members: members}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, err := c.CreatePool(ctx, tt.in)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := c.GetPool(ctx, tt.in.Name)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			for what, p := range map[string]*api.Pool{"create": created, "get": got} {
				if !slices.Equal(p.Location, tt.in.Location) || (p.Bias == nil) != (tt.in.Bias == nil) ||
					(p.Bias != nil && *p.Bias != *tt.in.Bias) || p.Method != tt.in.Method || p.MinHealthy != tt.in.MinHealthy {
					t.Errorf("%s returned location %v bias %v method %q min_healthy %q; want %v %v %q %q", what,
						p.Location, p.Bias, p.Method, p.MinHealthy, tt.in.Location, tt.in.Bias, tt.in.Method, tt.in.MinHealthy)
				}
			}
		})
	}
	s, err := c.CreateService(ctx, api.Service{Name: "api.glb.example.com", Policy: "failover", Method: "weighted", Pools: []string{"n", "p"}})
	if err != nil {
		t.Fatalf("create failover service: %v", err)
	}
	if s.Policy != "failover" || s.Method != "weighted" {
		t.Errorf("failover service: policy %q method %q; want failover weighted", s.Policy, s.Method)
	}
	s, err = c.CreateService(ctx, api.Service{Name: "www.glb.example.com", Policy: "weighted", Pools: []string{"u"}})
	if err != nil {
		t.Fatalf("create weighted service: %v", err)
	}
	if s.Method != "" {
		t.Errorf("weighted service: method %q; want no method", s.Method)
	}
}

func TestMinHealthyJSON(t *testing.T) {
	for _, tt := range []struct {
		in   api.MinHealthy
		json string
	}{{"2", `2`}, {"50%", `"50%"`}, {"100%", `"100%"`}} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.json {
			t.Errorf("marshal %q = %s, %v; want %s", tt.in, b, err, tt.json)
		}
		var back api.MinHealthy
		if err := json.Unmarshal(b, &back); err != nil || back != tt.in {
			t.Errorf("unmarshal %s = %q, %v; want %q", b, back, err, tt.in)
		}
	}
	var m api.MinHealthy
	if err := json.Unmarshal([]byte(`true`), &m); err == nil {
		t.Errorf("unmarshal true succeeded (%q); want an error", m)
	}
}

// TestStatusCodes checks that every documented error status reaches the caller as an
// *APIError with the server's reason and, where one field is at fault, the field.
func TestStatusCodes(t *testing.T) {
	srv := glbtest.Start(t, glbtest.Options{Token: token, Policy: `pool "from-file" {
  member "a" { address = "192.0.2.1" }
}
`})
	ctx := context.Background()
	c := newClient(t, srv.URL, token)
	if _, err := c.CreatePool(ctx, webEU()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(ctx, api.Service{Name: "www.glb.example.com", Pools: []string{"web-eu"}}); err != nil {
		t.Fatal(err)
	}
	noWrites := newClient(t, glbtest.Start(t, glbtest.Options{}).URL, token)

	tests := []struct {
		name      string
		call      func() error
		code      int
		sentinel  error
		wantField string
	}{
		{"bad member", func() error {
			p := webEU()
			p.Name, p.Members[1].Host = "other", "eu.cdn.example.net" // address and host
			_, err := c.CreatePool(ctx, p)
			return err
		}, http.StatusBadRequest, client.ErrBadRequest, "members[1].host"},
		{"no token", func() error { _, err := newClient(t, srv.URL, "").CreatePool(ctx, webEU()); return err },
			http.StatusUnauthorized, client.ErrUnauthorized, ""},
		{"wrong token", func() error { _, err := newClient(t, srv.URL, "nope").CreatePool(ctx, webEU()); return err },
			http.StatusForbidden, client.ErrForbidden, ""},
		{"write API off", func() error { _, err := noWrites.CreatePool(ctx, webEU()); return err },
			http.StatusForbidden, client.ErrForbidden, ""},
		{"missing pool", func() error { _, err := c.GetPool(ctx, "nope"); return err },
			http.StatusNotFound, client.ErrNotFound, ""},
		{"exists", func() error { _, err := c.CreatePool(ctx, webEU()); return err },
			http.StatusConflict, client.ErrConflict, ""},
		{"read-only", func() error { return c.DeletePool(ctx, "from-file", "") },
			http.StatusConflict, client.ErrConflict, ""},
		{"still referenced", func() error { return c.DeletePool(ctx, "web-eu", "") },
			http.StatusConflict, client.ErrConflict, ""},
		{"stale If-Match", func() error { _, err := c.PutPool(ctx, webEU(), "0000"); return err },
			http.StatusPreconditionFailed, client.ErrPreconditionFailed, ""},
		{"unknown pool", func() error {
			_, err := c.CreateService(ctx, api.Service{Name: "api.glb.example.com", Pools: []string{"nope"}})
			return err
		}, http.StatusUnprocessableEntity, client.ErrUnprocessable, "pools[0]"},
		{"drain of unknown member", func() error {
			_, err := c.Drain(ctx, "web-eu", "nope", api.DrainRequest{Duration: "10m"})
			return err
		}, http.StatusUnprocessableEntity, client.ErrUnprocessable, ""},
		{"service outside zones", func() error {
			_, err := c.CreateService(ctx, api.Service{Name: "www.example.org", Pools: []string{"web-eu"}})
			return err
		}, http.StatusBadRequest, client.ErrBadRequest, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v (%T); want an *APIError", err, err)
			}
			if ae.StatusCode != tt.code || client.StatusCode(err) != tt.code {
				t.Errorf("status %d; want %d", ae.StatusCode, tt.code)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) is false", err, tt.sentinel)
			}
			if ae.Reason == "" || ae.Field != tt.wantField {
				t.Errorf("reason %q field %q; want a reason and field %q", ae.Reason, ae.Field, tt.wantField)
			}
		})
	}
}

func TestDrainAndHealth(t *testing.T) {
	srv := glbtest.Start(t, glbtest.Options{Token: token, Reporters: 2})
	c := newClient(t, srv.URL, token)
	ctx := context.Background()
	if _, err := c.CreatePool(ctx, webEU()); err != nil {
		t.Fatal(err)
	}
	// Both healthd reporters say ams-1 is down; wait (bounded) until the node has heard.
	srv.SetHealth("web-eu", "ams-1", api.StatusDown)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hs, err := c.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(hs, func(h api.MemberHealth) bool { return h.Member == "ams-1" && h.Reporters == 2 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after 10s: %+v; want ams-1 reported by 2 reporters", hs)
		}
	}
	d, err := c.Drain(ctx, "web-eu", "fra-1", api.DrainRequest{Duration: "10m", Reason: "kernel upgrade"})
	if err != nil || d.Until.IsZero() || d.Reason != "kernel upgrade" {
		t.Fatalf("drain: %+v, %v", d, err)
	}
	if ds, err := c.ListDrains(ctx); err != nil || len(ds) != 1 || ds[0].Member != "fra-1" {
		t.Errorf("list drains: %+v, %v; want fra-1 only", ds, err)
	}
	hs, err := c.Health(ctx)
	if err != nil || len(hs) != 2 {
		t.Fatalf("health: %+v, %v; want 2 members", hs, err)
	}
	want := map[string]api.MemberHealth{
		"ams-1": {Pool: "web-eu", Member: "ams-1", Status: "down", Reporters: 2},
		"fra-1": {Pool: "web-eu", Member: "fra-1", Status: "unknown", Drained: true, Reporters: 2}, // no report: unknown
	}
	for _, h := range hs {
		if h != want[h.Member] {
			t.Errorf("health %+v; want %+v", h, want[h.Member])
		}
	}
	if err := c.Undrain(ctx, "web-eu", "fra-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDrain(ctx, "web-eu", "fra-1"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get drain after undrain: %v; want ErrNotFound", err)
	}
}

func TestStatusListDecodesNumbers(t *testing.T) {
	var s api.StatusList
	if err := s.UnmarshalJSON([]byte(`[200, "300-399"]`)); err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0] != "200" || s[1] != "300-399" {
		t.Errorf("got %q; want [200 300-399]", s)
	}
	if err := s.UnmarshalJSON([]byte(`[true]`)); err == nil {
		t.Error("a boolean element decoded without error")
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, ep := range []string{"", "127.0.0.1:8053", "ftp://x", "http://"} {
		if _, err := client.New([]string{ep}, ""); err == nil {
			t.Errorf("New(%q) succeeded; want an error", ep)
		}
	}
}
