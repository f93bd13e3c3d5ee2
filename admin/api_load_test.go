package admin

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// loadPoolJSON is a pool with a load block that sets every field a prometheus signal
// takes.
const loadPoolJSON = `{"name":"app","members":[{"name":"a","address":"192.0.2.70"},{"name":"b","address":"192.0.2.71","weight":2}],
 "checks":[{"name":"http","port":8080,"path":"/healthz"}],
 "load":{"type":"prometheus","metric":"active_connections","labels":{"listener":"public"},"port":9100,"path":"/stats","scheme":"http","interval":"3s","timeout":"1s"}}`

// TestPoolLoad writes a pool with a load block, reads it back as written, finds it
// compiled in the serving snapshot, and has a least_connections service over it
// accepted.
func TestPoolLoad(t *testing.T) {
	f := newFixture(t, token)
	r := f.do("PUT", "/v1/pools/app", loadPoolJSON, true)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created api.Pool
	r.json(t, &created)
	want := &api.Load{Type: "prometheus", Metric: "active_connections", Labels: map[string]string{"listener": "public"},
		Port: intp(9100), Path: "/stats", Scheme: "http", Interval: "3s", Timeout: "1s"}
	if !reflect.DeepEqual(created.Load, want) {
		t.Errorf("created load = %+v, want %+v", created.Load, want)
	}
	r = f.do("GET", "/v1/pools/app", "", false)
	var got api.Pool
	r.json(t, &got)
	if r.status != 200 || !reflect.DeepEqual(got, created) {
		t.Errorf("read back %d %+v, want %+v", r.status, got, created)
	}
	sp := f.snap.Load().PoolByName["app"]
	if sp == nil || sp.Load == nil {
		t.Fatal("the pool's load block is not in the serving snapshot")
	}
	if l := sp.Load; l.Metric != "active_connections" || l.Labels["listener"] != "public" || l.Port != 9100 ||
		l.Path != "/stats" || l.Interval != 3*time.Second || l.Timeout != time.Second {
		t.Errorf("compiled load = %+v", l)
	}

	// Written back as read, the pool is unchanged (same version).
	r = f.do("PUT", "/v1/pools/app", string(r.body), true)
	var again api.Pool
	r.json(t, &again)
	if r.status != 200 || again.Version != created.Version {
		t.Errorf("write back: %d, version %q, want %q", r.status, again.Version, created.Version)
	}

	r = f.do("POST", "/v1/services", `{"name":"lc.glb.example.com","policy":"least_connections","pools":["app"]}`, true)
	if r.status != 201 {
		t.Fatalf("least_connections service: %d %s", r.status, r.body)
	}
	var sv api.Service
	r.json(t, &sv)
	if sv.Policy != "least_connections" {
		t.Errorf("service policy = %q", sv.Policy)
	}

	// A pool without a load block is still refused under least_connections, at its name.
	if r := f.do("PUT", "/v1/pools/plain", `{"members":[{"name":"a","address":"192.0.2.80"}]}`, true); r.status != 201 {
		t.Fatalf("create plain: %d %s", r.status, r.body)
	}
	r = f.do("POST", "/v1/services", `{"name":"lc2.glb.example.com","policy":"least_connections","pools":["app","plain"]}`, true)
	var e struct{ Error, Field string }
	r.json(t, &e)
	if r.status != 400 || e.Field != "pools[1]" || !strings.Contains(e.Error, "no load block") {
		t.Errorf("least_connections over a pool without load: %d %s", r.status, r.body)
	}

	// Removing the load block of a pool a least_connections service balances is refused,
	// at the service's reference to it.
	r = f.do("PUT", "/v1/pools/app", `{"members":[{"name":"a","address":"192.0.2.70"}]}`, true)
	if r.status != 400 || !strings.Contains(string(r.body), "least_connections") {
		t.Errorf("drop the load block under least_connections: %d %s", r.status, r.body)
	}
}

func intp(i int) *int { return &i }

// TestPoolLoadInvalid: a bad load block is refused with 400 and the field at fault, the
// policy compiler's diagnostic as the reason.
func TestPoolLoadInvalid(t *testing.T) {
	f := newFixture(t, token)
	const members = `"members":[{"name":"a","address":"192.0.2.70"}]`
	cases := []struct {
		name, load, field, reason string
	}{
		{"unknown type", `{"type":"xml","metric":"x"}`, "load.type", "xml"},
		{"prometheus without metric", `{"type":"prometheus"}`, "load", "Missing load metric"},
		{"default type without metric", `{}`, "load", "Missing load metric"},
		{"bad metric name", `{"metric":"1-conns"}`, "load.metric", "not a Prometheus metric name"},
		{"json without field", `{"type":"json"}`, "load", "Missing load field"},
		{"bad json field", `{"type":"json","field":"a..b"}`, "load.field", "dotted path"},
		{"field on prometheus", `{"metric":"conns","field":"a.b"}`, "load.field", "does not apply"},
		{"labels on json", `{"type":"json","field":"a","labels":{"x":"y"}}`, "load.labels", "does not apply"},
		{"metric on number", `{"type":"number","metric":"conns"}`, "load.metric", "does not apply"},
		{"port out of range", `{"metric":"conns","port":70000}`, "load.port", ""},
		{"relative path", `{"metric":"conns","path":"metrics"}`, "load.path", "must start with"},
		{"bad scheme", `{"metric":"conns","scheme":"ftp"}`, "load.scheme", "ftp"},
		{"bad interval", `{"metric":"conns","interval":"soon"}`, "load.interval", ""},
		{"timeout not shorter", `{"metric":"conns","interval":"2s","timeout":"2s"}`, "load.timeout", "shorter than its interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do("PUT", "/v1/pools/bad", `{`+members+`,"load":`+c.load+`}`, true)
			var e struct{ Error, Field string }
			r.json(t, &e)
			if r.status != 400 || e.Field != c.field || !strings.Contains(e.Error, c.reason) {
				t.Errorf("got %d %s, want 400 field %q reason containing %q", r.status, r.body, c.field, c.reason)
			}
		})
	}
	if r := f.do("GET", "/v1/pools/bad", "", false); r.status != 404 {
		t.Errorf("a refused pool was stored: %d %s", r.status, r.body)
	}
}

// TestOperatorPoolLoad: a pool of the operator's files shows its load block with the
// compiled values (defaults from its check filled in).
func TestOperatorPoolLoad(t *testing.T) {
	f := newFixtureWith(t, token, `
pool "op-app" {
  member "a" {
    address = "192.0.2.90"
  }
  check "http" {
    port     = 8080
    path     = "/healthz"
    interval = "4s"
    timeout  = "1s"
  }
  load {
    metric = "active_connections"
  }
}
`)
	r := f.do("GET", "/v1/pools/op-app", "", false)
	var p api.Pool
	r.json(t, &p)
	want := &api.Load{Type: "prometheus", Metric: "active_connections", Port: intp(8080), Path: "/metrics", Scheme: "http",
		Interval: "4s", Timeout: "1s"}
	if r.status != 200 || p.Managed || !reflect.DeepEqual(p.Load, want) {
		t.Errorf("operator pool %d load %+v, want %+v", r.status, p.Load, want)
	}
}
