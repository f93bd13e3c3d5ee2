package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/etcdtest"
)

// etcdStores opens n stores (n glbdns nodes) on the same operator policy and one real etcd
// cluster, each with its own client, and loads them.
func etcdStores(t *testing.T, c *etcdtest.Cluster, n int) []*Store {
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
	var out []*Store
	for range n {
		b, err := NewEtcdBackend(EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/test/" + t.Name() + "/",
			RequestTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		s, err := OpenBackend(path, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, diags := s.Load(); diags.HasErrors() {
			t.Fatal(diags)
		}
		out = append(out, s)
	}
	return out
}

func TestEtcdBackend(t *testing.T) {
	c := etcdtest.Start(t, 3)

	t.Run("a write on one node is read by another", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		p, created, err := s[0].PutPool(webPool("web-us"), Precondition{})
		if err != nil || !created {
			t.Fatalf("put: %v %v", created, err)
		}
		snap, diags := s[1].Load()
		if diags.HasErrors() || snap.PoolByName["web-us"] == nil {
			t.Fatalf("the other node's load: %v", diags)
		}
		got, err := s[1].GetPool("web-us")
		if err != nil || got.Version != p.Version {
			t.Fatalf("the other node reads %+v, %v; want version %s", got, err, p.Version)
		}
		// Nothing moved: a second Load compiles nothing and gives the same snapshot.
		if again, _ := s[1].Load(); again != snap {
			t.Error("a Load with nothing changed compiled a new snapshot")
		}
	})

	t.Run("If-Match across nodes: one wins, the other gets 412", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		p, _, err := s[0].PutPool(webPool("web-us"), Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		s[1].Load() // both nodes have read version p.Version
		a, b := webPool("web-us"), webPool("web-us")
		a.Region, b.Region = "a", "b"
		if _, _, err := s[0].PutPool(a, Precondition{IfMatch: p.Version}); err != nil {
			t.Fatalf("first writer: %v", err)
		}
		if _, _, err := s[1].PutPool(b, Precondition{IfMatch: p.Version}); !errors.Is(err, ErrPreconditionFailed) {
			t.Fatalf("second writer with the same If-Match: %v, want ErrPreconditionFailed", err)
		}
		s[1].Load() // as the watch would
		if got, _ := s[1].GetPool("web-us"); got.Region != "a" {
			t.Errorf("region %q after the second writer was refused, want the first writer's", got.Region)
		}
	})

	t.Run("concurrent writers through two nodes lose no update", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		const per = 10
		var wg sync.WaitGroup
		errs := make(chan error, 2*per)
		for node := range 2 {
			wg.Go(func() {
				for i := range per {
					p := webPool("p" + string(rune('a'+node)) + string(rune('a'+i)))
					if _, _, err := s[node].PutPool(p, Precondition{}); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for node := range 2 {
			snap, diags := s[node].Load()
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			n := 0
			for _, p := range snap.Pools {
				if len(p.Name) == 3 && p.Name[0] == 'p' {
					n++
				}
			}
			if n != 2*per {
				t.Errorf("node %d serves %d of the %d pools written", node, n, 2*per)
			}
		}
	})

	t.Run("a service validated against a pool another node deleted is refused", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		if _, _, err := s[0].PutPool(webPool("web-us"), Precondition{}); err != nil {
			t.Fatal(err)
		}
		s[1].Load() // node 1 has seen the pool
		if err := s[0].DeletePool("web-us", Precondition{}); err != nil {
			t.Fatal(err)
		}
		// Node 1 decides on its cache, which still has the pool; the commit finds the
		// documents moved, and the write is decided again: the pool is gone.
		_, _, err := s[1].PutService(api.Service{Name: "www.glb.example.com", Pools: []string{"web-us"}}, Precondition{})
		if !errors.Is(err, ErrUnknownRef) {
			t.Fatalf("service naming a deleted pool: %v, want ErrUnknownRef", err)
		}
	})

	t.Run("a group is one transaction, decided again after another node's write", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		s[1].Load()
		cb := &countingBackend{Backend: s[1].b}
		s[1].b = cb
		// Node 0 creates x after node 1 read: node 1's group, decided on its cache,
		// conflicts and is decided again, and its create of x is then refused.
		if _, _, err := s[0].PutPool(webPool("x"), Precondition{}); err != nil {
			t.Fatal(err)
		}
		put := func(name string) func() error {
			return func() error { _, _, err := s[1].PutPool(webPool(name), Precondition{Create: true}); return err }
		}
		errs := queueWrites(t, s[1], []func() error{put("p1"), put("x"), put("p2")})
		if errs[0] != nil || !errors.Is(errs[1], ErrExists) || errs[2] != nil {
			t.Fatalf("verdicts %v; want nil, ErrExists, nil", errs)
		}
		if len(cb.applies) != 2 || cb.applies[1] != 2 {
			t.Fatalf("transactions %v; want a conflict, then one of two documents", cb.applies)
		}
		snap, diags := s[0].Load()
		if diags.HasErrors() || snap.PoolByName["p1"] == nil || snap.PoolByName["p2"] == nil {
			t.Fatalf("node 0 does not serve the group: %v", diags)
		}
	})

	t.Run("the watch signals another node's write", func(t *testing.T) {
		s := etcdStores(t, c, 2)
		b := s[1].b.(*EtcdBackend)
		ctx := t.Context()
		ch, err := b.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s[0].PutPool(webPool("web-us"), Precondition{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no watch signal within 10s of a write")
		}
	})
}

// TestEtcdUnavailable: with the cluster down, a write fails with ErrUnavailable within the
// request timeout, and the serving snapshot stays.
func TestEtcdUnavailable(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := etcdStores(t, c, 1)[0]
	var pub published
	s.Publish(pub.publish)
	before := s.last
	c.Stop(c.Members[0])
	start := time.Now()
	_, _, err := s.PutPool(webPool("web-us"), Precondition{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with etcd down: %v, want ErrUnavailable", err)
	}
	t.Logf("write refused after %v", time.Since(start).Round(time.Millisecond))
	if _, diags := s.Load(); !diags.HasErrors() {
		t.Error("a Load with etcd down succeeded")
	}
	if s.last != before || len(pub.snaps) != 0 {
		t.Error("an unavailable etcd changed the serving snapshot")
	}
}

// TestEtcdCache: a node keeps the documents it publishes in a local file; a node started
// while etcd is down serves them, says so, and stops saying so when etcd is back.
func TestEtcdCache(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cache := filepath.Join(t.TempDir(), "policy.cache")
	first := etcdStores(t, c, 1)[0]
	first.KeepCache(cache, func(err error) { t.Error(err) })
	if _, _, err := first.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if docs, _, err := readCache(cache); err == nil && docs[docName("pool", "web-us")] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache was not written within 10s")
		}
	}
	c.Stop(c.Members[0])

	b, err := NewEtcdBackend(EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/test/" + t.Name() + "/", RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	second, err := OpenBackend(first.policyPath, b)
	if err != nil {
		t.Fatal(err)
	}
	second.KeepCache(cache, nil)
	snap, diags := second.Load()
	if diags.HasErrors() || snap.PoolByName["web-us"] == nil {
		t.Fatalf("load with etcd down: %v", diags)
	}
	if second.FromCache().IsZero() || len(diags) == 0 || diags[len(diags)-1].Summary != "Serving the cached policy" {
		t.Errorf("the cached policy is not said: from cache %v, diags %v", second.FromCache(), diags)
	}
	if _, _, err := second.PutPool(webPool("web-eu"), Precondition{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("write with etcd down: %v, want ErrUnavailable", err)
	}
	c.Restart(c.Members[0])
	if _, diags := second.Load(); diags.HasErrors() {
		t.Fatalf("load once etcd is back: %v", diags)
	}
	if !second.FromCache().IsZero() {
		t.Error("still from the cache once etcd is back")
	}
}
