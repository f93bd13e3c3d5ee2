package policy

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"
	"golang.org/x/tools/txtar"

	"github.com/glbdns/glbdns/zones"
)

// The tests of this file hold Compiler.Load to its contract: for the same files, what
// Load returns. Each step loads the same files through one Compiler and through Load and
// compares the results whole (reflect.DeepEqual of the snapshots, which reaches every
// unexported field and the zones' trees; a JSON dump for a readable difference; the
// diagnostics' text with full ranges), checks the invariants that DeepEqual cannot see
// (pointer identity: a member's index is where the snapshot's Members holds that very
// object), and checks that the earlier snapshots of the Compiler are still equal to
// their Load twins: no later Load modified an object they hold.

// sameResult fails the test when the Compiler's result differs from Load's. When the
// Compiler numbered members or services after its last Load's (a Load that only added),
// the numbers are its own and the snapshots are compared without them (numberFree): the
// dumps with every index and Ref replaced by the name it stands for, and the invariants
// (consistent) of each; otherwise whole (reflect.DeepEqual).
func sameResult(t *testing.T, step string, cs, ls *Snapshot, cd, ld hcl.Diagnostics) {
	t.Helper()
	if got, want := diagText(cd), diagText(ld); got != want {
		t.Fatalf("%s: diagnostics differ:\ncompiler:\n%s\nload:\n%s", step, got, want)
	}
	if (cs == nil) != (ls == nil) {
		t.Fatalf("%s: compiler snapshot %v, load snapshot %v", step, cs != nil, ls != nil)
	}
	if cs == nil {
		return
	}
	consistent(t, step, cs)
	if !sameNumbers(cs, ls) {
		if got, want := numberFree(cs), numberFree(ls); got != want {
			t.Fatalf("%s: snapshots differ (numbers aside):\ncompiler:\n%s\nload:\n%s", step, got, want)
		}
		return
	}
	if got, want := dump(cs), dump(ls); got != want {
		t.Fatalf("%s: snapshots differ:\ncompiler:\n%s\nload:\n%s", step, got, want)
	}
	if !equalSnaps(cs, ls) {
		t.Fatalf("%s: snapshots differ (reflect.DeepEqual), though their dumps are the same", step)
	}
}

// equalSnaps is reflect.DeepEqual of the snapshots but for their zones, which are
// compared by what they hold (zones.Set.Same): a zone the Compiler extended is laid out
// otherwise than one Load built, and answers the same.
func equalSnaps(a, b *Snapshot) bool {
	ac, bc := *a, *b
	ac.Zones, bc.Zones = nil, nil
	return reflect.DeepEqual(&ac, &bc) && a.Zones.Same(b.Zones)
}

// sameNumbers reports whether two snapshots number their members and services alike.
func sameNumbers(a, b *Snapshot) bool {
	if len(a.Members) != len(b.Members) || len(a.Services) != len(b.Services) {
		return false
	}
	for i, m := range a.Members {
		if m.ID() != b.Members[i].ID() {
			return false
		}
	}
	for i, s := range a.Services {
		if s.Name != b.Services[i].Name {
			return false
		}
	}
	return true
}

// numberFree is dump without the numbers a Compiler may choose otherwise than Load:
// services in file order (their zone and file, then name) and each index or Ref as the
// name of what it numbers.
func numberFree(s *Snapshot) string {
	v := snapshotView(s, "")
	for i := range v.Pools {
		for j := range v.Pools[i].Members {
			v.Pools[i].Members[j].Index = -1
		}
	}
	svcs := slices.Clone(s.Services)
	order := map[string]int{}
	for i, f := range s.Files {
		order[f] = i
	}
	slices.SortStableFunc(svcs, func(a, b *Service) int {
		if c := order[a.File] - order[b.File]; c != 0 {
			return c
		}
		return 0 // one file's services: their Refs' order, which is file order in both
	})
	byName := map[string]jsonService{}
	for _, js := range v.Services {
		js.Ref = -1
		byName[js.Name] = js
	}
	v.Services = v.Services[:0]
	for _, svc := range svcs {
		v.Services = append(v.Services, byName[svc.Name])
		l := lookupView(s.Zones, lookupName(svc.Name), "A")
		if l.Service != nil {
			l.Kind += " " + s.Services[*l.Service].Name
			l.Service = nil
		}
		v.Lookups = append(v.Lookups, l)
	}
	var members []string
	for _, m := range s.Members {
		members = append(members, m.ID())
	}
	slices.Sort(members)
	return renderDump(v, s.Hash, members)
}

