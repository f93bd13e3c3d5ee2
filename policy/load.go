package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/glbdns/glbdns/policy/hclparse"
	"github.com/glbdns/glbdns/zones"
)

// File is one policy source file: its name (used in diagnostics, and as the base for
// relative zone-file paths) and its contents.
type File struct {
	Name string
	Data []byte
	// Sum, when not zero, is the SHA-256 of Data, which the caller keeps: a Compiler then
	// matches the file to its record by name and Sum instead of comparing Data, and the
	// snapshot's Hash takes it as the file's digest. The policy store sets it on the
	// documents it holds, so that a write into 20,000 of them reads only its own.
	Sum [sha256.Size]byte
}

// digest is the SHA-256 of f's contents.
func (f *File) digest() [sha256.Size]byte {
	if f.Sum != ([sha256.Size]byte{}) {
		return f.Sum
	}
	return sha256.Sum256(f.Data)
}

// ReadPath reads the policy files at path: the file itself, or every *.hcl file of a
// directory (not recursive), sorted by name. A directory without any gives no files and
// no error. Every file that cannot be read is reported, joined into one error
// (errors.Join).
func ReadPath(path string) ([]File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	names := []string{path}
	if fi.IsDir() {
		// ReadDir and Match rather than Glob: a directory name holding Glob's
		// metacharacters ("policy[1]") must not be read as a pattern.
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("read policy %q: %w", path, err)
		}
		names = names[:0]
		for _, e := range entries { // sorted by name
			if ok, _ := filepath.Match("*.hcl", e.Name()); ok {
				names = append(names, filepath.Join(path, e.Name()))
			}
		}
	}
	files := make([]File, 0, len(names))
	var errs []error
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("read policy file %q: %w", n, err))
			continue
		}
		files = append(files, File{Name: n, Data: data})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

// LoadPath loads a policy from a .hcl file, or from every *.hcl file of a directory (not
// recursive, sorted by name), as ReadPath reads them. On any error the snapshot is nil
// and diags holds every error found.
func LoadPath(path string) (*Snapshot, hcl.Diagnostics) {
	files, err := ReadPath(path)
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap() // one diagnostic per file
		}
		var diags hcl.Diagnostics
		for _, e := range errs {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read policy", Detail: e.Error()})
		}
		return nil, diags
	}
	if len(files) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No policy files",
			Detail: fmt.Sprintf("Directory %q holds no *.hcl file.", path)}}
	}
	return Load(files)
}

// Load compiles policy files (sorted by name before use) into a snapshot. Zone files named
// by a zone's file attribute are read relative to the directory of the .hcl file naming
// them. On any error the snapshot is nil and diags holds every error found.
//
// The lifecycle follows caddy's: decode every block against its schema, provision
// (defaults, lower-case FQDNs, pool names resolved to pointers, members to dense indexes),
// validate, and only then hand out the snapshot, which nothing modifies afterwards.
//
// Speed (a reload of 10,000 services must stay well under a second on 2 cores): files,
// and 256 KiB chunks of large files cut at top-level blocks, are parsed concurrently,
// plain HCL by a parser that builds hclsyntax's AST without its token slice (package
// hclparse); bodies matching their schema skip hclsyntax's PartialContent (content.go);
// zone files import on their own goroutines while services compile, and the hash is
// computed on another. None of it changes a diagnostic: anything unusual goes through
// hclsyntax itself. A Compiler gives the same result, reusing its previous Load's work.
func Load(files []File) (*Snapshot, hcl.Diagnostics) {
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return newCompilation(nil).run(files)
}

// newCompilation starts a compilation; cc is the Compiler whose records it reuses and
// renews, nil for Load.
func newCompilation(cc *Compiler) *compilation {
	var sz sizes
	if cc != nil {
		sz = cc.sizes
	}
	return &compilation{cc: cc, sizes: sz, pending: make([]pendingService, 0, sz.services)}
}

