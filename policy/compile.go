package policy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/zones"
)

// Compiler compiles policies one after another as Load does, reusing the work of its
// last successful Load for the files whose name and contents did not change. For the
// same files Compiler.Load returns what Load returns: the same snapshot contents (pools,
// members, services, zones), the same diagnostics in the same order, the same Hash; and
// the same numbers (Member.Index, Service.Ref), but after a Load that only added pools
// or services: those keep the numbers of the last snapshot and number the new ones after
// them, where Load numbers in file order (still dense, 0..len-1). The policy store keeps
// one to compile every admin API write, which changes one document of thousands; see
// the package doc ("Compile only what changed") for what is reused and why that is safe.
//
// A Compiler is not safe for concurrent use: one goroutine at a time calls Load. The
// snapshots it returns are as immutable as Load's, and stay valid while later Loads
// run: a Load never modifies an object that an earlier snapshot holds.
//
// The zero Compiler is ready to use; its first Load compiles everything.
type Compiler struct {
	// files are the records of the files of the last successful Load without any
	// diagnostic, sorted by name; nil before one.
	files []*fileRecord
	// geo is that Load's geoip block as the steering checks of services see it.
	geo geoContext
	// sizes are that Load's snapshot's, to size the next one's maps and slices, and
	// origins its zones', in order.
	sizes   sizes
	origins []string
	// poolByName, poolRng and svcRng are that Load's maps of names, which the next
	// one may start from (prefill); poolByName is its snapshot's, never modified.
	poolByName map[string]*Pool
	poolRng    map[string]*hcl.Range
	svcRng     map[string]*hcl.Range
	// members and services are that Load's snapshot's Members and Services, which the
	// next one extends when it only adds (see stableMembers and stableRefs).
	members  []*Member
	services []*Service
	// pos is the position of each of files by name, for sort, made when it is first
	// needed after files changed: only for files that do not come sorted.
	pos map[string]int
	// stats describe the last Load, for tests and benchmarks.
	stats compileStats

	// ReadFile, when set, reads the zone files that zone blocks name, instead of the file
	// system: the operator's files fetched from a URL carry theirs in memory (package
	// fetch). Their $INCLUDE directives are then refused, for there is no folder to
	// confine them to.
	ReadFile func(name string) ([]byte, error)
}

// compileStats count what a Load compiled and what it took from records.
type compileStats struct {
	parsed                         int // files parsed
	pools, zones, services, geoips int // blocks compiled
	renumbered                     int // pools copied for new member indexes
	relinked                       int // services copied for renumbered pools
	copiedServices                 int // services copied for a new Ref
	drafted                        int // service blocks decoded ahead, on every CPU (draftServices)
	zonesBuilt, zonesReused        int // zones of records built again, or reused whole
	zonesExtended                  int // zones of records extended with new services
	prefilled                      bool
	stableMembers, stableRefs      bool // numbered after the last Load's, not in file order
}

// Load compiles the files as Load(files) does, reusing the records of the previous
// successful Load. When it succeeds without any diagnostic, what it compiled becomes the
// record for the next one; otherwise the records stay those of the last such Load. Load
// reads files and never modifies them; their Data is copied for the record, never kept.
func (cc *Compiler) Load(files []File) (*Snapshot, hcl.Diagnostics) {
	sorted := files
	if !cc.ascending(files) {
		sorted = cc.sort(files)
		for i := 1; i < len(sorted); i++ {
			if sorted[i].Name == sorted[i-1].Name {
				// Files of one name (never from the store) are Load's corner: the parse
				// of the first stands for all of them, and which is first depends on the
				// order they came in. Nothing is recorded for them.
				cc.stats = compileStats{}
				return Load(files)
			}
		}
	}
	c := newCompilation(cc)
	c.unique = true // ascending, or sorted and checked
	snap, diags := c.run(sorted)
	cc.stats = c.stats
	if snap != nil && len(diags) == 0 {
		c.commit()
	}
	return snap, diags
}

// fileRecord is what a Load without any diagnostic made of one file: for each of its
// top-level blocks, what it compiled to (after the checks against other blocks, such as
// duplicate names, which every Load makes again).
type fileRecord struct {
	name     string
	data     []byte // a copy
	sum      [sha256.Size]byte
	leaf     leaf // its part of the Hash
	geoips   []geoipRecord
	pools    []poolRecord
	zones    []*zoneRecord
	services []serviceRecord
}

