package store

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// Store is the policy as the daemon loads it (the operator's files plus the managed
// documents) and as the admin API edits it (the managed documents only). Reads are served
// from the objects of the last successful Load or write; writes re-read everything,
// validate the would-be policy whole, persist, and publish the snapshot that validated
// them.
type Store struct {
	policyPath string
	b          Backend
	opInStore  bool     // the operator's files are b's documents too (PolicyDocs), not policyPath's
	op         Operator // where the operator's files come from when not policyPath nor b (nil: neither)

	mu       sync.Mutex    // serialises writers, Load and publish within this process
	qmu      sync.Mutex    // guards queue
	queue    []*queued     // writes waiting for s.mu (write)
	enqueued chan struct{} // signalled (coalesced) by every write that queues
	groups   [8]int        // the sizes of the last groups committed, a ring (guarded by mu)
	ngroups  int
	grouped  time.Time // when the last group was committed (guarded by mu)
	stats    struct{ writes, commits atomic.Uint64 }
	compiler policy.Compiler // compiles only what changed since its last Load (guarded by mu)
	publish  Publish         // nil: nothing is published (glbctl, tests)
	last     *policy.Snapshot
	lastOp   uint64   // declKey of the operator's files last published
	cache    *managed // the managed documents as last read or written; nil: read them
	objects  atomic.Pointer[objects]
	drains   atomic.Pointer[drainSet]
	watches  []*fileWatch // running Watches, told of every snapshot published (watch.go)
	// quarantine holds the managed documents left out of the serving policy because they
	// do not load, by name (quarantine.go).
	quarantine  map[string]quarantined
	quarantined atomic.Pointer[[]api.QuarantinedDoc] // the same, as Quarantined lists it

	// The local cache of the managed documents (cache.go); cachePath "" keeps none.
	cachePath  string
	cacheKick  chan struct{}
	cacheErr   func(error)
	cacheSaved time.Time // when cacheWriter last wrote (its own)
	fromCache  atomic.Pointer[time.Time]

	// decl caches policy.Declared for the operator's files (guarded by mu): every API
	// write reads them again, and they seldom change. Keyed by a hash of their names and
	// contents.
	decl struct {
		seed           maphash.Seed
		key            uint64
		ok             bool
		pools, service []string
	}
}

// Publish installs what the store compiled and holds: a snapshot and the drains in force.
// The store calls it with its lock held, after every Load and every write, so snapshots are
// installed in the order they were compiled; a drain write publishes the last snapshot
// again with the new drains. An error refuses the snapshot (a write is then stored but not
// serving: ErrNotServing).
type Publish func(snap *policy.Snapshot, drains []api.Drain) error

// objects is what reads see: every pool and service of the last good policy, the
// operator's as described for the operator's files of key opKey (a write that leaves those
// files alone describes them again for nothing) and the managed ones.
type objects struct {
	opKey uint64
	op    *opView
	m     *managed
}

// opView describes the operator's pools and services as the API shows them, built at the
// first read: describing 10,000 of them (each with its version hash) is a fifth of a
// start's work, and most nodes' APIs are read seldom, if at all.
type opView struct {
	mu       sync.Mutex
	snap     *policy.Snapshot // to describe them from; nil once built
	files    []policy.File    // the operator's files, whose objects these are
	pools    map[string]api.Pool
	services map[string]api.Service
}

// get returns the operator's objects, describing them on the first call; none before
// the first Load (o nil).
func (o *opView) get() (map[string]api.Pool, map[string]api.Service) {
	if o == nil {
		return nil, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.snap == nil {
		return o.pools, o.services
	}
	op := make(map[string]bool, len(o.files))
	for _, f := range o.files {
		op[f.Name] = true
	}
	o.pools, o.services = map[string]api.Pool{}, map[string]api.Service{}
	for _, p := range o.snap.Pools {
		if op[p.File] {
			o.pools[p.Name] = poolVersion(poolFrom(p), false)
		}
	}
	for _, sv := range o.snap.Services {
		if op[sv.File] {
			o.services[api.ServiceName(sv.Name)] = serviceVersion(serviceFrom(sv), false)
		}
	}
	o.snap, o.files = nil, nil
	return o.pools, o.services
}

// renew points a view not built yet at snap, compiled from the same operator's files,
// so that it does not keep an older snapshot alive.
func (o *opView) renew(snap *policy.Snapshot) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.snap != nil {
		o.snap = snap
	}
}

// sources is what one write or Load compiles: the operator's files and the managed
// documents.
type sources struct {
	opFiles    []policy.File
	opPools    map[string]bool // pool names the operator's files declare (writes only)
	opServices map[string]bool // service names (ServiceName form) they declare (writes only)
	m          *managed
	cached     bool // m comes from the local cache: the backend was unavailable
}

// maxConflicts bounds the retries of a write whose documents moved under it (another
// node's write): each retry reads them again and checks the write anew.
const maxConflicts = 8

// DefaultManagedDir is the managed folder for a policy path: beside it, named after it
// ("examples/policy" and "examples/policy.hcl" both give "examples/policy.managed"). It is
// not inside a policy directory because policy directories are the operator's and are
// read without recursion.
func DefaultManagedDir(policyPath string) string {
	return strings.TrimSuffix(filepath.Clean(policyPath), ".hcl") + ".managed"
}