// diagText renders diagnostics with every field that a caller can read.
func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "%d %v %s: %s: %s\n", d.Severity, rangeText(d.Subject), rangeText(d.Context), d.Summary, d.Detail)
	}
	return b.String()
}

func rangeText(r *hcl.Range) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d(%d)-%d:%d(%d)", r.Filename, r.Start.Line, r.Start.Column, r.Start.Byte, r.End.Line, r.End.Column, r.End.Byte)
}

// dump is a deterministic text of a snapshot: golden_test.go's JSON view, the hash, the
// members in index order and the zone answer of every service name.
func dump(s *Snapshot) string {
	v := snapshotView(s, "")
	for _, svc := range s.Services {
		v.Lookups = append(v.Lookups, lookupView(s.Zones, lookupName(svc.Name), "A"))
	}
	var members []string
	for _, m := range s.Members {
		members = append(members, fmt.Sprintf("%d %s", m.Index, m.ID()))
	}
	return renderDump(v, s.Hash, members)
}

// renderDump is the JSON text of a dump.
func renderDump(v jsonSnapshot, hash string, members []string) string {
	b, err := json.MarshalIndent(struct {
		View    jsonSnapshot
		Hash    string
		Members []string
	}{v, hash, members}, "", " ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// lookupName is a name a service answers: its own, or one its wildcard covers.
func lookupName(name string) string {
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		return "wild-card." + rest
	}
	return name
}

// consistent checks what a health view and the DNS server rely on: members indexed
// densely, and every pool, member and service reachable from the snapshot the very object
// that its index or name finds.
func consistent(t *testing.T, step string, s *Snapshot) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s", step, fmt.Sprintf(format, args...))
	}
	member := func(m *Member) {
		if m.Index < 0 || m.Index >= len(s.Members) || s.Members[m.Index] != m {
			fail("member %s (index %d) is not the snapshot's member of its index", m.ID(), m.Index)
		}
	}
	pool := func(p *Pool) {
		if p != nil && s.PoolByName[p.Name] != p {
			fail("pool %s is not the snapshot's pool of its name", p.Name)
		}
	}
	entry := func(e *entry) {
		pool(e.pool)
		for _, f := range e.cands {
			for _, m := range f {
				member(m)
			}
		}
	}
	for i, m := range s.Members {
		if m.Index != i {
			fail("Members[%d] has index %d", i, m.Index)
		}
	}
	n := 0
	for _, p := range s.Pools {
		pool(p)
		for _, m := range p.Members {
			member(m)
			n++
		}
	}
	if n != len(s.Members) || len(s.PoolByName) != len(s.Pools) {
		fail("%d members in pools, %d in Members; %d pools by name, %d pools", n, len(s.Members), len(s.PoolByName), len(s.Pools))
	}
	for i, svc := range s.Services {
		if int(svc.Ref) != i {
			fail("service %s at %d has Ref %d", svc.Name, i, svc.Ref)
		}
		for _, p := range svc.Pools {
			pool(p)
		}
		pool(svc.Fallback)
		for i := range svc.entries {
			entry(&svc.entries[i])
		}
		if svc.Steering == SteerNone && (len(svc.entries) != 1 || &svc.entries[0] != &svc.plain[0]) {
			fail("plain service %s walks entries outside itself", svc.Name)
		}
		if svc.fallback != nil {
			entry(svc.fallback)
		}
		name := lookupName(svc.Name)
		z := s.Zones.Find(name)
		if z == nil {
			fail("service %s in no zone", svc.Name)
		}
		if r := z.Lookup(name, dns.TypeA); r.Kind != zones.Service || r.Service != svc.Ref {
			fail("zone answers %s with kind %v service %d, not service %d", name, r.Kind, r.Service, svc.Ref)
		}
	}
}

// twin is a snapshot of the Compiler and Load's snapshot of the same files, kept to check
// that later Loads leave the Compiler's alone.
type twin struct {
	step   string
	cs, ls *Snapshot
}