// run compiles files, sorted by name. Every block is compiled by the same function
// whether or not a Compiler's record lets it skip the work (compile.go): the *At methods
// either replay the record or compile the block.
func (c *compilation) run(files []File) (*Snapshot, hcl.Diagnostics) {
	dropped := c.parseUnits(files)
	for _, r := range dropped {
		c.dropsServices = c.dropsServices || len(r.services) > 0
	}
	if c.sizes == (sizes{}) {
		// No Load before: the blocks say how many, so that the slices and maps are not
		// grown step by step either.
		for _, u := range c.units {
			c.sizes.pools += u.count(kindPool)
			c.sizes.services += u.count(kindService)
		}
		c.pending = make([]pendingService, 0, c.sizes.services)
	}
	snap := &Snapshot{}
	if c.sizes.pools > 0 { // the last Load's sizes: the slices are not grown step by step
		snap.Pools, snap.Members = make([]*Pool, 0, c.sizes.pools), make([]*Member, 0, c.sizes.members)
		snap.Services = make([]*Service, 0, c.sizes.services)
	}
	c.snap = snap
	if c.prefill(dropped); !c.prefilled {
		snap.PoolByName = make(map[string]*Pool, c.sizes.pools)
		c.poolRng = make(map[string]*hcl.Range, c.sizes.pools)
		c.svcRng = make(map[string]*hcl.Range, c.sizes.services)
	}
	// The geoip block first: services check for it. Pools next: services refer to them.
	// Zones next: services are inserted into them.
	for _, u := range c.units {
		for i := range u.count(kindGeoIP) {
			c.geoipAt(u, i)
		}
	}
	for _, u := range c.units {
		for i := range u.count(kindPool) {
			c.poolAt(u, i)
		}
	}
	for _, u := range c.units {
		for i := range u.count(kindZone) {
			c.zoneAt(u, i)
		}
	}
	c.draftServices() // before startHash: its goroutine writes the compilation's hash fields
	c.startHash(files)
	defer func() { <-c.hashed }() // on every return: it reads the files
	c.compareZones()
	for _, u := range c.units {
		for i := range u.count(kindService) {
			c.serviceAt(u, i)
		}
	}
	c.assignRefs()
	c.signers()
	c.buildRecordedZones()
	c.waitImports()
	c.insertServices()
	if !c.diags.HasErrors() {
		zs := make([]*zones.Zone, 0, len(c.zones))
		for _, z := range c.zones {
			zs = append(zs, z.z)
		}
		set, err := zones.NewSet(zs...)
		if err != nil {
			c.errf(hcl.Range{}, "Invalid zones", "%v", err)
		} else if !c.onlyAddressesAdded() {
			c.checkZones(set)
		}
		snap.Zones = set
	}
	if c.diags.HasErrors() {
		return nil, finish(c.diags)
	}
	<-c.hashed
	snap.Files, snap.Hash = c.hashFiles, c.hash
	return snap, finish(c.diags)
}

// unit is one policy file of a compilation.
type unit struct {
	*File // in the compilation's files, which a Load only reads
	// old is the Compiler's record of the file from its last successful Load, when the
	// name and contents are the same (nil in Load): its blocks then compile from it.
	old *fileRecord
	// blocks are the file's top-level blocks by kind, once parsed (parsed): every file
	// without a record is parsed first, a file with one only when one of its blocks
	// must compile again.
	blocks *fileBlocks
	parsed bool
	// rec is what this compilation makes of the file, the Compiler's next record of it
	// (nil in Load, and while nothing differs from old); owned says which of its slices
	// are its own, not old's (record).
	rec   *fileRecord
	owned [numKinds]bool
	// drafts are its service blocks decoded ahead, all at once (draftServices); nil
	// when they are decoded one by one as they compile.
	drafts []*serviceDraft
}

// blockKind is a top-level block type.
type blockKind uint8

const (
	kindGeoIP blockKind = iota
	kindPool
	kindZone
	kindService
	numKinds
)

// fileBlocks are a file's top-level blocks by kind, in file order.
type fileBlocks [numKinds][]*hcl.Block

