package store

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
)

// TestLoadBlockRoundTrip: a pool's load object is written as the document's load block,
// read back equal by a fresh store on the same folder, and compiled into the snapshot.
func TestLoadBlockRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	p := webPool("app")
	p.Load = &api.Load{Metric: "active_connections", Labels: map[string]string{"listener": "public", "app.kubernetes.io/name": "x${y}"},
		Port: intp(9100), Path: "/m", Interval: "3s", Timeout: "1s"}
	stored, _, err := s.PutPool(p, Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "policy.managed", "pool-app.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\n  load {\n") || !strings.Contains(string(data), `"x$${y}"`) {
		t.Errorf("document has no escaped load block:\n%s", data)
	}
	s2, err := Open(filepath.Join(dir, "policy.hcl"), "")
	if err != nil {
		t.Fatal(err)
	}
	snap, diags := s2.Load()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, err := s2.GetPool("app"); err != nil || !reflect.DeepEqual(got, stored) {
		t.Fatalf("reloaded pool = %+v (%v), want %+v", got, err, stored)
	}
	l := snap.PoolByName["app"].Load
	if l == nil || l.Type != "prometheus" || l.Port != 9100 || l.Labels["app.kubernetes.io/name"] != "x${y}" {
		t.Errorf("compiled load = %+v", l)
	}
}