// checkTwins fails when an earlier snapshot of the Compiler changed since it was made.
func checkTwins(t *testing.T, step string, twins []twin) {
	t.Helper()
	for _, tw := range twins {
		if sameNumbers(tw.cs, tw.ls) && !equalSnaps(tw.cs, tw.ls) {
			t.Fatalf("%s: the snapshot of %s changed (reflect.DeepEqual)", step, tw.step)
		}
		if got, want := numberFree(tw.cs), numberFree(tw.ls); got != want {
			t.Fatalf("%s: the snapshot of %s changed:\nnow:\n%s\nthen (Load):\n%s", step, tw.step, got, want)
		}
	}
}

// editor makes random edits to a policy the way the admin API does: one managed document
// (pool-NAME.hcl or service-NAME.hcl, one block each) added, changed or removed, some of
// them invalid; now and then the operator's zone file rewritten on disk. A refused edit
// is undone, as the store keeps a write that does not validate out of the policy.
type editor struct {
	r        *rand.Rand
	opFiles  []File
	dir      string            // the managed documents' directory
	docs     map[string][]byte // managed documents by file name
	pools    []string          // every pool name that a service may refer to (some never exist)
	origin   string            // the zone services live in
	opSvcs   []string          // services of the operator's files, for duplicates
	zoneFile string            // the operator's zone file, "" if none
	// extra are operator files that edits add, change and remove: a geoip block of
	// either or both databases, and a zone below the services' zone.
	extra map[string][]byte
}

func newEditor(seed uint64, opFiles []File, managedDir string) *editor {
	e := &editor{r: rand.New(rand.NewPCG(seed, 1)), opFiles: opFiles, dir: managedDir, docs: map[string][]byte{},
		origin: "glb.example.com", extra: map[string][]byte{}}
	seen := map[string]bool{}
	re := regexp.MustCompile(`(?m)^(pool|service|zone)\b\s*(?:"([^"]*)")?`)
	fileRe := regexp.MustCompile(`(?m)^\s*file\s*=\s*"([^"]*)"`)
	for _, f := range opFiles {
		for _, m := range re.FindAllStringSubmatch(string(f.Data), -1) {
			switch m[1] {
			case "pool":
				if !seen[m[2]] {
					seen[m[2]] = true
					e.pools = append(e.pools, m[2])
				}
			case "service":
				e.opSvcs = append(e.opSvcs, m[2])
			case "zone":
				e.origin = m[2]
			}
		}
		if m := fileRe.FindStringSubmatch(string(f.Data)); m != nil && !filepath.IsAbs(m[1]) {
			e.zoneFile = filepath.Join(filepath.Dir(f.Name), m[1])
		}
	}
	for i := range 12 {
		e.pools = append(e.pools, fmt.Sprintf("mp%02d", i*7%12))
	}
	e.pools = append(e.pools, "nope")
	return e
}

// files is the policy as the store hands it to Load: the operator's files, then the
// managed documents in no particular order.
func (e *editor) files() []File {
	files := slices.Clone(e.opFiles)
	for name, data := range e.extra {
		files = append(files, File{Name: filepath.Join(filepath.Dir(e.opFiles[0].Name), name), Data: data})
	}
	for name, data := range e.docs {
		files = append(files, File{Name: filepath.Join(e.dir, name), Data: data})
	}
	e.r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	return files
}

