package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// newStore copies testdata/policy.hcl into a temporary directory and opens a store on it.
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := s.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	return s, dir
}

func webPool(name string) api.Pool {
	return api.Pool{Name: name, Region: "us", Members: []api.Member{
		{Name: "iad-1", Address: "198.51.100.1", Weight: intp(2)},
		{Name: "edge", Address: "2001:db8::1"},
	}, Checks: []api.Check{{Name: "http", Port: intp(8080), Path: "/h${x}", Interval: "2s", Timeout: "1s",
		Headers: map[string]string{"X-Probe": "glbdns"}, ExpectStatus: api.StatusList{"200-299", "301"}}}}
}

func TestDefaultManagedDir(t *testing.T) {
	for in, want := range map[string]string{
		"examples/policy":      "examples/policy.managed",
		"examples/policy/":     "examples/policy.managed",
		"examples/policy.hcl":  "examples/policy.managed",
		"/etc/glbdns/main.hcl": "/etc/glbdns/main.managed",
	} {
		if got := DefaultManagedDir(in); got != want {
			t.Errorf("DefaultManagedDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPutPoolRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	p, created, err := s.PutPool(webPool("web-us"), Precondition{})
	if err != nil || !created {
		t.Fatalf("PutPool = %v, created %v", err, created)
	}
	if !p.Managed || p.Version == "" || *p.Members[1].Weight != 1 {
		t.Fatalf("stored pool = %+v", p)
	}
	data, err := os.ReadFile(filepath.Join(dir, "policy.managed", "pool-web-us.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "member \"iad-1\" {\n") || !strings.Contains(string(data), `"/h$${x}"`) {
		t.Errorf("document is not multi-line HCL with escaped templates:\n%s", data)
	}
	// A fresh store on the same folder reads the same object, same version.
	s2, err := Open(filepath.Join(dir, "policy.hcl"), "")
	if err != nil {
		t.Fatal(err)
	}
	snap, diags := s2.Load()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got, err := s2.GetPool("web-us")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("reloaded pool = %+v (%v), want %+v", got, err, p)
	}
	sp := snap.PoolByName["web-us"]
	if sp == nil || len(sp.Members) != 2 || sp.Members[0].Weight != 2 || sp.Checks[0].Path != "/h${x}" {
		t.Fatalf("snapshot pool = %+v", sp)
	}
	// Same content, same version; a change changes it.
	again, created, err := s.PutPool(webPool("web-us"), Precondition{IfMatch: p.Version})
	if err != nil || created || again.Version != p.Version {
		t.Fatalf("identical PUT = %v created=%v version %s want %s", err, created, again.Version, p.Version)
	}
	changed := webPool("web-us")
	changed.Region = "ca"
	if c, _, err := s.PutPool(changed, Precondition{IfMatch: p.Version}); err != nil || c.Version == p.Version {
		t.Fatalf("changed PUT = %v, version %s", err, c.Version)
	}
}

func TestOperatorObjectsReadOnly(t *testing.T) {
	s, _ := newStore(t)
	p, err := s.GetPool("op-web")
	if err != nil || p.Managed || len(p.Members) != 2 || *p.Checks[0].Port != 8080 || p.Checks[0].Interval != "2s" {
		t.Fatalf("operator pool = %+v, %v", p, err)
	}
	sv, err := s.GetService("OP.glb.example.com.")
	if err != nil || sv.Managed || sv.Policy != "weighted" || sv.Pools[0] != "op-web" || *sv.TTL != 30 {
		t.Fatalf("operator service = %+v, %v", sv, err)
	}
	for name, err := range map[string]error{
		"put pool":    func() error { _, _, err := s.PutPool(webPool("op-web"), Precondition{}); return err }(),
		"delete pool": s.DeletePool("op-web", Precondition{}),
		"put service": func() error {
			_, _, err := s.PutService(api.Service{Name: "op.glb.example.com", Pools: []string{"op-web"}}, Precondition{})
			return err
		}(),
		"delete service": s.DeleteService("op.glb.example.com", Precondition{}),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: err = %v, want ErrReadOnly", name, err)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	s, _ := newStore(t)
	if _, _, err := s.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	badAddr := webPool("bad")
	badAddr.Members[1].Address = "300.1.1.1"
	badPort := webPool("bad")
	badPort.Checks[0].Port = intp(70000)
	both := webPool("bad")
	both.Members[0].Host = "x.example.net"
	dup := webPool("bad")
	dup.Members[1].Name = "iad-1"
	timeout := webPool("bad")
	timeout.Checks[0].Timeout = "5s"
	status := webPool("bad")
	status.Checks[0].ExpectStatus = api.StatusList{"200", "999"}
	tests := []struct {
		name  string
		put   func() error
		field string
		kind  error
	}{
		{"bad address", func() error { _, _, err := s.PutPool(badAddr, Precondition{}); return err }, "members[1].address", ErrInvalid},
		{"bad port", func() error { _, _, err := s.PutPool(badPort, Precondition{}); return err }, "checks[0].port", ErrInvalid},
		{"address and host", func() error { _, _, err := s.PutPool(both, Precondition{}); return err }, "members[0].host", ErrInvalid},
		{"duplicate member", func() error { _, _, err := s.PutPool(dup, Precondition{}); return err }, "members[1].name", ErrInvalid},
		{"timeout", func() error { _, _, err := s.PutPool(timeout, Precondition{}); return err }, "checks[0].timeout", ErrInvalid},
		{"expect_status", func() error { _, _, err := s.PutPool(status, Precondition{}); return err }, "checks[0].expect_status[1]", ErrInvalid},
		{"empty name", func() error { _, _, err := s.PutPool(api.Pool{}, Precondition{}); return err }, "name", ErrInvalid},
		{"unknown pool", func() error {
			_, _, err := s.PutService(api.Service{Name: "www.glb.example.com", Pools: []string{"web-us", "nope"}}, Precondition{})
			return err
		}, "pools[1]", ErrUnknownRef},
		{"outside zones", func() error {
			_, _, err := s.PutService(api.Service{Name: "www.example.org", Pools: []string{"web-us"}}, Precondition{})
			return err
		}, "name", ErrInvalid},
		{"bad ttl", func() error {
			_, _, err := s.PutService(api.Service{Name: "www.glb.example.com", Pools: []string{"web-us"}, TTL: intp(-1)}, Precondition{})
			return err
		}, "ttl", ErrInvalid},
		{"delete referenced", func() error {
			if _, _, err := s.PutService(api.Service{Name: "www.glb.example.com", Pools: []string{"web-us"}}, Precondition{}); err != nil {
				return err
			}
			return s.DeletePool("web-us", Precondition{})
		}, "", ErrReferenced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.put()
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want a ValidationError matching %v", err, tc.kind)
			}
			if ve.Field != tc.field {
				t.Errorf("field = %q, want %q (reason %s)", ve.Field, tc.field, ve.Reason)
			}
		})
	}
	if _, err := s.GetPool("bad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused pool is visible: %v", err)
	}
	ents, _ := os.ReadDir(s.b.(*DirBackend).Dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "bad") {
			t.Errorf("a refused pool was written: %s", e.Name())
		}
	}
}

