package store

import (
	"crypto/sha256"
	"hash/maphash"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// managed is the managed documents at one revision of the backend's set, decoded. The
// store keeps the last one it read or wrote: a write decodes only the document it changes,
// and a Load only the documents whose bytes changed. A managed value is immutable once
// built; a write makes the next one with clone, which shares every shard of the maps but
// the ones it changes (copy-on-write), so that a write into a store of 20,000 documents
// copies a few hundred map entries, not 20,000. Reads (the admin API's) use it directly.
type managed struct {
	rev      int64
	docs     cow[*mdoc]  // by document name
	pools    cow[string] // pool name -> document name
	services cow[string] // service name (ServiceName form) -> document name
	bad      int         // documents that do not decode
	// op are the operator's policy files kept in the store (PolicyDocs NAME, pushed by
	// glbctl policy push), sorted by name, for a store that reads them there
	// (Source.PolicyFromEtcd); they are not managed documents.
	op []policy.File

	// The policy documents (those that decode, but the drains) as the policy compiler
	// takes them, sorted by path (docFiles): a write changes one document of thousands,
	// and sorting them all again cost it more than compiling what changed. sorted is the
	// list once made (listed). A value built by clone starts from the list of the one it
	// was cloned from (base, shared, read only) and the documents added or removed since
	// (changed, by path: the document now, nil when gone), merged in on first use
	// (fromBase; otherwise the list is made from docs).
	// Guarded by the store's mu: only writes and Loads list the documents, never reads.
	sorted   []policy.File
	listed   bool
	fromBase bool
	base     []policy.File
	changed  map[string]*mdoc
}

// mdoc is one managed document and what it decodes to.
type mdoc struct {
	data    []byte
	sum     [sha256.Size]byte // of data: the policy compiler matches and hashes by it
	path    string            // Backend.Path of its name: the file name its diagnostics carry
	kind    string            // "pool", "service" or "drains"; "" when it does not decode
	pool    api.Pool          // kind "pool", versioned
	service api.Service       // kind "service", versioned
	diags   hcl.Diagnostics
}

// decodeManaged decodes docs, the set at revision rev, reusing the entries of prev (nil
// for none) whose bytes are unchanged.
func (s *Store) decodeManaged(docs map[string][]byte, rev int64, prev *managed) *managed {
	m := &managed{rev: rev}
	all := make(map[string]*mdoc, len(docs))
	pools, services := map[string]string{}, map[string]string{}
	for name, data := range docs {
		if isPolicyDoc(name) {
			m.op = append(m.op, policy.File{Name: s.b.Path(name), Data: data, Sum: sha256.Sum256(data)})
			continue
		}
		d := (*mdoc)(nil)
		if prev != nil {
			if old, ok := prev.docs.get(name); ok && string(old.data) == string(data) {
				d = old
			}
		}
		if d == nil {
			d = s.decodeDoc(name, data)
		}
		all[name] = d
		if len(d.diags) > 0 {
			m.bad++
		}
		switch d.kind {
		case "pool":
			pools[d.pool.Name] = name
		case "service":
			services[d.service.Name] = name
		}
	}
	m.docs, m.pools, m.services = cowOf(all), cowOf(pools), cowOf(services)
	slices.SortFunc(m.op, func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) })
	return m
}

// PolicyDocs prefixes the names of the operator's policy files among a backend's
// documents (an etcd backend keeps them under PREFIX policy/): "policy/web.hcl".
const PolicyDocs = "policy/"

func isPolicyDoc(name string) bool { return strings.HasPrefix(name, PolicyDocs) }

// setOp replaces the operator's files kept in m (a managed value being built) by files.
func (m *managed) setOp(files []policy.File) {
	m.op = slices.Clone(files)
	slices.SortFunc(m.op, func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) })
}