func (fb *fileBlocks) add(blocks hcl.Blocks) {
	for _, b := range blocks {
		switch b.Type {
		case "geoip":
			fb[kindGeoIP] = append(fb[kindGeoIP], b)
		case "pool":
			fb[kindPool] = append(fb[kindPool], b)
		case "zone":
			fb[kindZone] = append(fb[kindZone], b)
		case "service":
			fb[kindService] = append(fb[kindService], b)
		}
	}
}

// count is the number of the file's blocks of a kind.
func (u *unit) count(k blockKind) int {
	if u.old != nil {
		return u.old.count(k)
	}
	if u.blocks == nil {
		return 0
	}
	return len(u.blocks[k])
}

// rootContents is bodyContent(b, rootSchema) of each of bodies, the 256 KiB chunks of a
// file (hclparse), each on its own goroutine when there are several: copying the blocks
// of 10,000 services out of their bodies is a tenth of a large start.
func rootContents(bodies []*hclsyntax.Body) []rootContent {
	out := make([]rootContent, len(bodies))
	if len(bodies) == 1 {
		out[0].content, out[0].diags = bodyContent(bodies[0], rootSchema)
		return out
	}
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() { out[i].content, out[i].diags = bodyContent(b, rootSchema) })
	}
	wg.Wait()
	return out
}

type rootContent struct {
	content *hcl.BodyContent
	diags   hcl.Diagnostics
}

// parseUnits makes the units of the files, parsing those without a record (all of them
// in Load), concurrently, and reports their parse and schema diagnostics in file order.
// It returns the Compiler's records that no file matched.
// A file with a record parsed without any diagnostic before and adds none.
func (c *compilation) parseUnits(files []File) (dropped []*fileRecord) {
	c.units = make([]*unit, len(files))
	slab := make([]unit, len(files))
	var in []hclparse.File
	dropped = c.cc.match(files, func(i int, rec *fileRecord) {
		u := &slab[i]
		u.File, u.old = &files[i], rec
		c.units[i] = u
		if rec == nil {
			in = append(in, hclparse.File{Name: u.Name, Data: u.Data})
		} else {
			c.recLeaves.add(&rec.leaf) // now, while the record is at hand (startHash)
		}
	})
	results := hclparse.ParseFiles(in, chunkSize)
	for _, u := range c.units {
		if u.old != nil {
			continue
		}
		p := results[0]
		results = results[1:]
		c.stats.parsed++
		u.parsed = true
		c.add(p.Diags)
		if len(p.Bodies) == 0 || p.Diags.HasErrors() {
			continue
		}
		u.blocks = &fileBlocks{}
		for _, r := range rootContents(p.Bodies) {
			c.add(r.diags)
			u.blocks.add(r.content.Blocks)
		}
		c.cc.newRecord(u)
	}
	return dropped
}

// block returns the unit's i-th block of kind k, parsing the file first if this
// compilation has not: a file with a record is parsed only when one of its blocks must
// compile again. Its parse and schema diagnostics are not reported again (there were
// none: the file's record is of a Load without any).
func (c *compilation) block(u *unit, k blockKind, i int) *hcl.Block {
	if !u.parsed {
		c.stats.parsed++
		u.parsed = true
		u.blocks = &fileBlocks{}
		p := hclparse.ParseFiles([]hclparse.File{{Name: u.Name, Data: u.Data}}, chunkSize)[0]
		for _, b := range p.Bodies {
			content, _ := bodyContent(b, rootSchema)
			u.blocks.add(content.Blocks)
		}
	}
	return u.blocks[k][i]
}

// chunkSize is the size hclparse cuts large files into; a variable so that tests can cut
// every file at each top-level block.
var chunkSize = hclparse.DefaultChunkSize

// parse parses the policy files with hclparse, in their order.
func parse(files []File) []hclparse.Result {
	in := make([]hclparse.File, len(files))
	for i, f := range files {
		in[i] = hclparse.File{Name: f.Name, Data: f.Data}
	}
	return hclparse.ParseFiles(in, chunkSize)
}