// DefaultCacheFile is the local cache of a node on etcd (KeepCache): beside the policy,
// named after it ("examples/policy" gives "examples/policy.cache").
func DefaultCacheFile(policyPath string) string {
	return strings.TrimSuffix(filepath.Clean(policyPath), ".hcl") + ".cache"
}

// Open opens the store of a policy path (a .hcl file or a directory of them) with its
// managed documents in managedDir ("" = DefaultManagedDir), created if missing. It does
// not load the policy: call Load.
func Open(policyPath, managedDir string) (*Store, error) {
	if managedDir == "" {
		managedDir = DefaultManagedDir(policyPath)
	}
	b, err := NewDirBackend(managedDir)
	if err != nil {
		return nil, err
	}
	return OpenBackend(policyPath, b)
}

// Close releases the backend (an etcd client) and stops the cache writer; the store
// serves nothing afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cacheKick != nil {
		close(s.cacheKick)
		s.cacheKick = nil
	}
	if c, ok := s.b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Backend is where the store keeps the managed documents.
func (s *Store) Backend() Backend { return s.b }

// Publish sets where the store publishes its snapshots and drains (see Publish). Call it
// before the first Load.
func (s *Store) Publish(fn Publish) { s.publish = fn }

// Source says where a store finds the managed documents: in etcd when Etcd has endpoints
// (the documents a cluster shares), else in the managed folder.
type Source struct {
	// ManagedDir is the folder ("" = DefaultManagedDir of the policy path).
	ManagedDir string
	// Etcd is the cluster's etcd.
	Etcd EtcdConfig
	// PolicyFromEtcd reads the operator's policy files from etcd too (PREFIX policy/, as
	// glbctl policy push put them) instead of the policy path, which is then "".
	PolicyFromEtcd bool
	// Cache, with etcd, is the local file of KeepCache ("" keeps none); CacheError hears
	// of a write of it that failed.
	Cache      string
	CacheError func(error)
	// ReadOnly, without etcd, never writes the managed folder nor creates it
	// (OpenReadOnly): for a node without a write API, on a read-only file system.
	ReadOnly bool
	// Operator, when set, gives the operator's files (a policy fetched from a URL)
	// instead of the policy path, which is then "". Without etcd the managed documents
	// are then in ManagedDir, which must be given, or, ReadOnly, there are none.
	Operator Operator
}

// Operator is a source of the operator's files other than a path or etcd: a policy
// fetched from a URL (package fetch).
type Operator interface {
	// Files returns the operator's files, sorted by name. fresh (a Load: the start, a
	// reload) fetches them again and returns the error of a fetch that failed; without
	// it (a write) the files last fetched do.
	Files(fresh bool) ([]policy.File, error)
	// Changed receives, coalesced, when Files(true) would return new files.
	Changed() <-chan struct{}
	// Name prefixes the names of the files, which are on no file system.
	Name() string
	// ReadFile reads a file the operator's files name (a zone file).
	ReadFile(name string) ([]byte, error)
}

// OpenSource opens the store of a policy path with its managed documents where src says.
func OpenSource(policyPath string, src Source) (*Store, error) {
	if src.Operator != nil {
		return openOperator(policyPath, src)
	}
	if len(src.Etcd.Endpoints) == 0 {
		if src.ReadOnly {
			return OpenReadOnly(policyPath, src.ManagedDir)
		}
		return Open(policyPath, src.ManagedDir)
	}
	b, err := NewEtcdBackend(src.Etcd)
	if err != nil {
		return nil, err
	}
	if src.PolicyFromEtcd != (policyPath == "") {
		b.Close()
		return nil, errors.New("open policy: the operator's files come from a policy path or from etcd, one of the two")
	}
	s, err := OpenBackend(policyPath, b)
	if err != nil {
		b.Close()
		return nil, err
	}
	s.opInStore = src.PolicyFromEtcd
	if src.Cache != "" {
		s.KeepCache(src.Cache, src.CacheError)
	}
	return s, nil
}

// openOperator is OpenSource for the operator's files of src.Operator.
func openOperator(policyPath string, src Source) (*Store, error) {
	if policyPath != "" || src.PolicyFromEtcd {
		return nil, errors.New("open policy: the operator's files come from one place: a path, etcd or a URL")
	}
	var b Backend
	switch {
	case len(src.Etcd.Endpoints) > 0:
		eb, err := NewEtcdBackend(src.Etcd)
		if err != nil {
			return nil, err
		}
		b = eb
	case src.ManagedDir == "" && src.ReadOnly:
		b = &StaticBackend{Where: "(no managed folder)"}
	case src.ManagedDir == "":
		return nil, errors.New("open policy: a policy from a URL keeps the API's objects in a -managed-dir or in etcd: give one")
	default:
		var err error
		if src.ReadOnly {
			b, err = readOnlyBackend(src.ManagedDir)
		} else {
			b, err = NewDirBackend(src.ManagedDir)
		}
		if err != nil {
			return nil, err
		}
	}
	s := makeStore("", b)
	s.op = src.Operator
	s.compiler.ReadFile = src.Operator.ReadFile
	if src.Cache != "" && len(src.Etcd.Endpoints) > 0 {
		s.KeepCache(src.Cache, src.CacheError)
	}
	return s, nil
}

