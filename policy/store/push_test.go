package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/etcdtest"
	"github.com/glbdns/glbdns/policy"
)

// etcdPolicyStore opens a store whose operator's files are in etcd under prefix.
func etcdPolicyStore(t *testing.T, c *etcdtest.Cluster, prefix string) *Store {
	t.Helper()
	s, err := OpenSource("", Source{Etcd: EtcdConfig{Endpoints: c.Endpoints(), Prefix: prefix, RequestTimeout: 2 * time.Second},
		PolicyFromEtcd: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPushPolicy: a policy directory pushed into etcd is what a node that reads its
// operator's files from etcd serves, the same as from a folder; a push with an error is
// refused, naming the local file, and writes nothing; a file left out of a push is gone.
func TestPushPolicy(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := "/test/" + t.Name() + "/"
	op, err := os.ReadFile("testdata/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := []policy.File{{Name: filepath.Join(dir, "policy.hcl"), Data: op},
		{Name: filepath.Join(dir, "extra.hcl"), Data: []byte("pool \"extra\" {\n  member \"a\" {\n    address = \"192.0.2.99\"\n  }\n}\n")}}

	pusher := etcdPolicyStore(t, c, prefix)
	snap, diags, err := pusher.PushPolicy(files)
	if err != nil || diags.HasErrors() || snap.PoolByName["op-web"] == nil {
		t.Fatalf("push: %v %v", err, diags)
	}
	node := etcdPolicyStore(t, c, prefix)
	served, diags := node.Load()
	if diags.HasErrors() || served.PoolByName["op-web"] == nil || served.PoolByName["extra"] == nil {
		t.Fatalf("node's load: %v", diags)
	}
	if served.Hash != snap.Hash {
		t.Errorf("the node serves hash %s, the push validated %s", served.Hash, snap.Hash)
	}
	if fromDir, _ := policy.Load([]policy.File{{Name: "policy.hcl", Data: op}}); len(served.Services) != len(fromDir.Services) {
		t.Errorf("the node serves %d services; the same file from a folder gives %d", len(served.Services), len(fromDir.Services))
	}
	// The operator's objects are read-only to the API, as from a folder.
	if _, _, err := node.PutPool(webPool("op-web"), Precondition{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("API write of the pushed pool: %v, want ErrReadOnly", err)
	}
	if _, _, err := node.PutService(api.Service{Name: "www.glb.example.com", Pools: []string{"extra"}}, Precondition{}); err != nil {
		t.Fatalf("API service over a pushed pool: %v", err)
	}

	// An error: refused with the local file's name, nothing written.
	bad := []policy.File{{Name: filepath.Join(dir, "policy.hcl"), Data: []byte(strings.Replace(string(op), `policy = "weighted"`, `policy = "nope"`, 1))},
		files[1]}
	_, diags, err = pusher.PushPolicy(bad)
	if err != nil || !diags.HasErrors() {
		t.Fatalf("bad push: %v %v, want diagnostics", err, diags)
	}
	pusher.ToLocal(diags, dir)
	if got := diags[0].Subject; got == nil || got.Filename != filepath.Join(dir, "policy.hcl") || got.Start.Line == 0 {
		t.Errorf("bad push's diagnostic at %v, want %s:line:col", got, filepath.Join(dir, "policy.hcl"))
	}
	if again, diags := node.Load(); diags.HasErrors() || again != node.last || again.PoolByName["extra"] == nil {
		t.Errorf("after a refused push the node's policy changed: %v", diags)
	}

	// A push without extra.hcl removes it; the API's service over its pool makes that
	// push invalid, so the service goes first.
	if err := node.DeleteService("www.glb.example.com", Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, diags, err := pusher.PushPolicy(files[:1]); err != nil || diags.HasErrors() {
		t.Fatalf("push of one file: %v %v", err, diags)
	}
	if after, diags := node.Load(); diags.HasErrors() || after.PoolByName["extra"] != nil || after.PoolByName["op-web"] == nil {
		t.Errorf("after pushing policy.hcl alone the node has extra: %v", diags)
	}
}

// TestPushPolicyCache: a node that reads its operator's files from etcd and starts while
// etcd is down serves them from its cache.
func TestPushPolicyCache(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := "/test/" + t.Name() + "/"
	op, err := os.ReadFile("testdata/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags, err := etcdPolicyStore(t, c, prefix).PushPolicy([]policy.File{{Name: "policy.hcl", Data: op}}); err != nil || diags.HasErrors() {
		t.Fatalf("push: %v %v", err, diags)
	}
	cache := filepath.Join(t.TempDir(), "node.cache")
	first := etcdPolicyStore(t, c, prefix)
	first.KeepCache(cache, func(err error) { t.Error(err) })
	if _, diags := first.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if docs, _, err := readCache(cache); err == nil && docs[PolicyDocs+"policy.hcl"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache did not hold the operator's file within 10s")
		}
	}
	c.Stop(c.Members[0])
	second := etcdPolicyStore(t, c, prefix)
	second.KeepCache(cache, nil)
	snap, diags := second.Load()
	if diags.HasErrors() || snap.PoolByName["op-web"] == nil || second.FromCache().IsZero() {
		t.Fatalf("load with etcd down: %v", diags)
	}
}