func (r *fileRecord) count(k blockKind) int {
	switch k {
	case kindGeoIP:
		return len(r.geoips)
	case kindPool:
		return len(r.pools)
	case kindZone:
		return len(r.zones)
	}
	return len(r.services)
}

// geoipRecord is a geoip block: its range and the database paths it set.
type geoipRecord struct {
	rng       hcl.Range
	city, asn string
}

// poolRecord is a pool block: its label's range and the pool, whose members' indexes are
// those of the snapshot it was compiled (or last renumbered) for.
type poolRecord struct {
	rng  hcl.Range
	pool *Pool
}

// serviceRecord is a service block: its label's range and the service as the snapshot
// holds it.
type serviceRecord struct {
	rng hcl.Range
	svc *Service
}

// zoneRecord is a zone block: what it compiled to before any service was inserted, and
// the zone the snapshot holds, built from that, its file (by SHA-256) and the services
// inserted (in order).
type zoneRecord struct {
	*zoneRecipe
	zone     *zones.Zone
	fileSum  [sha256.Size]byte
	inserted []insertedService
	// includes are the files the zone file included, whose paths and contents
	// includeSum covers: the zone is reused only when they read the same again.
	includes   []string
	includeSum [sha256.Size]byte
	// recRng locates the zone's CNAME and DS record blocks, for checkZones (read only).
	recRng map[recKey]hcl.Range
}

// zoneRecipe is what a zone block compiles to, before its file is imported and services
// are inserted: a new zones.Zone is built from it by inserting the same records in the
// same order (zones copies every record it is given, so these stay unshared).
type zoneRecipe struct {
	origin  string
	rng     hcl.Range // the label
	soa     *dns.SOA
	ns      []dns.RR
	records []dns.RR
	file    *zoneFile   // nil without a file attribute
	dnssec  *zoneDNSSEC // nil without a dnssec block
}

// insertedService is a service name inserted into a zone, with its reference.
type insertedService struct {
	name string
	ref  zones.ServiceRef
}

// geoContext is what the steering checks of a service read of the geoip block: whether
// there is one and whether it names a City and an ASN database.
type geoContext struct{ block, city, asn bool }

func (c *compilation) geoContext() geoContext {
	return geoContext{c.geoipRng != nil, c.snap.geoCity != "", c.snap.geoASN != ""}
}

// match calls fn for every file, in order, with the record of the file of the same name
// and contents (nil when there is none, or for Load), and returns the records that no
// file matched (of files removed or changed). Files and records are both sorted by name.
func (cc *Compiler) match(files []File, fn func(i int, rec *fileRecord)) (dropped []*fileRecord) {
	var recs []*fileRecord
	if cc != nil {
		recs = cc.files
	}
	for i, f := range files {
		for len(recs) > 0 && recs[0].name < f.Name {
			dropped = append(dropped, recs[0])
			recs = recs[1:]
		}
		var rec *fileRecord
		if len(recs) > 0 && recs[0].name == f.Name {
			if sameContents(recs[0], &f) {
				rec = recs[0]
			} else {
				dropped = append(dropped, recs[0])
			}
			recs = recs[1:]
		}
		fn(i, rec)
	}
	return append(dropped, recs...)
}