// edit changes the policy and returns what it did and how to undo it.
func (e *editor) edit() (string, func()) {
	r := e.r
	switch x := r.IntN(100); {
	case x < 4:
		return "no change", func() {}
	case x < 8 && e.zoneFile != "":
		old, err := os.ReadFile(e.zoneFile)
		if err != nil {
			panic(err)
		}
		data := append(slices.Clone(old), fmt.Sprintf("zf%d IN A 192.0.2.%d\n", r.IntN(50), r.IntN(250)+1)...)
		if r.IntN(4) == 0 {
			data = append(data, "bad IN A 999.1.1.1\n"...) // an invalid zone file
		}
		if r.IntN(6) == 0 {
			data = append(data, fmt.Sprintf("svc%d IN A 192.0.2.9\n", r.IntN(8))...) // may clash with a service
		}
		writeFile(e.zoneFile, data)
		return "zone file", func() { writeFile(e.zoneFile, old) }
	case x < 14:
		return e.toggle()
	case x < 50:
		name := e.pools[r.IntN(len(e.pools)-1)]
		return e.put("pool-"+name+".hcl", e.pool(name))
	default:
		name := fmt.Sprintf("svc%d.%s", r.IntN(14), e.origin)
		switch r.IntN(20) {
		case 2, 3, 4:
			name = fmt.Sprintf("svc%d.sub.%s", r.IntN(4), e.origin) // in the sub zone when there is one
		case 0:
			name = "svc1.elsewhere.test" // outside every zone
		case 1:
			if len(e.opSvcs) > 0 {
				name = e.opSvcs[r.IntN(len(e.opSvcs))] // the operator's
			}
		}
		return e.put("service-"+name+".hcl", e.service(name))
	}
}

// toggle adds, changes or removes one of the extra operator files.
func (e *editor) toggle() (string, func()) {
	name, variants := "geoip-extra.hcl", []string{
		"geoip {\n  database = \"City.mmdb\"\n}\n",
		"geoip {\n  asn_database = \"ASN.mmdb\"\n}\n",
		"geoip {\n  database = \"City.mmdb\"\n  asn_database = \"ASN.mmdb\"\n}\n",
	}
	switch e.r.IntN(5) {
	case 0, 1:
		name, variants = "zone-sub.hcl", []string{fmt.Sprintf("zone \"sub.%s\" {\n  nameservers = [\"ns1.sub.%s\"]\n}\n", e.origin, e.origin)}
	case 2:
		// The services' zone again, in a file before the operator's: a duplicate.
		name, variants = "a-zone.hcl", []string{fmt.Sprintf("zone %q {\n  nameservers = [\"ns1.%s\"]\n}\n", e.origin, e.origin)}
	}
	old, had := e.extra[name]
	undo := func() {
		if had {
			e.extra[name] = old
		} else {
			delete(e.extra, name)
		}
	}
	if had && e.r.IntN(3) == 0 {
		delete(e.extra, name)
		return "remove " + name, undo
	}
	e.extra[name] = []byte(variants[e.r.IntN(len(variants))])
	return "put " + name, undo
}

// put adds, replaces or (one time in five, when it exists) removes a document.
func (e *editor) put(doc string, data []byte) (string, func()) {
	old, had := e.docs[doc]
	undo := func() {
		if had {
			e.docs[doc] = old
		} else {
			delete(e.docs, doc)
		}
	}
	if had && e.r.IntN(5) == 0 {
		delete(e.docs, doc)
		return "remove " + doc, undo
	}
	e.docs[doc] = data
	if had {
		return "change " + doc, undo
	}
	return "add " + doc, undo
}

const managedDocHeader = "# Managed by the glbdns admin API: edits here are kept, but the API overwrites them.\n"