func TestPreconditions(t *testing.T) {
	s, _ := newStore(t)
	p, _, err := s.PutPool(webPool("web"), Precondition{IfNoneMatch: "*"})
	if err != nil {
		t.Fatal(err)
	}
	for name, pre := range map[string]Precondition{
		"stale if-match":     {IfMatch: "0000"},
		"if-none-match":      {IfNoneMatch: "*"},
		"if-match of absent": {IfMatch: "*"},
	} {
		pool := webPool("web")
		if name == "if-match of absent" {
			pool.Name = "absent"
		}
		if _, _, err := s.PutPool(pool, pre); !errors.Is(err, ErrPreconditionFailed) {
			t.Errorf("%s: err = %v, want ErrPreconditionFailed", name, err)
		}
	}
	if _, _, err := s.PutPool(webPool("web"), Precondition{Create: true}); !errors.Is(err, ErrExists) {
		t.Errorf("create of existing: %v", err)
	}
	if err := s.DeletePool("web", Precondition{IfMatch: "0000"}); !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("stale delete: %v", err)
	}
	if err := s.DeletePool("web", Precondition{IfMatch: p.Version}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePool("web", Precondition{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestWriteThenLoad(t *testing.T) {
	s, _ := newStore(t)
	if _, _, err := s.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutService(api.Service{Name: "WWW.glb.example.com.", Policy: "weighted", Pools: []string{"web-us", "op-web"}}, Precondition{}); err != nil {
		t.Fatal(err)
	}
	snap, diags := s.Load()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var svc *policy.Service
	for _, sv := range snap.Services {
		if sv.Name == "www.glb.example.com." {
			svc = sv
		}
	}
	if svc == nil || len(svc.Pools) != 2 || svc.Method != policy.Weighted {
		t.Fatalf("service not in snapshot: %+v", svc)
	}
	list := s.ListServices()
	if len(list) != 2 || list[0].Name != "op.glb.example.com" || list[1].Name != "www.glb.example.com" || !list[1].Managed {
		t.Fatalf("ListServices = %+v", list)
	}
	if err := s.DeleteService("www.glb.example.com", Precondition{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePool("web-us", Precondition{}); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load()
	if snap.PoolByName["web-us"] != nil || len(snap.Services) != 1 {
		t.Fatalf("deleted objects still loaded")
	}
}

// published records what a store publishes.
type published struct {
	snaps  []*policy.Snapshot
	drains [][]api.Drain
	fail   error
}

func (p *published) publish(snap *policy.Snapshot, ds []api.Drain) error {
	if p.fail != nil {
		return p.fail
	}
	p.snaps = append(p.snaps, snap)
	p.drains = append(p.drains, ds)
	return nil
}

func TestDrains(t *testing.T) {
	s, _ := newStore(t)
	var pub published
	s.Publish(pub.publish)
	if _, err := s.Drain("op-web", "nope", time.Minute, ""); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("drain of unknown member: %v", err)
	}
	if _, err := s.Drain("nope", "fra-1", time.Minute, ""); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("drain of unknown pool: %v", err)
	}
	if _, err := s.Drain("op-web", "fra-1", 0, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero drain: %v", err)
	}
	snap, _ := s.Load()
	d, err := s.Drain("op-web", "fra-1", time.Hour, "kernel upgrade")
	if err != nil {
		t.Fatal(err)
	}
	// The drain is published with the serving snapshot, which it does not change.
	if n := len(pub.snaps); n != 2 || pub.snaps[1] != snap || len(pub.drains[1]) != 1 || pub.drains[1][0] != d {
		t.Fatalf("published %d times, last drains %+v; want the Load, then the drain with the same snapshot", n, pub.drains)
	}
	now := time.Now()
	if got, err := s.GetDrain("op-web", "fra-1", now); err != nil || got != d {
		t.Errorf("GetDrain = %+v, %v", got, err)
	}
	if _, err := s.GetDrain("op-web", "fra-1", d.Until); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDrain at its end: %v, want not found", err)
	}
	// Drains survive a restart, and the first Load publishes them.
	s2, err := OpenBackend(s.policyPath, s.b)
	if err != nil {
		t.Fatal(err)
	}
	var pub2 published
	s2.Publish(pub2.publish)
	s2.Load()
	if got := s2.Drains(now); len(got) != 1 || got[0] != d {
		t.Fatalf("drains after restart = %+v, want %+v", got, d)
	}
	if len(pub2.drains) != 1 || len(pub2.drains[0]) != 1 || pub2.drains[0][0] != d {
		t.Errorf("first Load after restart published drains %+v", pub2.drains)
	}
	if err := s.Undrain("op-web", "fra-1"); err != nil {
		t.Fatal(err)
	}
	if len(s.Drains(now)) != 0 || len(pub.drains[len(pub.drains)-1]) != 0 {
		t.Fatal("undrain did not end the drain")
	}
	if err := s.Undrain("op-web", "fra-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second undrain: %v", err)
	}
}

// TestWritePublishesOnce: a write compiles the policy once and publishes the snapshot that
// validated it, before it returns; a refused snapshot is ErrNotServing, stored all the same.
func TestWritePublishesOnce(t *testing.T) {
	s, _ := newStore(t)
	var pub published
	s.Publish(pub.publish)
	if _, _, err := s.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	if len(pub.snaps) != 1 || pub.snaps[0].PoolByName["web-us"] == nil {
		t.Fatalf("published %d snapshots; want one, holding web-us", len(pub.snaps))
	}
	pub.fail = errors.New("geoip database refused")
	_, _, err := s.PutPool(webPool("web-ap"), Precondition{})
	if !errors.Is(err, ErrNotServing) || !strings.Contains(err.Error(), "geoip database refused") {
		t.Fatalf("refused publish: %v, want ErrNotServing with the reason", err)
	}
	if _, err := s.GetPool("web-ap"); err != nil {
		t.Errorf("the write refused by the publisher is not stored: %v", err)
	}
	pub.fail = nil
	if _, diags := s.Load(); diags.HasErrors() || len(pub.snaps) != 2 || pub.snaps[1].PoolByName["web-ap"] == nil {
		t.Errorf("the next Load did not publish the stored pool: %v", diags)
	}
}

func TestSteeringAttributesRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	bias := 150.5
	for _, mh := range []api.MinHealthy{"50%", "2"} {
		p := webPool("near-" + strings.TrimSuffix(string(mh), "%"))
		p.Location, p.Bias, p.Method, p.MinHealthy = []float64{50.11, 8.68}, &bias, "weighted", mh
		p.UnknownIs = "down"
		got, _, err := s.PutPool(p, Precondition{})
		if err != nil {
			t.Fatalf("min_healthy %s: %v", mh, err)
		}
		snap, diags := s.Load()
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		sp := snap.PoolByName[p.Name]
		if !sp.HasLocation || sp.Lat != 50.11 || sp.Bias != bias || sp.Method != policy.Weighted || sp.UnknownIs != policy.UnknownDown {
			t.Errorf("snapshot pool = %+v", sp)
		}
		if (mh == "50%" && sp.MinHealthyPercent != 50) || (mh == "2" && sp.MinHealthy != 2) {
			t.Errorf("min_healthy %s compiled to %d / %d%%", mh, sp.MinHealthy, sp.MinHealthyPercent)
		}
		if again, _ := s.GetPool(p.Name); !reflect.DeepEqual(again, got) || again.MinHealthy != mh {
			t.Errorf("read back %+v, want %+v", again, got)
		}
	}
}

