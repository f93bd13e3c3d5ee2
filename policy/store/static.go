package store

import (
	"errors"
	"maps"
	"path/filepath"

	"github.com/glbdns/glbdns/api"
)

// StaticBackend is a read-only set of managed documents held in memory: what glbctl
// validate compiles the operator's files with when the documents come from a running
// node (fetched through its admin API and encoded by Documents), so that it checks the
// policy exactly as that node's store would. Apply refuses every write.
type StaticBackend struct {
	// Docs by document name ("pool-NAME.hcl", "service-NAME.hcl", "drains.json").
	Docs map[string][]byte
	// Where names the documents in diagnostics: Where/NAME.
	Where string
}

// ErrStatic is a write to a StaticBackend.
var ErrStatic = errors.New("the managed documents are a read-only copy")

// ReadAll returns a copy of the documents (revision 0).
func (b *StaticBackend) ReadAll() (map[string][]byte, int64, error) {
	return maps.Clone(b.Docs), 0, nil
}

// Apply refuses: the copy is for validation only.
func (b *StaticBackend) Apply(int64, []Change) (int64, error) { return 0, ErrStatic }

// Rev is 0: the set never changes.
func (b *StaticBackend) Rev() (int64, error) { return 0, nil }

// Path is Where/name.
func (b *StaticBackend) Path(name string) string { return filepath.Join(b.Where, name) }

// Documents encodes managed objects as the store keeps them (the API's objects written as
// HCL documents, the drains as drains.json), by document name. Objects with Managed false
// (the operator's own, which the API lists too) are left out: they are in the files.
func Documents(pools []api.Pool, services []api.Service, drains []api.Drain) map[string][]byte {
	docs := make(map[string][]byte, len(pools)+len(services)+1)
	for _, p := range pools {
		if p.Managed {
			normalizePool(&p)
			docs[docName("pool", p.Name)] = encodePool(p)
		}
	}
	for _, s := range services {
		if s.Managed {
			normalizeService(&s)
			docs[docName("service", s.Name)] = encodeService(s)
		}
	}
	if len(drains) > 0 {
		docs[drainsDoc] = marshalDrains(append([]api.Drain(nil), drains...))
	}
	return docs
}