// OpenBackend opens a store whose managed documents live in b. An empty policyPath is
// a store whose operator's files are b's too (Source.PolicyFromEtcd).
func OpenBackend(policyPath string, b Backend) (*Store, error) {
	if policyPath == "" {
		if _, ok := b.(*EtcdBackend); !ok {
			return nil, errors.New("open policy: no policy path")
		}
		s := makeStore(policyPath, b)
		s.opInStore = true
		return s, nil
	}
	if _, err := os.Stat(policyPath); err != nil {
		return nil, fmt.Errorf("open policy: %w", err)
	}
	return makeStore(policyPath, b), nil
}

func makeStore(policyPath string, b Backend) *Store {
	s := &Store{policyPath: policyPath, b: b, enqueued: make(chan struct{}, 1)}
	s.decl.seed = maphash.MakeSeed()
	s.objects.Store(&objects{m: &managed{}})
	s.drains.Store(&drainSet{})
	return s
}

// Load reads the operator's files and the managed documents, compiles them with
// the policy compiler, the one loader and validator for files and API alike, and publishes the
// snapshot. On success the store's objects (what the API reads) and its drains are
// refreshed; on error the snapshot is nil, nothing is published and the objects are
// unchanged. When neither the operator's files nor the managed documents changed since
// the last publication (the backend's revision says so), the serving snapshot is returned
// and nothing is compiled again. The daemon calls it at start and on every reload
// (SIGHUP, a change of the files or of the documents).
func (s *Store) Load() (*policy.Snapshot, hcl.Diagnostics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, err := s.read(false, false)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read policy", Detail: err.Error()}}
	}
	if s.last != nil && src.m == s.cache && s.declKey(src.opFiles) == s.lastOp {
		s.fromCache.Store(nil) // the backend answered: what serves is what it holds
		return s.last, nil
	}
	snap, diags, q := s.loadQuarantined(src)
	if diags.HasErrors() {
		return nil, diags
	}
	ds, err := decodeDrains(src.m.data(drainsDoc))
	if err != nil {
		ds = s.drains.Load()
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Drains not loaded",
			Detail: fmt.Sprintf("%s: %v; the previous drains stay in force.", s.b.Path(drainsDoc), err)})
	}
	if err := s.publishLocked(snap, ds); err != nil {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Snapshot refused", Detail: err.Error()})
	}
	s.cache, s.lastOp = src.m, s.declKey(src.opFiles)
	s.setQuarantine(q)
	s.drains.Store(ds)
	s.remember(src.opFiles, snap)
	s.setObjects(snap, src)
	if src.cached {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Serving the cached policy",
			Detail: fmt.Sprintf("The store is unavailable; the managed objects come from %s until it is back.", s.cachePath)})
	} else {
		s.fromCache.Store(nil)
		s.saveCache()
	}
	return snap, diags
}

// publishLocked hands snap and the drains of ds to the publisher and remembers snap as the
// one serving. Called with s.mu held.
func (s *Store) publishLocked(snap *policy.Snapshot, ds *drainSet) error {
	if s.publish != nil {
		if err := s.publish(snap, ds.list()); err != nil {
			return err
		}
	}
	s.last = snap
	s.watchSnapshot(snap)
	return nil
}

// declared returns the pools and services the operator's files declare. Called with s.mu
// held.
// held. A write after a Load of the same files finds them in the cache that Load filled
// from its snapshot (remember); only files changed since cost a parse.
func (s *Store) declared(files []policy.File) (pools, services []string) {
	if key := s.declKey(files); !s.decl.ok || s.decl.key != key {
		s.decl.pools, s.decl.service = policy.Declared(files)
		s.decl.key, s.decl.ok = key, true
	}
	return s.decl.pools, s.decl.service
}

// remember fills the declared cache for the operator's files from snap, which Load just
// compiled from them (and the managed documents), so that a reload parses them once.
func (s *Store) remember(files []policy.File, snap *policy.Snapshot) {
	op := make(map[string]bool, len(files))
	for _, f := range files {
		op[f.Name] = true
	}
	var pools, services []string
	for _, p := range snap.Pools {
		if op[p.File] {
			pools = append(pools, p.Name)
		}
	}
	for _, sv := range snap.Services {
		if op[sv.File] {
			services = append(services, sv.Name)
		}
	}
	s.decl.pools, s.decl.service = pools, services
	s.decl.key, s.decl.ok = s.declKey(files), true
}