// decodeDoc decodes one document, named name, of bytes data.
func (s *Store) decodeDoc(name string, data []byte) *mdoc {
	d := &mdoc{data: data, sum: sha256.Sum256(data), path: s.b.Path(name)}
	if name == drainsDoc {
		d.kind = "drains"
		return d
	}
	kind, raw, err := decodeDoc(d.path, data)
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

// add sets document name to d (replacing what the name held). Only on a managed value
// being built: a clone, or a new one.
func (m *managed) add(name string, d *mdoc) {
	m.remove(name)
	m.docs = m.docs.set(name, d)
	m.changedDoc(d.path, d)
	if len(d.diags) > 0 {
		m.bad++
	}
	switch d.kind {
	case "pool":
		m.pools = m.pools.set(d.pool.Name, name)
	case "service":
		m.services = m.services.set(d.service.Name, name)
	}
}

// remove drops document name, as add.
func (m *managed) remove(name string) {
	old, ok := m.docs.get(name)
	if !ok {
		return
	}
	m.docs = m.docs.del(name)
	m.changedDoc(old.path, nil)
	if len(old.diags) > 0 {
		m.bad--
	}
	switch old.kind {
	case "pool":
		if doc, _ := m.pools.get(old.pool.Name); doc == name {
			m.pools = m.pools.del(old.pool.Name)
		}
	case "service":
		if doc, _ := m.services.get(old.service.Name); doc == name {
			m.services = m.services.del(old.service.Name)
		}
	}
}

// clone is a copy to build the next value on; it shares every shard with m, and m's
// list of the policy documents. Called with the store's mu held.
func (m *managed) clone() *managed {
	c := *m
	c.base, c.fromBase, c.sorted, c.listed, c.changed = m.docFiles(), true, nil, false, nil
	return &c
}

// changedDoc notes that the document at path is now d (nil: removed), for docFiles.
func (m *managed) changedDoc(path string, d *mdoc) {
	if m.listed { // changed after it was listed: the list is the base of the next
		m.base, m.fromBase, m.sorted, m.listed = m.sorted, true, nil, false
	}
	if m.changed == nil {
		m.changed = map[string]*mdoc{}
	}
	m.changed[path] = d
}

// inPolicy reports whether a document is one of the policy's: it decodes, and it is not
// the drains.
func (d *mdoc) inPolicy() bool { return d.kind != "drains" && len(d.diags) == 0 }

// file is the document as the policy compiler takes it.
func (d *mdoc) file() policy.File { return policy.File{Name: d.path, Data: d.data, Sum: d.sum} }

// docFiles returns the policy documents as policy Files, sorted by name (path): a value
// of decodeManaged sorts them all once; one built by clone merges its changes into the
// list of the value it was cloned from, in time linear in the documents, with no name
// hashed or compared but by the merge. The result is shared: never modify it. Called
// with the store's mu held.
func (m *managed) docFiles() []policy.File {
	if m.listed {
		return m.sorted
	}
	byPath := func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) }
	var out []policy.File
	switch {
	case !m.fromBase:
		out = make([]policy.File, 0, m.docs.len())
		m.docs.each(func(_ string, d *mdoc) {
			if d.inPolicy() {
				out = append(out, d.file())
			}
		})
		slices.SortFunc(out, byPath)
	case len(m.changed) == 0:
		out = m.base
	default:
		// The changes are found in the base by binary search and the runs between them
		// copied whole: the names of the base are not read (each is a cache miss).
		base := m.base
		at := func(path string) int {
			i, _ := slices.BinarySearchFunc(base, path, func(f policy.File, p string) int { return strings.Compare(f.Name, p) })
			return i
		}
		var add []policy.File
		var drop []int // positions in base of the documents changed or removed
		for path, d := range m.changed {
			if d != nil && d.inPolicy() {
				add = append(add, d.file())
			}
			if i := at(path); i < len(base) && base[i].Name == path {
				drop = append(drop, i)
			}
		}
		slices.SortFunc(add, byPath)
		slices.Sort(drop)
		out = make([]policy.File, 0, len(base)+len(add))
		copyRun := func(lo, hi int) { // base[lo:hi] but what drop leaves out
			for len(drop) > 0 && drop[0] < hi {
				out = append(out, base[lo:drop[0]]...)
				lo, drop = drop[0]+1, drop[1:]
			}
			if lo < hi {
				out = append(out, base[lo:hi]...)
			}
		}
		prev := 0
		for _, f := range add {
			i := max(at(f.Name), prev)
			copyRun(prev, i)
			out, prev = append(out, f), i
		}
		copyRun(prev, len(base))
	}
	m.sorted, m.listed, m.fromBase, m.base, m.changed = out, true, false, nil, nil
	return out
}