// pool writes a pool document, one in ten invalid in some way.
func (e *editor) pool(name string) []byte {
	r := e.r
	var b strings.Builder
	b.WriteString(managedDocHeader)
	fmt.Fprintf(&b, "pool %q {\n", name)
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "  location = [%d, %d]\n", r.IntN(180)-90, r.IntN(360)-180)
	}
	if r.IntN(5) == 0 {
		fmt.Fprintf(&b, "  method = %q\n", []string{"round_robin", "weighted", "client_subnet_hash"}[r.IntN(3)])
	}
	if r.IntN(6) == 0 {
		fmt.Fprintf(&b, "  min_healthy = %d\n", r.IntN(4)+1) // may exceed the members
	}
	host := r.IntN(8) == 0
	for m := range r.IntN(5) {
		fmt.Fprintf(&b, "  member \"m%d\" {\n", m)
		switch {
		case host:
			fmt.Fprintf(&b, "    host = \"h%d.cdn.example.net\"\n", r.IntN(9))
		case r.IntN(4) == 0:
			fmt.Fprintf(&b, "    address = \"2001:db8::%x\"\n", r.IntN(4096)+1)
		default:
			fmt.Fprintf(&b, "    address = \"10.9.%d.%d\"\n", r.IntN(256), r.IntN(256))
		}
		fmt.Fprintf(&b, "    weight = %d\n", r.IntN(4))
		b.WriteString("  }\n")
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "  check \"http\" {\n    port = %d\n    path = \"/health\"\n  }\n", 8000+r.IntN(100))
	}
	switch r.IntN(30) {
	case 0:
		b.WriteString("  colour = \"red\"\n") // not an attribute
	case 1:
		b.WriteString("  member \"bad\" {\n    address = \"10.1.2\"\n  }\n")
	case 2:
		b.WriteString("  check \"tcp\" {\n  }\n") // no port
	case 3:
		return []byte(b.String()) // unclosed
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// service writes a service document over random pools, some of which do not exist or
// do not suit the policy.
func (e *editor) service(name string) []byte {
	r := e.r
	policies := []string{"round_robin", "weighted", "client_subnet_hash", "failover", "geo", "nearest"}
	policy := policies[r.IntN(len(policies))]
	pick := func() string {
		if r.IntN(15) == 0 {
			return "nope"
		}
		return e.pools[r.IntN(len(e.pools)-1)]
	}
	var pools []string
	for range r.IntN(3) + 1 {
		if p := pick(); !slices.Contains(pools, p) {
			pools = append(pools, p)
		}
	}
	var b strings.Builder
	b.WriteString(managedDocHeader)
	fmt.Fprintf(&b, "service %q {\n  policy = %q\n  pools = [%s]\n  ttl = %d\n", name, policy, quoteList(pools), 10+r.IntN(50))
	if r.IntN(5) == 0 {
		fmt.Fprintf(&b, "  when_all_down = \"fallback\"\n  fallback = %q\n", pick())
	}
	if policy == "geo" {
		match := []string{"countries = [\"GB\"]", "asns = [64500]", "networks = [\"192.0.2.0/24\"]"}[r.IntN(3)]
		fmt.Fprintf(&b, "  geo {\n    rule {\n      %s\n      pools = [%q]\n    }\n  }\n", match, pools[0])
	}
	if r.IntN(40) == 0 {
		b.WriteString("  answers = 99\n") // out of range
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func writeFile(path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		panic(err)
	}
}

// goldenOperatorFiles writes a golden case's files into a directory and returns its
// .hcl files, as ReadPath reads them.
func goldenOperatorFiles(t testing.TB, path string) (string, []File) {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		if f.Name != "want" && f.Name != "lookups" {
			writeFile(filepath.Join(dir, f.Name), f.Data)
		}
	}
	files, err := ReadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// runEdits loads steps random edits of the editor's policy through one Compiler and
// through Load, and compares them at every step.
func runEdits(t *testing.T, e *editor, steps int) (ok int) {
	t.Helper()
	cc := &Compiler{}
	var twins []twin
	prefilled := 0
	defer func() { t.Logf("%d of %d loads prefilled their name maps", prefilled, steps) }()
	for step := range steps {
		what, undo := "first load", func() {}
		if step > 0 {
			what, undo = e.edit()
		}
		label := fmt.Sprintf("step %d (%s)", step, what)
		files := e.files()
		cs, cd := cc.Load(files)
		ls, ld := Load(files)
		sameResult(t, label, cs, ls, cd, ld)
		checkTwins(t, label, twins)
		if cc.stats.prefilled {
			prefilled++
		}
		if cs == nil {
			undo()
			continue
		}
		ok++
		twins = append(twins, twin{label, cs, ls})
		if len(twins) > 3 {
			twins = twins[1:]
		}
	}
	return ok
}

// TestCompilerGolden runs random edit sequences over every golden policy, with the
// managed documents beside the operator's files (their names sort after them) and in a
// directory whose name sorts before them, so that the operator's pools are renumbered
// too.
func TestCompilerGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	steps := 300
	if testing.Short() || raceEnabled {
		steps = 100
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		n := steps
		if strings.HasPrefix(name, "err_") {
			n = 12 // the base policy is refused: every step compiles everything, and fails
		}
		for _, where := range []string{"beside", "before"} {
			t.Run(name+"/"+where, func(t *testing.T) {
				dir, op := goldenOperatorFiles(t, path)
				managed := dir
				if where == "before" {
					managed = filepath.Join(dir, "a-managed")
				}
				seed := uint64(len(name))<<8 | uint64(len(where))
				ok := runEdits(t, newEditor(seed, op, managed), n)
				t.Logf("%d of %d loads succeeded", ok, n)
			})
		}
	}
}

// TestCompilerGoldenChunked runs the golden edit sequences with every file cut at each
// top-level block, as TestGoldenChunked does for Load.
func TestCompilerGoldenChunked(t *testing.T) {
	defer func(n int) { chunkSize = n }(chunkSize)
	chunkSize = 1
	for _, name := range []string{"ok_full", "ok_geo"} {
		t.Run(name, func(t *testing.T) {
			dir, op := goldenOperatorFiles(t, filepath.Join("testdata", name+".txtar"))
			runEdits(t, newEditor(7, op, filepath.Join(dir, "a-managed")), 60)
		})
	}
}

// TestCompilerLarge runs random edits over a generated policy of managed documents (the
// store's shape: the operator's zone and zone file, one file per pool and service), with
// the edited documents among them.
func TestCompilerLarge(t *testing.T) {
	n, steps := 400, 120
	if testing.Short() || raceEnabled {
		n, steps = 100, 40
	}
	dir := t.TempDir()
	files := managedPolicy(t, dir, n, n)
	e := newEditor(3, files[:1], filepath.Join(dir, "managed"))
	e.origin = "glb.test"
	e.pools = append(e.pools[:0:0], "bench-00003", "bench-00011", "bench-00200", "mp00", "mp05", "mp09", "nope")
	for _, f := range files[1:] {
		e.docs[filepath.Base(f.Name)] = f.Data
	}
	ok := runEdits(t, e, steps)
	t.Logf("%d of %d loads succeeded", ok, steps)
}

// TestCompilerReuse checks that the Compiler does only the work a change needs, on the
// store's shape: one pool or service document changed, added or removed among many.
func TestCompilerReuse(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	files := managedPolicy(t, dir, n, n)
	cc := &Compiler{}
	load := func(step string, files []File) compileStats {
		t.Helper()
		cs, cd := cc.Load(files)
		ls, ld := Load(files)
		sameResult(t, step, cs, ls, cd, ld)
		if cs == nil {
			t.Fatalf("%s: %s", step, cd.Error())
		}
		return cc.stats
	}
	if st := load("first", files); st.parsed != len(files) || st.pools != n || st.services != n {
		t.Fatalf("first load compiled %+v", st)
	}
	poolFile := func(i int) int { return 1 + i }
	for _, tc := range []struct {
		name string
		edit func([]File) []File
		want compileStats
	}{
		{"nothing", func(f []File) []File { return f }, compileStats{zonesReused: 1, prefilled: true, stableMembers: true, stableRefs: true}},
		{"one pool's member moves", func(f []File) []File {
			f[poolFile(150)].Data = []byte(strings.Replace(string(f[poolFile(150)].Data), "address = \"10.", "address = \"10.1", 1))
			return f
		}, compileStats{parsed: 2, pools: 1, services: 1, zonesReused: 1, prefilled: true}}, // service 150 (failover over 150 and 151), parsed again
		{"one pool's member added", func(f []File) []File {
			f[poolFile(10)].Data = poolDoc(10, 3)
			return f
		}, compileStats{parsed: 2, pools: 1, services: 1, renumbered: n - 11, relinked: n - 11, zonesReused: 1, prefilled: true}}, // service 10 over 10 and 11
		{"one service added", func(f []File) []File {
			name := filepath.Join(dir, "managed", "service-s00100a.glb.test.hcl")
			return append(f, File{Name: name, Data: []byte(strings.Replace(string(serviceDoc(101, n)), "s00101", "s00100a", 1))})
		}, compileStats{parsed: 1, services: 1, zonesExtended: 1, prefilled: true, stableMembers: true, stableRefs: true}},
		{"one pool added", func(f []File) []File {
			name := filepath.Join(dir, "managed", "pool-bench-00100a.hcl")
			return append(f, File{Name: name, Data: []byte(strings.Replace(string(poolDoc(100, 2)), "bench-00100", "bench-00100a", 1))})
		}, compileStats{parsed: 1, pools: 1, zonesReused: 1, prefilled: true, stableMembers: true, stableRefs: true}},
		{"one service removed", func(f []File) []File {
			return slices.DeleteFunc(f, func(f File) bool { return strings.HasSuffix(f.Name, "s00100a.glb.test.hcl") })
		}, compileStats{zonesBuilt: 1, prefilled: true, stableMembers: true}}, // its Ref was the last, so no other moves
	} {
		files = tc.edit(slices.Clone(files))
		if st := load(tc.name, files); st != tc.want {
			t.Errorf("%s: compiled %+v, want %+v", tc.name, st, tc.want)
		}
	}
}

// TestCompilerStoreOrder loads a policy given in another order each time, as the store's
// map gives it: the Compiler sorts (through the last Load's positions), as Load does,
// parses nothing again, and leaves the caller's slice as it was.
func TestCompilerStoreOrder(t *testing.T) {
	files := managedPolicy(t, t.TempDir(), 50, 50)
	cc := &Compiler{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5 {
		r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		if i == 3 {
			files = append(files, File{Name: files[0].Name + ".new.hcl", Data: []byte("pool \"new\" {\n}\n")})
		}
		order := slices.Clone(files)
		cs, cd := cc.Load(files)
		ls, ld := Load(files)
		sameResult(t, fmt.Sprint("load ", i), cs, ls, cd, ld)
		if want := map[bool]int{true: 1, false: 0}[i == 3]; i > 0 && cc.stats.parsed != want {
			t.Errorf("load %d parsed %d files, want %d", i, cc.stats.parsed, want)
		}
		if !slices.EqualFunc(files, order, func(a, b File) bool { return a.Name == b.Name }) {
			t.Fatalf("load %d reordered the caller's files", i)
		}
	}
}

// TestCompilerSums: files given with their Sum match records by it, and the snapshot is
// Load's, Hash included; a file whose contents (and so Sum) changed is parsed again.
func TestCompilerSums(t *testing.T) {
	files := managedPolicy(t, t.TempDir(), 20, 20)
	for i := range files {
		files[i].Sum = sha256.Sum256(files[i].Data)
	}
	cc := &Compiler{}
	for i := range 3 {
		if i == 2 {
			f := &files[len(files)-1]
			f.Data = append(slices.Clone(f.Data), "\n# edited\n"...)
			f.Sum = sha256.Sum256(f.Data)
		}
		cs, cd := cc.Load(files)
		plain := slices.Clone(files)
		for j := range plain {
			plain[j].Sum = [sha256.Size]byte{}
		}
		ls, ld := Load(plain)
		sameResult(t, fmt.Sprint("load ", i), cs, ls, cd, ld)
		if cs == nil || cs.Hash != ls.Hash {
			t.Fatalf("load %d: hash differs from Load's", i)
		}
		if want := map[int]int{0: len(files), 1: 0, 2: 1}[i]; cc.stats.parsed != want {
			t.Errorf("load %d parsed %d files, want %d", i, cc.stats.parsed, want)
		}
	}
}

// TestCompilerDuplicateNames loads files of one name, which only Load's own handling
// covers: the Compiler hands them to it.
func TestCompilerDuplicateNames(t *testing.T) {
	dir, op := goldenOperatorFiles(t, "testdata/ok_full.txtar")
	files := append(slices.Clone(op), File{Name: filepath.Join(dir, "x.hcl"), Data: []byte("pool \"x1\" {\n}\n")},
		File{Name: filepath.Join(dir, "x.hcl"), Data: []byte("pool \"x2\" {\n}\n")})
	cc := &Compiler{}
	cs, cd := cc.Load(files)
	ls, ld := Load(files)
	if diagText(cd) != diagText(ld) || (cs == nil) != (ls == nil) {
		t.Fatalf("compiler %v %s, load %v %s", cs != nil, diagText(cd), ls != nil, diagText(ld))
	}
}

// FuzzCompiler adds an arbitrary document to a golden policy, then changes it to another,
// through a Compiler that loaded the policy before, and compares every Load with Load's.
func FuzzCompiler(f *testing.F) {
	fuzzSeeds(f)
	dir, op := goldenOperatorFiles(f, "testdata/ok_geo.txtar") // read only: documents are in memory
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := &Compiler{}
		doc := File{Name: filepath.Join(dir, "a-managed", "doc.hcl"), Data: data}
		var twins []twin
		for i, files := range [][]File{op, append(slices.Clone(op), doc), op,
			append(slices.Clone(op), doc, File{Name: filepath.Join(dir, "zz.hcl"), Data: data})} {
			step := fmt.Sprint("load ", i)
			cs, cd := cc.Load(files)
			ls, ld := Load(files)
			sameResult(t, step, cs, ls, cd, ld)
			checkTwins(t, step, twins)
			if cs != nil {
				twins = append(twins, twin{step, cs, ls})
			}
		}
	})
}