// startHash computes the snapshot's Files and Hash on a goroutine of its own, while the
// services compile: c.hashed is closed once c.hashFiles and c.hash are set. The zone
// files are known once the zones have compiled, the files they include once imported
// (see zoneImport.done), so that the hash waits for a zone only when it gets to it.
func (c *compilation) startHash(files []File) {
	imports := c.imports
	c.hashed = make(chan struct{})
	go func() {
		defer close(c.hashed)
		// The files a zone file includes are known once it is imported: wait for that,
		// and hash (and so watch) them as zone files. Of several reads of a file, the
		// last counts (all succeed, or no snapshot is made).
		data := make(map[string][]byte, len(imports))
		for _, im := range imports {
			<-im.read
			data[im.file.path] = im.data
			<-im.done
			for _, inc := range im.included {
				data[inc.Path] = inc.Data
			}
		}
		paths := make([]string, 0, len(data))
		for p := range data {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		// A file with a record has its leaf in c.recLeaves: the same name and contents
		// as when the record was made.
		counted := func(i int) bool { return c.units[i].old != nil }
		c.hashFiles, c.hash = hashSources(files, c.unique, c.recLeaves, counted, func(i int) leaf {
			if u := c.units[i]; u.old != nil {
				return u.old.leaf
			}
			return leafOf(files[i].Name, files[i].digest())
		}, paths, func(path string) []byte { return data[path] })
	}()
}

// leafSum is a sum of leaves, as a 256-bit number modulo 2^256, little-endian limbs.
type leafSum [4]uint64

// add adds l to the sum.
func (a *leafSum) add(l *leaf) {
	var carry uint64
	for k := range a {
		a[k], carry = bits.Add64(a[k], binary.BigEndian.Uint64(l[8*(3-k):]), carry)
	}
}

// sub takes l from the sum.
func (a *leafSum) sub(l *leaf) {
	var borrow uint64
	for k := range a {
		a[k], borrow = bits.Sub64(a[k], binary.BigEndian.Uint64(l[8*(3-k):]), borrow)
	}
}

// leaf is a source file's part of the snapshot's Hash: the SHA-256 of its name and the
// SHA-256 of its contents (leafOf).
type leaf [sha256.Size]byte

// leafOf is the leaf of a file: SHA-256 over the length of its name, the name and the
// digest of its contents, so that no two different (name, contents) pairs give one leaf.
func leafOf(name string, sum [sha256.Size]byte) leaf {
	buf := make([]byte, 0, 8+len(name)+sha256.Size)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(name)))
	buf = append(buf, name...)
	buf = append(buf, sum[:]...)
	return sha256.Sum256(buf)
}

// hashSources returns the snapshot's Files and Hash: the names of the policy files
// (sorted by name; of several files of one name the last counts, as it did when they went
// through a map in that order) and of the zone files (zonePaths, sorted), merged in order,
// a zone file's contents (zoneData) replacing those of a policy file of the same name; and
// a hex SHA-256 over the number of files and the sum, as 256-bit numbers modulo 2^256, of
// their leaves (leafAt(i) for files[i], leafOf for a zone file). A sum does not depend on
// the order the leaves are added in, and a Compiler keeps each file's leaf in its record:
// hashing a policy of 20,000 files of which one changed hashes that one, and adds. The
// leaves of the files counted(i) are in base already (added as the records were matched,
// when they were at hand), and taken out again for a file that does not count. unique
// says that no two files have one name.
func hashSources(files []File, unique bool, base leafSum, counted func(i int) bool, leafAt func(i int) leaf, zonePaths []string,
	zoneData func(path string) []byte) ([]string, string) {
	zn := zonePaths
	names := make([]string, 0, len(files)+len(zn))
	acc := base
	zone := func(path string) {
		l := leafOf(path, sha256.Sum256(zoneData(path)))
		acc.add(&l)
		names = append(names, path)
	}
	for i, f := range files {
		skip := !unique && i+1 < len(files) && files[i+1].Name == f.Name
		if !skip {
			for len(zn) > 0 && zn[0] < f.Name {
				zone(zn[0])
				zn = zn[1:]
			}
			if len(zn) > 0 && zn[0] == f.Name {
				zone(f.Name)
				zn = zn[1:]
				skip = true
			}
		}
		if skip {
			if counted(i) {
				l := leafAt(i)
				acc.sub(&l)
			}
			continue
		}
		if !counted(i) {
			l := leafAt(i)
			acc.add(&l)
		}
		names = append(names, f.Name)
	}
	for _, n := range zn {
		zone(n)
	}
	buf := binary.BigEndian.AppendUint64(nil, uint64(len(names)))
	for k := 3; k >= 0; k-- {
		buf = binary.BigEndian.AppendUint64(buf, acc[k])
	}
	sum := sha256.Sum256(buf)
	return names, hex.EncodeToString(sum[:])
}