// prefill starts the name maps of the compilation (PoolByName, poolRng, svcRng) from
// those of the Compiler's last Load, less the names of the dropped records, when that
// gives what building them in order gives: when no file without a record declares a pool
// or service of a name that a record keeps. The records' names are then distinct (their
// Load reported no duplicate), and a block compiled from source finds in the maps the
// same names it would find built in order: those of the earlier blocks compiled from
// source, never its own taken by a record's block that comes later. The blocks of records
// are then put in the snapshot without a lookup or an insertion by name (prefilled):
// only a pool renumbered is set again, and a service's pools are checked by pointer
// (renumbered, or of a dropped record). A write into 20,000 documents thus hashes a few
// names instead of 40,000.
func (c *compilation) prefill(dropped []*fileRecord) {
	cc := c.cc
	if cc == nil || cc.svcRng == nil || c.diags.HasErrors() {
		return
	}
	// The ranges are the Compiler's own: they are changed in place, and the Compiler
	// keeps them again only if this Load succeeds (commit); PoolByName is the last
	// snapshot's, which is not ours to change.
	poolRng, svcRng := cc.poolRng, cc.svcRng
	cc.poolRng, cc.svcRng = nil, nil
	pools := maps.Clone(cc.poolByName)
	gone := map[*Pool]bool{}
	for _, r := range dropped {
		for _, pr := range r.pools {
			delete(pools, pr.pool.Name)
			delete(poolRng, pr.pool.Name)
			gone[pr.pool] = true
		}
		for _, sr := range r.services {
			delete(svcRng, sr.svc.Name)
		}
	}
	for _, u := range c.units {
		if u.old != nil || u.blocks == nil {
			continue
		}
		for _, b := range u.blocks[kindPool] {
			if len(b.Labels) == 0 || pools[b.Labels[0]] != nil {
				return // and the next Load builds the maps again
			}
		}
		for _, b := range u.blocks[kindService] {
			if len(b.Labels) == 0 {
				return
			}
			if _, ok := svcRng[fqdn(b.Labels[0])]; ok {
				return
			}
		}
	}
	c.snap.PoolByName, c.poolRng, c.svcRng = pools, poolRng, svcRng
	c.prefilled, c.gonePools, c.stats.prefilled = true, gone, true
	if len(gone) == 0 && cc.members != nil {
		// Every pool of the last snapshot stays, each from its record (prefilled): its
		// members keep their indexes, and new pools' members are numbered after them.
		c.stableMembers, c.stats.stableMembers = true, true
		c.snap.Members = append(make([]*Member, 0, len(cc.members)+8), cc.members...)
	}
}

// sameContents reports whether f has rec's contents: by its Sum when the caller gave one.
func sameContents(rec *fileRecord, f *File) bool {
	if f.Sum != ([sha256.Size]byte{}) {
		return rec.sum == f.Sum
	}
	return bytes.Equal(rec.data, f.Data)
}

// newRecord starts the record of a unit parsed in this compilation (a Compiler's only).
func (cc *Compiler) newRecord(u *unit) {
	if cc == nil {
		return
	}
	sum := u.digest()
	u.rec = &fileRecord{name: u.Name, data: bytes.Clone(u.Data), sum: sum, leaf: leafOf(u.Name, sum),
		geoips: make([]geoipRecord, len(u.blocks[kindGeoIP])), pools: make([]poolRecord, len(u.blocks[kindPool])),
		zones: make([]*zoneRecord, len(u.blocks[kindZone])), services: make([]serviceRecord, len(u.blocks[kindService]))}
}

// record returns the unit's next record, ready for a change to its blocks of kind k:
// the old record is copied the first time something in it changes, and its slice of
// kind k the first time a block of that kind does (a pool renumbered copies the pools
// of its file's record, not its services), so the old record stays as it was, the
// Compiler's until the Load succeeds.
func (u *unit) record(k blockKind) *fileRecord {
	if u.rec == nil {
		r := *u.old
		u.rec = &r
	} else if u.old == nil || u.owned[k] {
		return u.rec // new, or copied already
	}
	r := u.rec
	switch k {
	case kindGeoIP:
		r.geoips = slices.Clone(r.geoips)
	case kindPool:
		r.pools = slices.Clone(r.pools)
	case kindZone:
		r.zones = slices.Clone(r.zones)
	case kindService:
		r.services = slices.Clone(r.services)
	}
	u.owned[k] = true
	return r
}

// ascending reports whether files are sorted by name, no two of one name, as the store
// hands them over. Comparing 20,000 names costs a cache miss each (their bytes lie all
// over the heap), so a file whose name is that of the record after the one the file
// before it matched (the store hands the same strings back, which compare equal by
// their pointers) is known to come after that file unread; only the others (files new
// or changed since) are compared with the file before them.
func (cc *Compiler) ascending(files []File) bool {
	recs := cc.files
	j := 0          // the record after the last one matched
	matched := true // files[i-1] matched recs[j-1]
	for i := range files {
		name := files[i].Name
		if j+1 < len(recs) && recs[j].name != name && recs[j+1].name == name {
			j++ // recs[j] was removed
		}
		if j < len(recs) && recs[j].name == name {
			if i > 0 && !matched && files[i-1].Name >= name {
				return false
			}
			j, matched = j+1, true
			continue
		}
		if i > 0 && files[i-1].Name >= name {
			return false
		}
		for j < len(recs) && recs[j].name < name {
			j++
		}
		matched = false
	}
	return true
}