// declKey hashes the files' names and contents.
func (s *Store) declKey(files []policy.File) uint64 {
	var h maphash.Hash
	h.SetSeed(s.decl.seed)
	for _, f := range files {
		h.WriteString(f.Name)
		h.WriteByte(0)
		h.Write(f.Data)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// read gathers the operator's files and the managed documents, and with declared which
// pools and services the operator's files declare (writes need it; Load learns it from
// the snapshot it compiles, see remember). The managed documents come from the cache when
// the backend's revision says they have not moved (always for a write, whose commit
// checks the revision), else from the backend; fresh makes a write read them again.
func (s *Store) read(declared, fresh bool) (*sources, error) {
	src := &sources{opPools: map[string]bool{}, opServices: map[string]bool{}}
	var err error
	switch {
	case s.op != nil:
		if src.opFiles, err = s.op.Files(!declared); err != nil {
			return nil, err
		}
	case !s.opInStore:
		if src.opFiles, err = policy.ReadPath(s.policyPath); err != nil {
			return nil, err
		}
	}
	if src.m, err = s.managedDocs(declared, fresh); err != nil {
		if declared {
			return nil, err
		}
		if src.m, err = s.fallback(err); err != nil {
			return nil, err
		}
		src.cached = true
	}
	if s.opInStore {
		src.opFiles = src.m.op // read with the documents, at their revision
	}
	if declared {
		pools, services := s.declared(src.opFiles)
		for _, p := range pools {
			src.opPools[p] = true
		}
		for _, sv := range services {
			src.opServices[api.ServiceName(sv)] = true
		}
	}
	return src, nil
}

// managedDocs returns the managed documents: the cache, when a write may use it (forWrite
// and not fresh: the commit will catch a move) or when the backend's revision is still the
// cache's (a backend with revisions), else the backend's, decoded where they changed.
func (s *Store) managedDocs(forWrite, fresh bool) (*managed, error) {
	if c := s.cache; c != nil && !fresh {
		if forWrite {
			return c, nil
		}
		if rev, err := s.b.Rev(); err == nil && rev != 0 && rev == c.rev {
			return c, nil
		}
	}
	docs, rev, err := s.b.ReadAll()
	if err != nil {
		return nil, err
	}
	return s.decodeManaged(docs, rev, s.cache), nil
}

// files is the policy's sources: the operator's files, then the managed documents (the
// drains are not policy), but those of the quarantine.
func (s *Store) files(src *sources) []policy.File {
	return s.filesWithout(src, s.quarantine, nil)
}

// filesWithout is files, leaving out the documents of q (as they were when left out),
// except those a write is making (keep). The files come sorted by name, the operator's
// merged with the managed documents (docFiles), so that the compiler need not sort them.
func (s *Store) filesWithout(src *sources, q map[string]quarantined, keep map[string]bool) []policy.File {
	docs := src.m.docFiles()
	var out map[string][sha256.Size]byte // paths left out, with the digest they were left out at
	for name, qd := range q {
		if !keep[name] {
			if out == nil {
				out = make(map[string][sha256.Size]byte, len(q))
			}
			out[qd.path] = qd.sum
		}
	}
	var extra []policy.File // documents that do not decode, which a write is making
	for name := range keep {
		if d, ok := src.m.docs.get(name); ok && d.kind != "drains" && len(d.diags) > 0 {
			extra = append(extra, d.file())
		}
	}
	files := make([]policy.File, 0, len(src.opFiles)+len(docs)+len(extra))
	if len(out) > 0 {
		kept := make([]policy.File, 0, len(docs))
		for _, f := range docs {
			if sum, ok := out[f.Name]; !ok || sum != f.Sum {
				kept = append(kept, f)
			}
		}
		docs = kept
	}
	// Each operator's file goes where a binary search puts it, and the runs of documents
	// between are copied whole, their names unread.
	prev := 0
	for _, f := range src.opFiles {
		i, _ := slices.BinarySearchFunc(docs, f.Name, func(d policy.File, n string) int { return strings.Compare(d.Name, n) })
		i = max(i, prev)
		files = append(append(files, docs[prev:i]...), f)
		prev = i
	}
	files = append(files, docs[prev:]...)
	if len(extra) > 0 { // never from the API's own writes, which decode
		files = append(files, extra...)
		slices.SortStableFunc(files, func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) })
	}
	return files
}

// setObjects shows the objects of a validated snapshot to reads: the operator's, described
// from snap, and the managed ones of src.
func (s *Store) setObjects(snap *policy.Snapshot, src *sources) {
	prev := s.objects.Load()
	v := &objects{opKey: s.declKey(src.opFiles), op: prev.op, m: src.m}
	if v.opKey != prev.opKey || v.op == nil {
		v.op = &opView{snap: snap, files: src.opFiles}
	} else {
		v.op.renew(snap)
	}
	s.objects.Store(v)
}