// TestCNAMELoopThroughService: a host-name service is a CNAME to its members' hosts, which
// the server chases, so a static CNAME to it from one of those hosts is a loop, refused at
// the record and the service; a host that ends in data is a chain, and a loop on one
// branch is found among several.
func TestCNAMELoopThroughService(t *testing.T) {
	const zone = `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
  record "loop1" {
    type   = "CNAME"
    values = ["loop2.glb.test."]
  }
  record "fine" {
    type   = "A"
    values = ["192.0.2.1"]
  }
}
`
	for _, tc := range []struct {
		name, hosts string
		loop        bool
	}{
		{"host ends in data", `member "a" { host = "fine.glb.test" }`, false},
		{"host outside our zones", `member "a" { host = "app.example.net" }`, false},
		{"host back to the CNAME", `member "a" { host = "loop1.glb.test" }`, true},
		{"one branch of two loops", `member "a" { host = "fine.glb.test" }
  member "b" { host = "loop1.glb.test" }`, true},
	} {
		src := zone + "pool \"p\" {\n  " + tc.hosts + "\n}\nservice \"loop2.glb.test\" {\n  pools = [\"p\"]\n}\n"
		_, diags := Load([]File{{Name: "test.hcl", Data: []byte(src)}})
		if got := diags.HasErrors(); got != tc.loop {
			t.Errorf("%s: errors %v, want %v: %s", tc.name, got, tc.loop, diags.Error())
			continue
		}
		if tc.loop && (!strings.Contains(diags.Error(), "CNAME loop") || !strings.Contains(diags.Error(), "service loop2.glb.test.") || !strings.Contains(diags.Error(), "loop1.glb.test. at test.hcl:")) {
			t.Errorf("%s: the diagnostic does not name the loop's record and service: %s", tc.name, diags.Error())
		}
	}
}