// sort returns files sorted: files itself when they are, else a sorted copy. The policy store hands them over sorted (it keeps
// its documents' list sorted), which costs one pass to see. Files in another order (a map's)
// cost more: sorting 20,000 names costs more than the rest of a Load that changed one
// document, so the files that the last successful Load had go where they were then (a
// lookup each), and only the others are sorted, then merged in.
func (cc *Compiler) sort(files []File) []File {
	byName := func(a, b File) int { return strings.Compare(a.Name, b.Name) }
	if slices.IsSortedFunc(files, byName) {
		return files // the store's are; a Load only reads them
	}
	if len(cc.files) == 0 {
		files = slices.Clone(files)
		slices.SortFunc(files, byName)
		return files
	}
	if cc.pos == nil {
		cc.pos = make(map[string]int, len(cc.files))
		for i, f := range cc.files {
			cc.pos[f.name] = i
		}
	}
	slot := make([]File, len(cc.pos))
	used := make([]bool, len(cc.pos))
	var extra []File
	for _, f := range files {
		if i, ok := cc.pos[f.Name]; ok && !used[i] {
			slot[i], used[i] = f, true
		} else {
			extra = append(extra, f)
		}
	}
	out := slot[:0]
	for i := range slot {
		if used[i] {
			out = append(out, slot[i])
		}
	}
	if len(extra) == 0 {
		return out
	}
	slices.SortFunc(extra, byName)
	merged := make([]File, 0, len(out)+len(extra))
	for _, f := range out {
		for len(extra) > 0 && extra[0].Name < f.Name {
			merged = append(merged, extra[0])
			extra = extra[1:]
		}
		merged = append(merged, f)
	}
	return append(merged, extra...)
}

// commit makes this compilation's records the Compiler's: the records of the units,
// those of units in which nothing changed as they were, after noting the services and
// zones this compilation made (the pools and geoip blocks are noted as they compile).
func (c *compilation) commit() {
	for k := range c.pending {
		p := &c.pending[k]
		if p.shared {
			continue // the record's service, in the record already
		}
		if u := p.u; u.old == nil || u.old.services[p.i].svc != p.s {
			u.record(kindService).services[p.i] = serviceRecord{rng: *p.rng, svc: p.s}
		}
	}
	for _, zs := range c.zones {
		if zs.reused {
			continue // its record stands
		}
		r := &zoneRecord{zoneRecipe: zs.recipe, zone: zs.z, inserted: zs.inserted, recRng: zs.recRng}
		if zs.old != nil {
			r.zoneRecipe = zs.old.zoneRecipe
		}
		if zs.im != nil {
			r.fileSum = sha256.Sum256(zs.im.data)
			for _, inc := range zs.im.included {
				r.includes = append(r.includes, inc.Path)
			}
			r.includeSum = includeSum(zs.im.included)
		}
		zs.u.record(kindZone).zones[zs.i] = r
	}
	files := make([]*fileRecord, len(c.units))
	same := len(c.units) == len(c.cc.files)
	for i, u := range c.units {
		files[i] = u.rec
		if files[i] == nil {
			files[i] = u.old
		}
		same = same && u.Name == c.cc.files[i].name
	}
	if !same {
		c.cc.pos = nil // made again when a Load needs it (sort)
	}
	origins := make([]string, len(c.zones))
	for i, zs := range c.zones {
		origins[i] = zs.origin
	}
	c.cc.files, c.cc.geo, c.cc.origins = files, c.geoContext(), origins
	c.cc.poolByName, c.cc.poolRng, c.cc.svcRng = c.snap.PoolByName, c.poolRng, c.svcRng
	c.cc.members, c.cc.services = c.snap.Members, c.snap.Services
	c.cc.sizes = sizes{pools: len(c.snap.Pools), members: len(c.snap.Members), services: len(c.snap.Services)}
}

// geoipAt compiles the unit's i-th geoip block, from its record when it is the first
// geoip block (a second one is an error, which compiling it reports).
func (c *compilation) geoipAt(u *unit, i int) {
	if u.old != nil && c.geoipRng == nil {
		r := &u.old.geoips[i]
		rng := r.rng
		c.geoipRng = &rng
		c.snap.geoCity, c.snap.geoASN = r.city, r.asn
		return
	}
	c.stats.geoips++
	blk := c.block(u, kindGeoIP, i)
	c.geoip(blk, filepath.Dir(u.Name))
	if c.cc != nil {
		u.record(kindGeoIP).geoips[i] = geoipRecord{rng: blk.DefRange, city: c.snap.geoCity, asn: c.snap.geoASN}
	}
}