// pool returns the managed pool called name, and the document that holds it.
func (m *managed) pool(name string) (api.Pool, string, bool) {
	if doc, ok := m.pools.get(name); ok {
		d, _ := m.docs.get(doc)
		return d.pool, doc, true
	}
	return api.Pool{}, "", false
}

// service returns the managed service called name (ServiceName form), and its document.
func (m *managed) service(name string) (api.Service, string, bool) {
	if doc, ok := m.services.get(name); ok {
		d, _ := m.docs.get(doc)
		return d.service, doc, true
	}
	return api.Service{}, "", false
}

// data is the bytes of document name, nil when it does not exist.
func (m *managed) data(name string) []byte {
	if d, ok := m.docs.get(name); ok {
		return d.data
	}
	return nil
}

// cowShards is the number of shards of a cow map: a write copies one, 1/64 of the map.
const cowShards = 64

// cowSeed places keys in shards; any seed does, within one process.
var cowSeed = maphash.MakeSeed()

// cow is a map of strings sharded for copy-on-write: a value is never changed, set and del
// return a new one that shares every shard but the key's. The zero value is empty.
type cow[V any] struct {
	shards *[cowShards]map[string]V
	n      int
}

// cowOf is the cow map of the entries of m.
func cowOf[V any](m map[string]V) cow[V] {
	shards := new([cowShards]map[string]V)
	for k, v := range m {
		i := shardOf(k)
		if shards[i] == nil {
			shards[i] = map[string]V{}
		}
		shards[i][k] = v
	}
	return cow[V]{shards: shards, n: len(m)}
}

func shardOf(k string) int { return int(maphash.String(cowSeed, k) % cowShards) }

func (c cow[V]) get(k string) (V, bool) {
	var zero V
	if c.shards == nil {
		return zero, false
	}
	v, ok := c.shards[shardOf(k)][k]
	return v, ok
}

// set returns c with k set to v.
func (c cow[V]) set(k string, v V) cow[V] {
	next := c.with(k)
	i := shardOf(k)
	if _, ok := next.shards[i][k]; !ok {
		next.n++
	}
	next.shards[i][k] = v
	return next
}

// del returns c without k.
func (c cow[V]) del(k string) cow[V] {
	if _, ok := c.get(k); !ok {
		return c
	}
	next := c.with(k)
	delete(next.shards[shardOf(k)], k)
	next.n--
	return next
}

// with is a copy of c whose shard of k is a copy of its own, to be changed.
func (c cow[V]) with(k string) cow[V] {
	shards := new([cowShards]map[string]V)
	if c.shards != nil {
		*shards = *c.shards
	}
	i := shardOf(k)
	if shards[i] == nil {
		shards[i] = map[string]V{}
	} else {
		shards[i] = maps.Clone(shards[i])
	}
	return cow[V]{shards: shards, n: c.n}
}

// len is the number of keys.
func (c cow[V]) len() int { return c.n }

// each calls f for every key and value, in no order.
func (c cow[V]) each(f func(string, V)) {
	if c.shards == nil {
		return
	}
	for _, sh := range c.shards {
		for k, v := range sh {
			f(k, v)
		}
	}
}
