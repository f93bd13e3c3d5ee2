package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// roundTrip writes p through s, then opens a fresh store on the same folder and checks
// that it reads p back as s stored it; it returns that store's snapshot and p's document.
func roundTrip(t *testing.T, s *Store, dir string, p api.Pool) (*policy.Snapshot, string) {
	t.Helper()
	stored, _, err := s.PutPool(p, Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "policy.managed", "pool-"+p.Name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(filepath.Join(dir, "policy.hcl"), "")
	if err != nil {
		t.Fatal(err)
	}
	snap, diags := s2.Load()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, err := s2.GetPool(p.Name); err != nil || !reflect.DeepEqual(got, stored) {
		t.Fatalf("reloaded pool = %+v (%v), want %+v", got, err, stored)
	}
	return snap, string(data)
}

// TestLoadBlockRoundTrip: a pool's load object is written as the document's load block,
// read back equal by a fresh store on the same folder, and compiled into the snapshot.
func TestLoadBlockRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	p := webPool("app")
	p.Load = &api.Load{Metric: "active_connections", Labels: map[string]string{"listener": "public", "app.kubernetes.io/name": "x${y}"},
		Port: intp(9100), Path: "/m", Interval: "3s", Timeout: "1s"}
	snap, data := roundTrip(t, s, dir, p)
	if !strings.Contains(data, "\n  load {\n") || !strings.Contains(data, `"x$${y}"`) {
		t.Errorf("document has no escaped load block:\n%s", data)
	}
	l := snap.PoolByName["app"].Load
	if l == nil || l.Type != "prometheus" || l.Port != 9100 || l.Labels["app.kubernetes.io/name"] != "x${y}" {
		t.Errorf("compiled load = %+v", l)
	}
}

// TestColdStartRoundTrip: a pool's cold_start object is written as the document's
// cold_start block, read back equal by a fresh store, and compiled into the snapshot; a
// bad value is refused at its JSON path.
func TestColdStartRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	p := webPool("fn")
	p.ColdStart = &api.ColdStart{Timeout: "20s", IdleAfter: "30m"}
	snap, data := roundTrip(t, s, dir, p)
	if !strings.Contains(data, "\n  cold_start {\n") {
		t.Errorf("document has no cold_start block:\n%s", data)
	}
	if cs := snap.PoolByName["fn"].ColdStart; cs == nil || cs.Timeout.String() != "20s" || cs.IdleAfter.String() != "30m0s" || cs.IdleInterval.String() != "10m0s" {
		t.Errorf("compiled cold_start = %+v", cs)
	}
	bad := webPool("fn2")
	bad.ColdStart = &api.ColdStart{IdleAfter: "soon"}
	var ve *ValidationError
	if _, _, err := s.PutPool(bad, Precondition{}); !errors.As(err, &ve) || ve.Field != "cold_start.idle_after" {
		t.Errorf("bad idle_after: %v, want a validation error at cold_start.idle_after", err)
	}
}