// poolAt compiles the unit's i-th pool block, or takes the pool of its record when no
// earlier pool has its name. A pool is a function of its block alone, but for its
// members' indexes, which are their position in this snapshot's Members: when the pools
// before it hold another number of members than they did, the pool is copied with its
// members renumbered (the old ones belong to the old snapshot, whose health view is
// indexed by them), and the copy recorded in c.renumbered for the services that use it.
func (c *compilation) poolAt(u *unit, i int) {
	if u.old != nil {
		r := &u.old.pools[i]
		if p := r.pool; c.prefilled || c.snap.PoolByName[p.Name] == nil {
			if c.stableMembers {
				c.snap.Pools = append(c.snap.Pools, p) // its members are in Members already
				return
			}
			renumbered := false
			if len(p.Members) > 0 && p.Members[0].Index != len(c.snap.Members) {
				p = c.renumber(p)
				u.record(kindPool).pools[i] = poolRecord{rng: r.rng, pool: p}
				renumbered = true
			}
			c.snap.Members = append(c.snap.Members, p.Members...)
			c.snap.Pools = append(c.snap.Pools, p)
			if !c.prefilled || renumbered {
				c.snap.PoolByName[p.Name] = p
			}
			if !c.prefilled {
				c.poolRng[p.Name] = &r.rng
			}
			return
		}
	}
	c.stats.pools++
	blk := c.block(u, kindPool, i)
	n := len(c.snap.Pools)
	c.pool(blk)
	if c.cc != nil && len(c.snap.Pools) > n {
		u.record(kindPool).pools[i] = poolRecord{rng: blk.LabelRanges[0], pool: c.snap.Pools[n]}
	}
}

// renumber returns a copy of p whose members are numbered from len(c.snap.Members).
func (c *compilation) renumber(p *Pool) *Pool {
	c.stats.renumbered++
	np := *p
	np.Members = make([]*Member, len(p.Members))
	slab := make([]Member, len(p.Members))
	for j, m := range p.Members {
		slab[j] = *m
		slab[j].Index = len(c.snap.Members) + j
		np.Members[j] = &slab[j]
	}
	if c.renumbered == nil {
		c.renumbered = map[*Pool]*Pool{}
	}
	c.renumbered[p] = &np
	return &np
}

// zoneAt compiles the unit's i-th zone block, or takes its recipe from the record when no
// earlier zone has its origin; such a zone is built once the services are compiled
// (buildRecordedZones), or reused whole.
func (c *compilation) zoneAt(u *unit, i int) {
	if u.old != nil {
		r := u.old.zones[i]
		dup := false
		for _, z := range c.zones {
			dup = dup || z.origin == r.origin
		}
		if !dup {
			zs := &zoneState{origin: r.origin, rng: r.rng, old: r, u: u, i: i, recRng: r.recRng}
			c.zones = append(c.zones, zs)
			if r.file != nil {
				// Read now, for the hash (startHash); imported (or not) by
				// buildRecordedZones; waited for and reported in the order of the zone
				// blocks, as any import.
				im := &zoneImport{zs: zs, file: r.file, read: make(chan struct{}), done: make(chan struct{})}
				im.data, im.readErr = c.readFile(r.file.path)
				close(im.read)
				zs.im = im
				c.imports = append(c.imports, im)
			}
			return
		}
	}
	c.stats.zones++
	n := len(c.zones)
	c.zone(c.block(u, kindZone, i), filepath.Dir(u.Name))
	if len(c.zones) > n {
		c.zones[n].u, c.zones[n].i = u, i
	}
}

// serviceAt compiles the unit's i-th service block, or takes the service of its record
// when compiling it would give the same (see reuseService).
func (c *compilation) serviceAt(u *unit, i int) {
	if u.old != nil {
		if c.reuseService(u, i) {
			return
		}
		if c.prefilled {
			// Its name is the record's, which the maps hold for it: it compiles as if
			// they were built in order, where no earlier service has it.
			delete(c.svcRng, u.old.services[i].svc.Name)
		}
	}
	c.stats.services++
	n := len(c.pending)
	if u.drafts != nil {
		c.serviceFrom(u.blocks[kindService][i], u.drafts[i])
	} else {
		c.service(c.block(u, kindService, i))
	}
	if len(c.pending) > n {
		c.pending[n].u, c.pending[n].i = u, i
	}
}