// TestOperatorObjectsFollowFileEdits: which objects are the operator's (read-only) is
// cached between writes, keyed on the files' contents; an edit of the files is seen.
func TestOperatorObjectsFollowFileEdits(t *testing.T) {
	s, dir := newStore(t)
	path := filepath.Join(dir, "policy.hcl")
	if _, _, err := s.PutPool(webPool("op-web"), Precondition{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write of the operator's pool: %v, want ErrReadOnly", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The operator renames the pool (and the service that uses it): op-web is free.
	renamed := strings.ReplaceAll(string(src), `"op-web"`, `"op-web-2"`)
	if err := os.WriteFile(path, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.PutPool(webPool("op-web"), Precondition{}); err != nil || !created {
		t.Fatalf("write after the rename: created=%v err=%v", created, err)
	}
	if _, _, err := s.PutPool(webPool("op-web-2"), Precondition{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write of the renamed operator pool: %v, want ErrReadOnly", err)
	}
}

// BenchmarkPutPoolAt is one admin API write (a pool created) into a store already holding
// n managed pools and n services: validation, persistence and the compile of the policy
// it makes, as the daemon's write path runs them (less the install).
// storeWith opens a store over a one-zone policy whose managed folder holds n pools and n
// services (one over each), written as the API writes them, and loads it.
func storeWith(b *testing.B, n int) *Store {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(path, []byte("zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	managed := DefaultManagedDir(path)
	if err := os.MkdirAll(managed, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		p := api.Pool{Name: fmt.Sprintf("p%d", i), Members: []api.Member{{Name: "a", Address: "192.0.2.1"}, {Name: "b", Address: "192.0.2.2"}}}
		sv := api.Service{Name: fmt.Sprintf("s%d.glb.test", i), Pools: []string{p.Name}}
		normalizePool(&p)
		normalizeService(&sv)
		for name, data := range map[string][]byte{docName("pool", p.Name): encodePool(p), docName("service", sv.Name): encodeService(sv)} {
			if err := os.WriteFile(filepath.Join(managed, name), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := Open(path, "")
	if err != nil {
		b.Fatal(err)
	}
	if _, diags := s.Load(); diags.HasErrors() {
		b.Fatal(diags)
	}
	return s
}

// BenchmarkPutPoolAt is one API write (a new pool) into a store of 2,000 or 20,000
// objects, from one writer: validate, compile, persist (the folder's fsyncs included).
func BenchmarkPutPoolAt(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", 2*n), func(b *testing.B) {
			s := storeWith(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := api.Pool{Name: fmt.Sprintf("new%d", i), Members: []api.Member{{Name: "a", Address: "192.0.2.1"}}}
				if _, _, err := s.PutPool(p, Precondition{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPutPoolConcurrentAt is the same write from ten concurrent writers (Terraform's
// default parallelism), which the store commits in groups: ns/op is the time per write.
func BenchmarkPutPoolConcurrentAt(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", 2*n), func(b *testing.B) {
			s := storeWith(b, n)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(max(1, 10/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p := api.Pool{Name: fmt.Sprintf("new%d", next.Add(1)), Members: []api.Member{{Name: "a", Address: "192.0.2.1"}}}
					if _, _, err := s.PutPool(p, Precondition{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := s.Stats()
			b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
		})
	}
}