// compilation carries the state of one Load.
type compilation struct {
	decoder
	cc    *Compiler // whose records the compilation reuses and renews; nil in Load
	units []*unit   // the files, sorted by name
	snap  *Snapshot
	zones []*zoneState
	// hashed is closed once hashFiles and hash, the snapshot's Files and Hash, are
	// computed (startHash).
	hashed    chan struct{}
	hashFiles []string
	hash      string
	recLeaves leafSum // the leaves of the files matched to records (parseUnits)
	unique    bool    // no two files have one name (a Compiler's)
	// source ranges for "already declared at" details and service-level errors
	poolRng  map[string]*hcl.Range
	svcRng   map[string]*hcl.Range
	geoipRng *hcl.Range // the geoip block, once seen
	// zone files being imported concurrently (see importZone), bounded by importSem,
	// and the services waiting for them
	imports   []*zoneImport
	importSem chan struct{}
	pending   []pendingService
	// renumbered maps a pool of the Compiler's record to its copy in this snapshot, when
	// its members' indexes moved (see poolAt).
	renumbered map[*Pool]*Pool
	// sizes are the last successful Load's (none for Load), to size this one's maps and
	// slices.
	sizes sizes
	// prefilled says that the name maps started from the Compiler's (prefill), and
	// gonePools holds the pools of its records that no file of this compilation kept.
	prefilled bool
	gonePools map[*Pool]bool
	// stableMembers says that the members of the Compiler's last snapshot keep their
	// indexes, Members starting as its (prefill); stableRefs that its services keep
	// their Refs (assignRefs). refs holds the Ref of each pending service.
	stableMembers, stableRefs bool
	dropsServices             bool // a record dropped held a service
	refs                      []zones.ServiceRef
	// zonesSame says that the zones have the origins they had in the Compiler's last
	// Load, which the service block of a record then lives in again; byOrigin finds them.
	zonesSame bool
	byOrigin  map[string]*zoneState
	stats     compileStats
	// reuse, in a draft worker's copy, holds the service blocks' contents, one at a
	// time (nil: each its own).
	reuse *reusableContent
}

// sizes are the numbers of a snapshot's objects.
type sizes struct{ pools, members, services int }

// zoneState is a zone of the compilation.
type zoneState struct {
	origin string
	z      *zones.Zone // nil, for a zone of a record, until buildRecordedZones
	rng    hcl.Range
	im     *zoneImport // the import of its file, if it has one
	// recRng locates the zone's CNAME and DS record blocks, for checkZones.
	recRng map[recKey]hcl.Range
	// u and i locate the zone's block: u's i-th zone.
	u *unit
	i int
	// For a Compiler: recipe is what the block compiled to (when it compiled), old the
	// record it was taken from (when it did not), reused that z is old's zone, and
	// inserted the services inserted into z.
	recipe   *zoneRecipe
	old      *zoneRecord
	reused   bool
	inserted []insertedService
	// extended says that z extends old's zone, which held its services from records:
	// only the others are inserted (buildRecordedZones).
	extended bool
	// dnssec is the zone block's dnssec block, when it compiled (a zone of a record has
	// its recipe's).
	dnssec *zoneDNSSEC
}

// fqdn lower-cases a name and makes it fully qualified.
func fqdn(s string) string { return strings.ToLower(strings.TrimSpace(dnsFqdn(s))) }

func dnsFqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "zone", LabelNames: []string{"origin"}},
		{Type: "pool", LabelNames: []string{"name"}},
		{Type: "service", LabelNames: []string{"name"}},
		{Type: "geoip"},
	},
}
