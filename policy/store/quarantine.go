package store

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// Quarantine: a managed document that does not load (it does not decode, or the policy
// compiler reports an error in it) is left out of the policy, so that the rest keeps
// serving and accepting writes: one broken file in the managed folder, or one bad key in
// etcd, must not stop every node from starting. A Load finds them: it leaves out the
// documents that do not decode, compiles, and leaves out the documents an error names,
// again, a few times (a service over a pool left out is the next). The operator's own
// files are never left out: an error in them refuses the policy, as always. A document
// stays out until it is written again, removed, or a Load finds it loads.

// quarantined is a document left out: its content (by digest) and why.
type quarantined struct {
	sum          [sha256.Size]byte
	path, reason string
}

// maxQuarantinePasses bounds the compiles of a Load that leaves documents out.
const maxQuarantinePasses = 4

// loadQuarantined compiles src, leaving out the documents of src.m that do not load, and
// returns the snapshot, the diagnostics (a warning for each document left out) and the
// documents left out. Called with s.mu held.
func (s *Store) loadQuarantined(src *sources) (*policy.Snapshot, hcl.Diagnostics, map[string]quarantined) {
	q := map[string]quarantined{}
	src.m.docs.each(func(name string, d *mdoc) {
		if len(d.diags) > 0 {
			q[name] = quarantined{sum: d.sum, path: d.path, reason: firstError(d.diags)}
		}
	})
	var snap *policy.Snapshot
	var diags hcl.Diagnostics
	for pass := 0; ; pass++ {
		snap, diags = s.compiler.Load(s.filesWithout(src, q, nil))
		if !diags.HasErrors() || pass == maxQuarantinePasses {
			break
		}
		named := map[string]hcl.Diagnostics{}
		for _, d := range diags.Errs() {
			if hd, ok := d.(*hcl.Diagnostic); ok && hd.Subject != nil {
				if name, ok := s.docOf(src.m, hd.Subject.Filename); ok {
					named[name] = append(named[name], hd)
				}
			}
		}
		if len(named) == 0 {
			break // the operator's files: the policy is refused
		}
		for name, ds := range named {
			d, _ := src.m.docs.get(name)
			q[name] = quarantined{sum: d.sum, path: d.path, reason: firstError(ds)}
		}
	}
	if diags.HasErrors() {
		return nil, diags, nil
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Managed document quarantined",
			Detail: fmt.Sprintf("%s does not load and is left out of the policy until it is written again, removed or loads: %s", q[name].path, q[name].reason)})
	}
	return snap, diags, q
}

// docOf is the name of the managed document at path, if path is one of m's.
func (s *Store) docOf(m *managed, path string) (string, bool) {
	name, ok := s.nameOf(path, "")
	if !ok {
		return "", false
	}
	_, ok = m.docs.get(name)
	return name, ok
}

func firstError(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			if d.Subject != nil {
				return fmt.Sprintf("%s:%d:%d: %s: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail)
			}
			return d.Summary + ": " + d.Detail
		}
	}
	return ""
}

// Quarantined lists the managed documents left out of the serving policy, by path. It
// takes no lock (the daemon asks while holding its own, which a publication under the
// store's lock takes too).
func (s *Store) Quarantined() []api.QuarantinedDoc {
	if l := s.quarantined.Load(); l != nil {
		return slices.Clone(*l)
	}
	return nil
}

// setQuarantine makes q the quarantine, and what Quarantined lists. Called with s.mu held.
func (s *Store) setQuarantine(q map[string]quarantined) {
	s.quarantine = q
	out := make([]api.QuarantinedDoc, 0, len(q))
	for _, d := range q {
		out = append(out, api.QuarantinedDoc{Path: d.path, Error: d.reason})
	}
	slices.SortFunc(out, func(a, b api.QuarantinedDoc) int { return strings.Compare(a.Path, b.Path) })
	s.quarantined.Store(&out)
}

// pruneQuarantine forgets the documents of the quarantine that m no longer holds as they
// were (written again, or removed). Called with s.mu held.
func (s *Store) pruneQuarantine(m *managed) {
	var kept map[string]quarantined
	for name, q := range s.quarantine {
		if d, ok := m.docs.get(name); ok && d.sum == q.sum {
			if kept == nil {
				kept = map[string]quarantined{}
			}
			kept[name] = q
		}
	}
	if len(kept) != len(s.quarantine) {
		s.setQuarantine(kept)
	}
}