// poolFrom describes an operator's pool as the API shows it: its compiled values,
// defaults included, its load block too. Member-specific check overrides are not shown.
func poolFrom(p *policy.Pool) api.Pool {
	out := api.Pool{Name: p.Name, Region: p.Region, Members: []api.Member{}, Checks: []api.Check{}}
	if p.HasLocation {
		out.Location = []float64{p.Lat, p.Lon}
		if p.Bias != 0 {
			b := p.Bias
			out.Bias = &b
		}
	}
	if p.HasMethod {
		out.Method = p.Method.String()
	}
	switch {
	case p.MinHealthyPercent > 0:
		out.MinHealthy = api.MinHealthy(strconv.Itoa(p.MinHealthyPercent) + "%")
	case p.MinHealthy != 1:
		out.MinHealthy = api.MinHealthy(strconv.Itoa(p.MinHealthy))
	}
	out.UnknownIs = p.UnknownIs.String()
	if p.Port > 0 {
		out.Port = intp(int(p.Port))
	}
	for _, m := range p.Members {
		mm := api.Member{Name: m.Name, Host: strings.TrimSuffix(m.Host, "."), Weight: intp(int(m.Weight))}
		if m.Port != p.Port {
			mm.Port = intp(int(m.Port)) // the member's own port (the compiled one is the pool's otherwise)
		}
		if m.Addr.IsValid() {
			mm.Address = m.Addr.String()
		}
		out.Members = append(out.Members, mm)
	}
	for _, c := range p.Checks {
		cc := api.Check{Name: c.Name, Type: c.Type, Port: intp(c.Port), Interval: c.Interval.String(),
			Timeout: c.Timeout.String(), Rise: intp(c.Rise), Fall: intp(c.Fall), Method: c.Method, Path: c.Path,
			Host: c.Host, Headers: c.Headers, ExpectBody: c.ExpectBody, ExpectBodyRegexp: c.ExpectBodyRegexp,
			ServerName: c.ServerName, Insecure: trueOrNil(c.Insecure), FollowRedirects: trueOrNil(c.FollowRedirects), Send: c.Send,
			Expect: c.Expect, QName: strings.TrimSuffix(c.QName, "."), QType: c.QType, ExpectRcode: c.ExpectRcode,
			ExpectAnswer: c.ExpectAnswer}
		for _, r := range c.ExpectStatus {
			if r.Lo == r.Hi {
				cc.ExpectStatus = append(cc.ExpectStatus, strconv.Itoa(r.Lo))
			} else {
				cc.ExpectStatus = append(cc.ExpectStatus, fmt.Sprintf("%d-%d", r.Lo, r.Hi))
			}
		}
		out.Checks = append(out.Checks, cc)
	}
	out.Load = loadFrom(p.Load)
	if cs := p.ColdStart; cs != nil {
		out.ColdStart = &api.ColdStart{Timeout: cs.Timeout.String(), IdleAfter: cs.IdleAfter.String(), IdleInterval: cs.IdleInterval.String()}
	}
	return out
}

// loadFrom describes an operator's load block with its compiled values (the pool's, not a
// member's own port).
func loadFrom(l *policy.LoadSignal) *api.Load {
	if l == nil {
		return nil
	}
	return &api.Load{Type: l.Type, Metric: l.Metric, Labels: l.Labels, Field: l.Field, Port: intp(l.Port),
		Path: l.Path, Scheme: l.Scheme, Interval: l.Interval.String(), Timeout: l.Timeout.String()}
}