// reuseService takes the unit's i-th service from its record, when what compiling the
// service block reads besides the block is what it was: no earlier service of its name;
// the zone it lives in (by origin); for a service that needs GeoIP, the geoip block (by
// geoContext); and its pools and fallback, the very objects, or copies that only
// renumbered their members (the service is then copied for them, its candidates
// gathered again). These are all it reads: the pools by name, the zones' origins, the
// geoip block, and other services only for duplicates.
func (c *compilation) reuseService(u *unit, i int) bool {
	r := &u.old.services[i]
	s := r.svc
	if !c.prefilled {
		if _, dup := c.svcRng[s.Name]; dup {
			return false
		}
	}
	var zone *zoneState
	if c.zonesSame {
		zone = c.byOrigin[s.Zone]
	} else if zone = c.zoneOf(s.Name); zone != nil && zone.origin != s.Zone {
		return false
	}
	if zone == nil || s.NeedsGeo && c.geoContext() != c.cc.geo {
		return false
	}
	moved := false
	for _, p := range s.Pools {
		switch c.poolNow(p) {
		case poolGone:
			return false
		case poolMoved:
			moved = true
		}
	}
	if p := s.Fallback; p != nil {
		switch c.poolNow(p) {
		case poolGone:
			return false
		case poolMoved:
			moved = true
		}
	}
	shared := true
	if moved {
		s = s.clone(s.Ref, func(p *Pool) *Pool { return c.snap.PoolByName[p.Name] })
		shared = false
		c.stats.relinked++
	}
	if !c.prefilled {
		c.svcRng[s.Name] = &r.rng
	}
	c.pending = append(c.pending, pendingService{s: s, zone: zone, rng: &r.rng, shared: shared, u: u, i: i})
	return true
}

// What became of a pool of a record in this compilation (poolNow).
const (
	poolSame  = iota // the very object
	poolMoved        // a copy that only renumbered its members
	poolGone         // another pool, or none
)

// poolNow says what became of p, a pool of the Compiler's last snapshot: by name, or,
// with the maps prefilled, by pointer: a pool of a record that no file dropped is in
// the snapshot, itself or renumbered.
func (c *compilation) poolNow(p *Pool) int {
	if c.prefilled && !c.gonePools[p] {
		if _, ok := c.renumbered[p]; ok {
			return poolMoved
		}
		return poolSame
	}
	switch q := c.snap.PoolByName[p.Name]; {
	case q == p:
		return poolSame
	case q != nil && c.renumbered[p] == q:
		return poolMoved
	}
	return poolGone
}

// compareZones notes whether the zones have the origins of the Compiler's last Load,
// in which case a service lives in the zone of the origin it lived in then (its zone is
// a function of its name and the origins).
func (c *compilation) compareZones() {
	if c.cc == nil || len(c.zones) != len(c.cc.origins) {
		return
	}
	for i, zs := range c.zones {
		if zs.origin != c.cc.origins[i] {
			return
		}
	}
	c.zonesSame = true
	c.byOrigin = make(map[string]*zoneState, len(c.zones))
	for _, zs := range c.zones {
		c.byOrigin[zs.origin] = zs
	}
}

