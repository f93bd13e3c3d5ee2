package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestQuarantine: documents of the managed folder that do not load (one that does not
// decode, one with a bad address, a service over that pool) are left out, reported with
// their paths and errors, and the rest serves and takes writes; a document written again
// is back; an error in the operator's files still refuses the policy.
func TestQuarantine(t *testing.T) {
	s, dir := newStore(t)
	if _, _, err := s.PutPool(webPool("good"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	managed := DefaultManagedDir(filepath.Join(dir, "policy.hcl"))
	for name, body := range map[string]string{
		"pool-broken.hcl":               "pool \"broken\" {\n  member \"a\" {\n",
		"pool-badaddr.hcl":              "pool \"badaddr\" {\n  member \"a\" {\n    address = \"not-an-address\"\n  }\n}\n",
		"service-x.glb.example.com.hcl": "service \"x.glb.example.com\" {\n  pools = [\"badaddr\"]\n}\n",
	} {
		if err := os.WriteFile(filepath.Join(managed, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, diags := s.Load()
	if diags.HasErrors() || snap.PoolByName["good"] == nil || snap.PoolByName["op-web"] == nil || snap.PoolByName["badaddr"] != nil {
		t.Fatalf("load with broken documents: %v", diags)
	}
	q := s.Quarantined()
	if len(q) != 3 {
		t.Fatalf("quarantined %+v, want the three documents", q)
	}
	for _, d := range q {
		if !strings.HasPrefix(d.Path, managed) || d.Error == "" {
			t.Errorf("quarantined %+v: want its path and error", d)
		}
	}
	if !strings.Contains(q[0].Error, "not-an-address") {
		t.Errorf("pool-badaddr.hcl's error: %q", q[0].Error)
	}
	warned := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && d.Summary == "Managed document quarantined" {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d quarantine warnings, want 3", warned)
	}

	// Writes go on, and a document written again is back.
	if _, _, err := s.PutPool(webPool("new"), Precondition{}); err != nil {
		t.Fatalf("a write with documents in quarantine: %v", err)
	}
	fixed := webPool("badaddr")
	if _, _, err := s.PutPool(fixed, Precondition{}); err != nil {
		t.Fatalf("rewriting the quarantined pool: %v", err)
	}
	if got := s.Quarantined(); len(got) != 2 {
		t.Errorf("after rewriting badaddr the quarantine is %+v", got)
	}
	snap, diags = s.Load()
	if diags.HasErrors() || snap.PoolByName["badaddr"] == nil || len(snap.Services) != 2 || len(s.Quarantined()) != 1 {
		t.Errorf("after a reload the service over the fixed pool is back: %d services, quarantine %+v, %v", len(snap.Services), s.Quarantined(), diags)
	}

	// The operator's files are never left out.
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte("pool \"op\" {\n  member \"a\" {\n    address = \"bad\"\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, diags := s.Load(); !diags.HasErrors() {
		t.Error("an error in the operator's file was not refused")
	}
	if _, err := s.GetPool("good"); err != nil {
		t.Errorf("after the refused reload: %v", err)
	}
}