// trueOrNil shows a compiled boolean attribute as the operator can have written it: set
// when true, left out when false (its default).
func trueOrNil(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// serviceFrom describes an operator's service as the API shows it, a geo service's rules
// included.
func serviceFrom(s *policy.Service) api.Service {
	out := api.Service{Name: api.ServiceName(s.Name), Policy: s.Method.String(), Pools: []string{},
		TTL: intp(int(s.TTL)), Answers: intp(s.Answers), WhenAllDown: s.WhenAllDown.String(),
		HashPrefixV4: intp(s.HashPrefix4), HashPrefixV6: intp(s.HashPrefix6)}
	if s.Steering != policy.SteerNone {
		out.Policy, out.Method = s.Steering.String(), s.Method.String()
	}
	for _, p := range s.Pools {
		out.Pools = append(out.Pools, p.Name)
	}
	if s.Fallback != nil {
		out.Fallback = s.Fallback.Name
	}
	if rules, defaults := s.GeoRules(); rules != nil {
		g := &api.Geo{Rules: []api.GeoRule{}, DefaultPools: defaults}
		for _, r := range rules {
			gr := api.GeoRule{Networks: r.Networks, Countries: r.Countries, Continents: r.Continents, Pools: r.Pools}
			if r.ASNs != nil {
				gr.ASNs = make([]int64, len(r.ASNs))
				for i, a := range r.ASNs {
					gr.ASNs[i] = int64(a)
				}
			}
			g.Rules = append(g.Rules, gr)
		}
		out.Geo = g
	}
	return out
}

// nameOf is the name of the document that the backend calls path, without the within
// prefix ("" for the managed documents, PolicyDocs for the operator's files in the
// store), when path is one: Path(within+NAME), NAME without a separator.
func (s *Store) nameOf(path, within string) (string, bool) { return s.namer(within)(path) }

// namer is nameOf for one within, its prefix worked out once: for a loop over thousands
// of paths.
func (s *Store) namer(within string) func(path string) (string, bool) {
	prefix := strings.TrimSuffix(s.b.Path(within+"x"), "x")
	return func(path string) (string, bool) {
		name, ok := strings.CutPrefix(path, prefix)
		return name, ok && name != "" && !strings.ContainsAny(name, `/\`)
	}
}

// docName is the managed document of an object (api.DocName).
func docName(kind, name string) string { return api.DocName(kind, name) }

// checkName refuses names no document could carry (api.NameProblem, which the Terraform
// provider checks at plan time too).
func checkName(kind, name string) error {
	if why := api.NameProblem(kind, name); why != "" {
		return invalid("name", "%s", why)
	}
	return nil
}

// Precondition is a write's condition on the object's current state.
type Precondition struct {
	// IfMatch, when set, must equal the current version ("*": the object must exist).
	IfMatch string
	// IfNoneMatch "*" makes the write create-only: ErrPreconditionFailed if it exists.
	IfNoneMatch string
	// Create makes the write create-only with ErrExists (POST) instead.
	Create bool
}

func (pre Precondition) check(exists bool, version string) error {
	switch {
	case pre.Create && exists:
		return ErrExists
	case pre.IfNoneMatch == "*" && exists:
		return fmt.Errorf("if-none-match: the object exists: %w", ErrPreconditionFailed)
	case pre.IfMatch == "":
		return nil
	case !exists:
		return fmt.Errorf("if-match: the object does not exist: %w", ErrPreconditionFailed)
	case pre.IfMatch != "*" && pre.IfMatch != version:
		return fmt.Errorf("if-match: the version is %q, not %q: %w", version, pre.IfMatch, ErrPreconditionFailed)
	}
	return nil
}

// ListPools returns every pool of the current policy, sorted by name.
func (s *Store) ListPools() []api.Pool {
	v := s.objects.Load()
	opPools, _ := v.op.get()
	out := make([]api.Pool, 0, len(opPools)+v.m.pools.len())
	for _, p := range opPools {
		out = append(out, p)
	}
	v.m.pools.each(func(name, _ string) {
		if _, op := opPools[name]; !op {
			p, _, _ := v.m.pool(name)
			out = append(out, p)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GetPool returns one pool (ErrNotFound).
func (s *Store) GetPool(name string) (api.Pool, error) {
	v := s.objects.Load()
	opPools, _ := v.op.get()
	if p, ok := opPools[name]; ok {
		return p, nil
	}
	if p, _, ok := v.m.pool(name); ok {
		return p, nil
	}
	return api.Pool{}, fmt.Errorf("pool %q: %w", name, ErrNotFound)
}

// ListServices returns every service of the current policy, sorted by name.
func (s *Store) ListServices() []api.Service {
	v := s.objects.Load()
	_, opServices := v.op.get()
	out := make([]api.Service, 0, len(opServices)+v.m.services.len())
	for _, sv := range opServices {
		out = append(out, sv)
	}
	v.m.services.each(func(name, _ string) {
		if _, op := opServices[name]; !op {
			sv, _, _ := v.m.service(name)
			out = append(out, sv)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GetService returns one service (ErrNotFound); the name is compared in ServiceName form.
func (s *Store) GetService(name string) (api.Service, error) {
	v := s.objects.Load()
	name = api.ServiceName(name)
	_, opServices := v.op.get()
	if sv, ok := opServices[name]; ok {
		return sv, nil
	}
	if sv, _, ok := v.m.service(name); ok {
		return sv, nil
	}
	return api.Service{}, fmt.Errorf("service %q: %w", name, ErrNotFound)
}

// PutPool creates or replaces a managed pool after validating the whole policy it would
// make. It returns the stored pool (with its version) and whether it was created. Errors:
// ErrReadOnly, ErrExists, ErrPreconditionFailed, *ValidationError (ErrInvalid or
// ErrUnknownRef), ErrNotServing, or an I/O or backend error.
func (s *Store) PutPool(p api.Pool, pre Precondition) (api.Pool, bool, error) {
	normalizePool(&p)
	if err := checkName("pool", p.Name); err != nil {
		return api.Pool{}, false, err
	}
	data := encodePool(p)
	_, raw, err := decodeDoc(s.b.Path(docName("pool", p.Name)), data)
	if err == nil {
		p, err = decodePool(raw)
	}
	if err != nil {
		return api.Pool{}, false, invalid("", "cannot encode the pool: %v", err)
	}
	stored := poolVersion(p, true)
	var created bool
	err = s.write(func(src *sources) (string, *mdoc, error) {
		if src.opPools[p.Name] {
			return "", nil, fmt.Errorf("pool %q: %w", p.Name, ErrReadOnly)
		}
		cur, doc, exists := src.m.pool(p.Name)
		if err := pre.check(exists, cur.Version); err != nil {
			return "", nil, fmt.Errorf("pool %q: %w", p.Name, err)
		}
		created = !exists
		if !exists {
			doc = docName("pool", p.Name)
		}
		return doc, &mdoc{data: data, kind: "pool", pool: stored}, nil
	})
	if err != nil {
		return api.Pool{}, false, err
	}
	return stored, created, nil
}

// PutService creates or replaces a managed service; as PutPool.
func (s *Store) PutService(sv api.Service, pre Precondition) (api.Service, bool, error) {
	normalizeService(&sv)
	if err := checkName("service", sv.Name); err != nil {
		return api.Service{}, false, err
	}
	data := encodeService(sv)
	_, raw, err := decodeDoc(s.b.Path(docName("service", sv.Name)), data)
	if err == nil {
		sv, err = decodeService(raw)
	}
	if err != nil {
		return api.Service{}, false, invalid("", "cannot encode the service: %v", err)
	}
	stored := serviceVersion(sv, true)
	var created bool
	err = s.write(func(src *sources) (string, *mdoc, error) {
		if src.opServices[sv.Name] {
			return "", nil, fmt.Errorf("service %q: %w", sv.Name, ErrReadOnly)
		}
		cur, doc, exists := src.m.service(sv.Name)
		if err := pre.check(exists, cur.Version); err != nil {
			return "", nil, fmt.Errorf("service %q: %w", sv.Name, err)
		}
		created = !exists
		if !exists {
			doc = docName("service", sv.Name)
		}
		return doc, &mdoc{data: data, kind: "service", service: stored}, nil
	})
	if err != nil {
		return api.Service{}, false, err
	}
	return stored, created, nil
}

// DeletePool removes a managed pool. Errors: ErrNotFound, ErrReadOnly,
// ErrPreconditionFailed, ErrReferenced (a service or fallback still names it).
func (s *Store) DeletePool(name string, pre Precondition) error {
	return s.write(func(src *sources) (string, *mdoc, error) {
		if src.opPools[name] {
			return "", nil, fmt.Errorf("pool %q: %w", name, ErrReadOnly)
		}
		cur, doc, exists := src.m.pool(name)
		if !exists {
			return "", nil, fmt.Errorf("pool %q: %w", name, ErrNotFound)
		}
		if err := pre.check(true, cur.Version); err != nil {
			return "", nil, fmt.Errorf("pool %q: %w", name, err)
		}
		return doc, nil, nil
	})
}

// DeleteService removes a managed service; as DeletePool.
func (s *Store) DeleteService(name string, pre Precondition) error {
	name = api.ServiceName(name)
	return s.write(func(src *sources) (string, *mdoc, error) {
		if src.opServices[name] {
			return "", nil, fmt.Errorf("service %q: %w", name, ErrReadOnly)
		}
		cur, doc, exists := src.m.service(name)
		if !exists {
			return "", nil, fmt.Errorf("service %q: %w", name, ErrNotFound)
		}
		if err := pre.check(true, cur.Version); err != nil {
			return "", nil, fmt.Errorf("service %q: %w", name, err)
		}
		return doc, nil, nil
	})
}

// Stats counts the store's writes since it opened: the API writes asked (each put,
// delete or drain), and the commits that wrote them to the backend (a group of
// concurrent writes is one; a conflict retried is one more).
type Stats struct{ Writes, Commits uint64 }

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.stats.writes.Load(), Commits: s.stats.commits.Load()}
}

// change decides a write against the sources it is given: the document to set (nil: to
// remove), or why the write is refused.
type change func(src *sources) (doc string, d *mdoc, err error)

// step is a decided change: document doc set to d (removed when nil).
type step struct {
	doc string
	d   *mdoc
}

// queued is a write waiting for its commit.
type queued struct {
	ch   change
	done chan error // buffered: the committer never waits on it
}

// maxGroup is the most writes committed together: one etcd transaction's worth.
const maxGroup = MaxTxnChanges

// write runs a write and returns once it is committed and served, or refused. Writes are
// committed in the order they queue; whoever holds the store's lock next takes every
// write queued and commits them together (group commit): one compile of the policy they
// make together, one backend write, one publication. Concurrent writers (Terraform
// applies ten at a time) thus share the cost of a compile, which grows with the policy,
// while a lone writer pays for one as before. When a group's policy does not validate,
// or it holds a drains write, its writes are committed one at a time instead, so that
// each gets its own verdict.
func (s *Store) write(ch change) error {
	s.stats.writes.Add(1)
	w := &queued{ch: ch, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, w)
	s.qmu.Unlock()
	select {
	case s.enqueued <- struct{}{}:
	default:
	}
	s.mu.Lock()
	group := s.gather()
	if len(group) > 0 {
		s.groups[s.ngroups%len(s.groups)] = len(group)
		s.ngroups++
	}
	for len(group) > 0 {
		n := min(len(group), maxGroup)
		if n == 1 || !s.writeGroup(group[:n]) {
			for _, w := range group[:n] {
				w.done <- s.writeOne(w.ch)
			}
		}
		group = group[n:]
	}
	s.grouped = time.Now()
	s.mu.Unlock()
	return <-w.done // ours, or another committer's, which held the lock before this one
}

// gatherFor bounds how long a committer waits for its group to fill.
const gatherFor = 5 * time.Millisecond

// gatherGap is the pause after which writers are taken to have stopped: the writers of
// a group send their next writes within milliseconds of their answers.
const gatherGap = 100 * time.Millisecond

// gather takes the writes queued. After groups of several (writers are concurrent), it
// first waits, at most gatherFor, for as many as the largest of the last groups: their
// writers are sending their next writes, and a committer that took the first alone
// would leave the others to the next commit. A lone writer, whose groups are of one,
// never waits, nor does the first write after a pause (gatherGap): the burst is over.
// Called with s.mu held.
func (s *Store) gather() []*queued {
	if want := slices.Max(s.groups[:]); want > 1 && time.Since(s.grouped) < gatherGap {
		timer := time.NewTimer(gatherFor)
		defer timer.Stop()
		for {
			s.qmu.Lock()
			n := len(s.queue)
			s.qmu.Unlock()
			if n == 0 || n >= want {
				break // committed by the one before, or full
			}
			select {
			case <-s.enqueued:
				continue
			case <-timer.C:
			}
			break
		}
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	group := s.queue
	s.queue = nil
	return group
}

// writeOne runs one write: it reads the sources, lets ch decide, and commits. When the
// backend's documents moved since they were read (another node wrote), it reads them
// again and decides again, so that preconditions and validation always hold against what
// the write replaces; a conflict that outlasts maxConflicts tries is returned. Called with
// s.mu held.
func (s *Store) writeOne(ch change) error {
	for try := 0; ; try++ {
		src, err := s.read(true, try > 0)
		if err != nil {
			return err
		}
		doc, d, err := ch(src)
		if err != nil {
			return err
		}
		next := src.m.clone()
		s.apply(next, step{doc, d})
		err = s.commit(src, next, []step{{doc, d}})
		if !errors.Is(err, ErrConflict) || try == maxConflicts {
			return err
		}
		s.cache = nil
	}
}

// writeGroup commits the writes of group together, each decided against the documents
// as the ones before it leave them, and tells each its verdict; false (nothing written,
// nothing told) when they must go one at a time. Called with s.mu held.
func (s *Store) writeGroup(group []*queued) bool {
	for try := 0; ; try++ {
		src, err := s.read(true, try > 0)
		if err != nil {
			return false // one at a time: each hears why
		}
		acc := *src
		acc.m = src.m.clone()
		refused := make([]error, len(group))
		var steps []step
		for i, w := range group {
			doc, d, err := w.ch(&acc)
			if err != nil {
				refused[i] = err
				continue
			}
			if doc == drainsDoc {
				return false
			}
			s.apply(acc.m, step{doc, d})
			steps = append(steps, step{doc, d})
		}
		if len(steps) > 0 {
			err = s.commit(src, acc.m, steps)
		}
		if errors.Is(err, ErrConflict) && try < maxConflicts {
			s.cache = nil
			continue
		}
		var ve *ValidationError
		if errors.As(err, &ve) {
			return false // which write made the policy invalid is for each alone to say
		}
		for i, w := range group {
			w.done <- cmp.Or(refused[i], err)
		}
		return true
	}
}

// apply sets st's document in m, a managed value being built.
func (s *Store) apply(m *managed, st step) {
	if st.d == nil {
		m.remove(st.doc)
		return
	}
	st.d.path, st.d.sum = s.b.Path(st.doc), sha256.Sum256(st.d.data)
	m.add(st.doc, st.d)
}

// commit validates next, the managed documents of src with steps made, persists the
// steps if the backend's documents are still those of src (else ErrConflict), publishes
// the snapshot that validated them, and shows the new objects to reads. The policy is
// compiled once: the snapshot that validated the write is the one installed. A drains
// document (a step of its own) changes no policy: the serving snapshot is published
// again with the new drains. Called with s.mu held.
func (s *Store) commit(src *sources, next *managed, steps []step) error {
	drains := len(steps) == 1 && steps[0].doc == drainsDoc
	var snap *policy.Snapshot
	if drains {
		snap = s.last
	} else {
		after := &sources{opFiles: s.opFiles(src, next), m: next}
		keep := make(map[string]bool, len(steps))
		for _, st := range steps {
			keep[st.doc] = true
		}
		var diags hcl.Diagnostics
		if snap, diags = s.compiler.Load(s.filesWithout(after, s.quarantine, keep)); diags.HasErrors() {
			st := steps[len(steps)-1]
			var data []byte
			if st.d != nil {
				data = st.d.data
			}
			ve := diagError(diags, s.b.Path(st.doc), fieldSpans(s.b.Path(st.doc), data))
			if st.d == nil && ve.kind == ErrUnknownRef {
				ve.kind = ErrReferenced // the delete would leave a dangling reference
			}
			return ve
		}
	}
	changes := make([]Change, 0, len(steps))
	at := make(map[string]int, len(steps))
	for _, st := range steps {
		c := Change{Name: st.doc}
		if st.d != nil {
			c.Data = st.d.data
		}
		if i, ok := at[st.doc]; ok {
			changes[i] = c // a later write of the same document in a group replaces it
			continue
		}
		at[st.doc] = len(changes)
		changes = append(changes, c)
	}
	var err error
	s.stats.commits.Add(1)
	if next.rev, err = s.b.Apply(src.m.rev, changes); err != nil {
		if !errors.Is(err, ErrConflict) {
			s.cache = nil // a folder may hold part of the changes: read it again
		}
		return err
	}
	s.cache = next
	s.pruneQuarantine(next)
	ds := s.drains.Load()
	if drains {
		if ds, err = decodeDrains(steps[0].d.data); err != nil {
			return err // not reached: the store wrote the document
		}
		s.drains.Store(ds)
	} else {
		s.setObjects(snap, &sources{opFiles: s.opFiles(src, next), m: next})
	}
	if snap == nil {
		return nil // nothing serves yet: the first Load publishes the drains
	}
	if err := s.publishLocked(snap, ds); err != nil {
		return fmt.Errorf("%w: %v", ErrNotServing, err)
	}
	if !drains {
		s.lastOp = s.declKey(s.opFiles(src, next))
	}
	s.saveCache()
	return nil
}

// opFiles are the operator's files of a write that makes next from src: src's, or
// next's when the store keeps them (a push changes them).
func (s *Store) opFiles(src *sources, next *managed) []policy.File {
	if s.opInStore {
		return next.op
	}
	return src.opFiles
}

// marshalDrains is drains.json: {"drains": [...]} sorted by pool and member.
func marshalDrains(ds []api.Drain) []byte {
	sortDrains(ds)
	b, _ := json.MarshalIndent(api.DrainList{Drains: ds}, "", "  ")
	return append(b, '\n')
}

func sortDrains(ds []api.Drain) {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Pool != ds[j].Pool {
			return ds[i].Pool < ds[j].Pool
		}
		return ds[i].Member < ds[j].Member
	})
}