// buildRecordedZones builds the zones whose blocks compiled from their records, now that
// the services to insert into them are known. A zone whose file has the same contents
// and which receives the same services under the same references as the zone of the
// record is that zone: zones.Zone is read-only once built, so two snapshots can share
// it. Any other is built again from the recipe, its file imported again.
//
// A recipe was built into a zone without an error before; if one ever appeared now, it
// is reported at the zone's label rather than left unbuilt in silence.
func (c *compilation) buildRecordedZones() {
	// Which of them receive the same services, counting on every insertion succeeding:
	// if one failed, the policy has errors and no snapshot is made anyway. With stable
	// Refs, a zone whose services from records are the record's, in order, and which
	// receives new ones besides, extends the record's zone with them (zones.Zone.Extend).
	type tally struct {
		n          int
		same       bool
		shared     int // services from records
		sharedSame bool
		fresh      int // the others
	}
	var t map[*zoneState]*tally
	for _, zs := range c.zones {
		if zs.old != nil {
			if t == nil {
				t = map[*zoneState]*tally{}
			}
			t[zs] = &tally{same: true, sharedSame: true}
		}
	}
	if t == nil {
		return
	}
	for k := range c.pending {
		p := &c.pending[k]
		z := t[p.zone]
		if z == nil {
			continue
		}
		is := insertedService{name: p.s.Name, ref: c.refs[k]}
		old := p.zone.old.inserted
		if z.n >= len(old) || old[z.n] != is {
			z.same = false
		}
		z.n++
		if !p.shared {
			z.fresh++
			continue
		}
		if z.shared >= len(old) || old[z.shared] != is {
			z.sharedSame = false
		}
		z.shared++
	}
	for _, zs := range c.zones {
		if zs.old == nil {
			continue
		}
		r, im, z := zs.old, zs.im, t[zs]
		whole := z.same && z.n == len(r.inserted)
		extend := c.stableRefs && z.sharedSame && z.shared == len(r.inserted)
		if (whole || extend) && (im == nil || im.readErr == nil && sha256.Sum256(im.data) == r.fileSum && sameIncludes(r, im)) {
			if whole {
				zs.z, zs.reused = r.zone, true
				c.stats.zonesReused++
			} else {
				zs.z, zs.extended = r.zone.Extend(z.fresh), true
				c.stats.zonesExtended++
			}
			if im != nil {
				close(im.done)
			}
			continue
		}
		c.stats.zonesBuilt++
		built, err := r.build()
		if err != nil {
			c.errf(r.rng, "Invalid zone", "Zone %q: %v.", r.origin, err)
			if im != nil {
				close(im.done)
			}
			continue
		}
		built.Reserve(z.n) // its services, inserted next
		zs.z = built
		if im != nil {
			c.startImport(im, true)
		}
	}
}

// assignRefs gives each pending service its Ref: its place in file order, as Load
// does, unless every service of the Compiler's last snapshot stays as it was (each
// shared from its record under its Ref: services were only added). They then keep their
// Refs, and the new ones are numbered after them in file order, so that an API write that
// adds a service neither copies the services after it nor builds its zone again.
func (c *compilation) assignRefs() {
	c.refs = make([]zones.ServiceRef, len(c.pending))
	for k := range c.refs {
		c.refs[k] = zones.ServiceRef(k)
	}
	cc := c.cc
	if cc == nil || cc.services == nil || c.dropsServices || c.diags.HasErrors() {
		return
	}
	shared := 0
	for k := range c.pending {
		p := &c.pending[k]
		if !p.shared {
			if p.u.old != nil {
				return // a record's service compiled again or copied
			}
			continue
		}
		if r := int(p.s.Ref); r >= len(cc.services) || cc.services[r] != p.s {
			return
		}
		shared++
	}
	if shared != len(cc.services) {
		return
	}
	next := len(cc.services)
	for k := range c.pending {
		if p := &c.pending[k]; p.shared {
			c.refs[k] = p.s.Ref
		} else {
			c.refs[k] = zones.ServiceRef(next)
			next++
		}
	}
	c.stableRefs, c.stats.stableRefs = true, true
}

// includeSum is the SHA-256 over the included files' paths and contents, in order.
func includeSum(inc []zones.Included) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range inc {
		sum := sha256.Sum256(f.Data)
		fmt.Fprintf(h, "%d:%s", len(f.Path), f.Path)
		h.Write(sum[:])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// sameIncludes reads the files r's zone file included again and reports whether they
// are as they were; then im holds them (for the hash and the watch). The zone file being
// the same, it includes the same files as long as they are the same.
func sameIncludes(r *zoneRecord, im *zoneImport) bool {
	if len(r.includes) == 0 {
		return true
	}
	inc := make([]zones.Included, len(r.includes))
	for i, p := range r.includes {
		data, err := os.ReadFile(p)
		if err != nil {
			return false
		}
		inc[i] = zones.Included{Path: p, Data: data}
	}
	if includeSum(inc) != r.includeSum {
		return false
	}
	im.included = inc
	return true
}

// build makes a new zone of the recipe.
func (r *zoneRecipe) build() (*zones.Zone, error) {
	z, err := zones.New(r.origin, r.soa, r.ns)
	if err != nil {
		return nil, err
	}
	for _, rr := range r.records {
		if err := z.Insert(rr); err != nil {
			return nil, fmt.Errorf("record %s: %w", rr.Header().Name, err)
		}
	}
	return z, nil
}