// TestCompilerAddsCNAMELoop: a Compiler's Load that only adds (stable numbers, the zone
// extended) skips the zone checks for services that answer addresses, which can close no
// CNAME loop, and still makes them for a host-name service, which can: its loop is
// refused as Load refuses it.
func TestCompilerAddsCNAMELoop(t *testing.T) {
	base := []File{{Name: "a.hcl", Data: []byte(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
  record "loop1" {
    type   = "CNAME"
    values = ["loop2.glb.test."]
  }
}
pool "addr" {
  member "a" { address = "192.0.2.1" }
}
service "first.glb.test" {
  pools = ["addr"]
}
`)}}
	for _, tc := range []struct {
		name, member string
		loop         bool
	}{
		{"address service at the CNAME's target", `address = "192.0.2.2"`, false},
		{"host-name service back to the CNAME", `host = "loop1.glb.test"`, true},
	} {
		cc := &Compiler{}
		if _, diags := cc.Load(base); diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		files := append(slices.Clone(base),
			File{Name: "b-pool.hcl", Data: []byte("pool \"p\" {\n  member \"a\" { " + tc.member + " }\n}\n")},
			File{Name: "c-service.hcl", Data: []byte("service \"loop2.glb.test\" {\n  pools = [\"p\"]\n}\n")})
		cs, cd := cc.Load(files)
		ls, ld := Load(files)
		sameResult(t, tc.name, cs, ls, cd, ld)
		if !cc.stats.stableRefs || cc.stats.zonesExtended != 1 {
			t.Errorf("%s: compiled %+v, want the services' numbers kept and the zone extended", tc.name, cc.stats)
		}
		if got := cd.HasErrors(); got != tc.loop {
			t.Errorf("%s: errors %v, want %v: %s", tc.name, got, tc.loop, cd.Error())
		}
	}
}
