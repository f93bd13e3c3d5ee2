package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/policy/hclparse"
	"github.com/glbdns/glbdns/zones"
)

// File is one policy source file: its name (used in diagnostics, and as the base for
// relative zone-file paths) and its contents.
type File struct {
	Name string
	Data []byte
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
// zone files import on their own goroutines while services compile. None of it changes
// a diagnostic: anything unusual goes through hclsyntax itself.
func Load(files []File) (*Snapshot, hcl.Diagnostics) {
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })

	c := &compilation{hashed: map[string][]byte{}, poolRng: map[string]hcl.Range{}, svcRng: map[string]hcl.Range{}}
	var bodies []*hcl.BodyContent
	for i, p := range parse(files) {
		f := files[i]
		c.hashed[f.Name] = f.Data
		c.add(p.Diags)
		if len(p.Bodies) == 0 || p.Diags.HasErrors() {
			continue
		}
		for _, b := range p.Bodies {
			content, diags := bodyContent(b, rootSchema)
			c.add(diags)
			bodies = append(bodies, content)
			c.dirs = append(c.dirs, filepath.Dir(f.Name))
		}
	}
	snap := &Snapshot{PoolByName: map[string]*Pool{}}
	c.snap = snap
	// The geoip block first: services check for it. Pools next: services refer to them.
	// Zones next: services are inserted into them.
	for i, b := range bodies {
		for _, blk := range b.Blocks.OfType("geoip") {
			c.geoip(blk, c.dirs[i])
		}
	}
	for _, b := range bodies {
		for _, blk := range b.Blocks.OfType("pool") {
			c.pool(blk)
		}
	}
	for i, b := range bodies {
		for _, blk := range b.Blocks.OfType("zone") {
			c.zone(blk, c.dirs[i])
		}
	}
	for _, b := range bodies {
		for _, blk := range b.Blocks.OfType("service") {
			c.service(blk)
		}
	}
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
		}
		snap.Zones = set
	}
	if c.diags.HasErrors() {
		return nil, finish(c.diags)
	}
	snap.Files, snap.Hash = hashFiles(c.hashed)
	return snap, finish(c.diags)
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

// hashFiles returns the sorted file names and a hex SHA-256 over each name and contents,
// length-prefixed so that no two different file sets hash alike.
func hashFiles(m map[string][]byte) ([]string, string) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var n8 [8]byte
	for _, n := range names {
		binary.BigEndian.PutUint64(n8[:], uint64(len(n)))
		h.Write(n8[:])
		h.Write([]byte(n))
		binary.BigEndian.PutUint64(n8[:], uint64(len(m[n])))
		h.Write(n8[:])
		h.Write(m[n])
	}
	return names, hex.EncodeToString(h.Sum(nil))
}

// compilation carries the state of one Load.
type compilation struct {
	decoder
	snap   *Snapshot
	dirs   []string
	hashed map[string][]byte // every file read: the .hcl files and the zone files
	zones  []*zoneState
	// source ranges for "already declared at" details and service-level errors
	poolRng  map[string]hcl.Range
	svcRng   map[string]hcl.Range
	geoipRng *hcl.Range // the geoip block, once seen
	// zone files being imported concurrently (see importZone), bounded by importSem,
	// and the services waiting for them
	imports   []*zoneImport
	importSem chan struct{}
	pending   []pendingService
}

type zoneState struct {
	origin string
	z      *zones.Zone
	rng    hcl.Range
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
