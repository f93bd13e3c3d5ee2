package store

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/policy"
)

// PushPolicy makes files the operator's policy kept in etcd (PREFIX policy/NAME, NAME
// each file's base name), replacing the whole set: files it lacks are removed. It
// validates the policy the nodes that read their operator's files from etcd would then
// compile (these files and the managed documents, under their keys' names), with the
// same loader, and writes nothing when it has an error: the diagnostics name the keys,
// which ToLocal maps back to the files. The write is one transaction, conditional on
// the documents it validated against, like any other write.
func (s *Store) PushPolicy(files []policy.File) (*policy.Snapshot, hcl.Diagnostics, error) {
	if _, ok := s.b.(*EtcdBackend); !ok {
		return nil, nil, errors.New("push policy: the store is not on etcd")
	}
	pushed := make([]policy.File, 0, len(files))
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f.Name)
		if seen[name] {
			return nil, nil, fmt.Errorf("push policy: two files named %s", name)
		}
		seen[name] = true
		pushed = append(pushed, policy.File{Name: s.b.Path(PolicyDocs + name), Data: f.Data})
	}
	if len(pushed) >= MaxTxnChanges {
		return nil, nil, fmt.Errorf("push policy: %d files; at most %d in one push", len(pushed), MaxTxnChanges-1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for try := 0; ; try++ {
		src, err := s.read(false, true)
		if err != nil {
			return nil, nil, err
		}
		if src.cached {
			return nil, nil, fmt.Errorf("push policy: %w", ErrUnavailable)
		}
		// As a node would compile it: managed documents that do not load are left out.
		snap, diags, _ := s.loadQuarantined(&sources{opFiles: pushed, m: src.m})
		if diags.HasErrors() {
			return nil, diags, nil
		}
		changes := make([]Change, 0, len(pushed)+len(src.m.op))
		for _, f := range pushed {
			changes = append(changes, Change{Name: PolicyDocs + filepath.Base(f.Name), Data: f.Data})
		}
		for _, f := range src.m.op {
			if !seen[filepath.Base(f.Name)] {
				changes = append(changes, Change{Name: PolicyDocs + filepath.Base(f.Name)})
			}
		}
		if len(changes) > MaxTxnChanges {
			return nil, nil, fmt.Errorf("push policy: %d files to write and remove; at most %d in one push", len(changes), MaxTxnChanges)
		}
		if _, err = s.b.Apply(src.m.rev, changes); err == nil {
			s.cache = nil // the node's own Load reads what it pushed
			return snap, diags, nil
		}
		if !errors.Is(err, ErrConflict) || try == maxConflicts {
			return nil, nil, err
		}
	}
}

// ToLocal renames, in diagnostics of PushPolicy, the pushed files' keys to the files
// they came from, which are in dir.
func (s *Store) ToLocal(diags hcl.Diagnostics, dir string) {
	rename := func(r *hcl.Range) {
		if r != nil {
			if name, ok := s.nameOf(r.Filename, PolicyDocs); ok {
				r.Filename = filepath.Join(dir, name)
			}
		}
	}
	for _, d := range diags {
		rename(d.Subject)
		rename(d.Context)
	}
}
