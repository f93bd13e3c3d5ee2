package store

import (
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
)

// managed is the managed documents at one revision of the backend's set, decoded. The
// store keeps the last one it read or wrote: a write decodes only the document it changes,
// and a Load only the documents whose bytes changed. Entries are immutable; a write works
// on a clone of the maps.
type managed struct {
	rev      int64
	docs     map[string]*mdoc  // by document name
	pools    map[string]string // pool name -> document name
	services map[string]string // service name (ServiceName form) -> document name
	bad      int               // documents that do not decode
}

// mdoc is one managed document and what it decodes to.
type mdoc struct {
	data    []byte
	kind    string      // "pool", "service" or "drains"; "" when it does not decode
	pool    api.Pool    // kind "pool", versioned
	service api.Service // kind "service", versioned
	diags   hcl.Diagnostics
}

// decodeManaged decodes docs, the set at revision rev, reusing the entries of prev (nil
// for none) whose bytes are unchanged.
func (s *Store) decodeManaged(docs map[string][]byte, rev int64, prev *managed) *managed {
	m := &managed{rev: rev, docs: make(map[string]*mdoc, len(docs)),
		pools: map[string]string{}, services: map[string]string{}}
	for name, data := range docs {
		d := (*mdoc)(nil)
		if prev != nil {
			if old := prev.docs[name]; old != nil && string(old.data) == string(data) {
				d = old
			}
		}
		if d == nil {
			d = s.decodeDoc(name, data)
		}
		m.add(name, d)
	}
	return m
}

// decodeDoc decodes one document, named name, of bytes data.
func (s *Store) decodeDoc(name string, data []byte) *mdoc {
	d := &mdoc{data: data}
	if name == drainsDoc {
		d.kind = "drains"
		return d
	}
	kind, raw, err := decodeDoc(s.b.Path(name), data)
	if err == nil {
		switch kind {
		case "pool":
			var p api.Pool
			if p, err = decodePool(raw); err == nil {
				d.kind, d.pool = kind, poolVersion(p, true)
			}
		case "service":
			var sv api.Service
			if sv, err = decodeService(raw); err == nil {
				sv.Name = api.ServiceName(sv.Name)
				d.kind, d.service = kind, serviceVersion(sv, true)
			}
		}
	}
	if err != nil {
		if diags, ok := err.(hcl.Diagnostics); ok {
			d.diags = diags
		} else {
			d.diags = hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid managed document", Detail: err.Error()}}
		}
	}
	return d
}

// add sets document name to d (replacing what the name held).
func (m *managed) add(name string, d *mdoc) {
	m.remove(name)
	m.docs[name] = d
	if len(d.diags) > 0 {
		m.bad++
	}
	switch d.kind {
	case "pool":
		m.pools[d.pool.Name] = name
	case "service":
		m.services[d.service.Name] = name
	}
}

// remove drops document name.
func (m *managed) remove(name string) {
	old := m.docs[name]
	if old == nil {
		return
	}
	delete(m.docs, name)
	if len(old.diags) > 0 {
		m.bad--
	}
	switch old.kind {
	case "pool":
		if m.pools[old.pool.Name] == name {
			delete(m.pools, old.pool.Name)
		}
	case "service":
		if m.services[old.service.Name] == name {
			delete(m.services, old.service.Name)
		}
	}
}

// clone copies the maps, so that a write can change them without touching m.
func (m *managed) clone() *managed {
	return &managed{rev: m.rev, docs: maps.Clone(m.docs), pools: maps.Clone(m.pools), services: maps.Clone(m.services), bad: m.bad}
}

// pool returns the managed pool called name.
func (m *managed) pool(name string) (api.Pool, bool) {
	if doc, ok := m.pools[name]; ok {
		return m.docs[doc].pool, true
	}
	return api.Pool{}, false
}

// service returns the managed service called name (ServiceName form).
func (m *managed) service(name string) (api.Service, bool) {
	if doc, ok := m.services[name]; ok {
		return m.docs[doc].service, true
	}
	return api.Service{}, false
}

// diags are the errors of the documents that do not decode, by document name.
func (m *managed) diags() hcl.Diagnostics {
	if m.bad == 0 {
		return nil
	}
	var out hcl.Diagnostics
	for _, name := range slices.Sorted(maps.Keys(m.docs)) {
		out = append(out, m.docs[name].diags...)
	}
	return out
}

// data is the bytes of document name, nil when it does not exist.
func (m *managed) data(name string) []byte {
	if d := m.docs[name]; d != nil {
		return d.data
	}
	return nil
}
