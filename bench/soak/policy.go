package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The names the soak serves and queries; bench/soak.sh gives dnsperf the same ones.
const (
	zoneName   = "soak.test"
	svcName    = "svc.soak.test."
	staticName = "static.soak.test."
	extraName  = "extra.soak.test." // a static record that valid edits add and remove
	nxName     = "nx.soak.test."
	answersN   = 2 // the service's answers: distinct members per answer
)

// version is one valid policy: what glbdns must answer once it is loaded.
type version struct {
	n       int
	weights []int    // per backend; 0 = out of rotation
	static  []string // static.soak.test A, sorted
	extra   []string // extra.soak.test A, sorted; nil: no such name (NXDOMAIN)
	from    time.Time
	until   time.Time // zero while it is the current version
}

// render writes v as HCL. broken makes it invalid in one of two ways, both refused whole:
// a syntax error (an unclosed block) or a service that names an undefined pool.
func render(v *version, bs []*backend, broken int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# soak policy version %d\nzone %q {\n  nameservers = [\"ns1.%s\"]\n", v.n, zoneName, zoneName)
	sb.WriteString("  record \"ns1\" {\n    type   = \"A\"\n    values = [\"192.0.2.53\"]\n  }\n")
	fmt.Fprintf(&sb, "  record \"static\" {\n    type   = \"A\"\n    values = [%s]\n    ttl    = 5\n  }\n", quoted(v.static))
	if v.extra != nil {
		fmt.Fprintf(&sb, "  record \"extra\" {\n    type   = \"A\"\n    values = [%s]\n    ttl    = 5\n  }\n", quoted(v.extra))
	}
	sb.WriteString("}\n\npool \"web\" {\n")
	sb.WriteString("  check \"http\" {\n    path     = \"/healthz\"\n    interval = \"1s\"\n    timeout  = \"500ms\"\n    rise     = 2\n    fall     = 2\n  }\n")
	for i, b := range bs {
		fmt.Fprintf(&sb, "  member \"m%d\" {\n    address = %q\n    weight  = %d\n    check \"http\" {\n      port = %d\n    }\n  }\n", i, b.ip, v.weights[i], b.port)
	}
	if broken == 1 {
		sb.WriteString("  member \"broken\" {\n    address = \"192.0.2.99\"\n") // unclosed: a syntax error
	}
	sb.WriteString("}\n\n")
	pool := "web"
	if broken == 2 {
		pool = "wbe" // undefined: a semantic error with a "did you mean"
	}
	fmt.Fprintf(&sb, "service %q {\n  policy        = \"weighted\"\n  pools         = [%q]\n  answers       = %d\n  ttl           = 5\n  when_all_down = \"all\"\n}\n",
		strings.TrimSuffix(svcName, "."), pool, answersN)
	return sb.String()
}

func quoted(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// policyFile is the soak's policy file and the history of its valid versions.
type policyFile struct {
	path string
	bs   []*backend

	mu       sync.Mutex
	versions []*version
}

// next is the version after cur: new weights (at most one member at 0), a new static
// value, and the extra record added or removed every other version.
func next(cur *version, n int, rng *rand.Rand) *version {
	v := &version{n: n, weights: make([]int, len(cur.weights))}
	zero := -1
	if rng.IntN(3) == 0 {
		zero = rng.IntN(len(v.weights))
	}
	for i := range v.weights {
		v.weights[i] = 1 + rng.IntN(5)
		if i == zero {
			v.weights[i] = 0
		}
	}
	v.static = []string{fmt.Sprintf("192.0.2.%d", 100+n%100), fmt.Sprintf("198.51.100.%d", n%250)}
	slices.Sort(v.static)
	if cur.extra == nil {
		v.extra = []string{fmt.Sprintf("203.0.113.%d", n%250)}
	}
	return v
}

// write replaces the policy file whole: a new file renamed over the old one, as editors
// save, so that glbdns's and healthd's watches never read half a file. The file name
// does not end in .hcl until the rename, so the watch does not load it half-written.
func (p *policyFile) write(body string) (before, after time.Time, err error) {
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return time.Time{}, time.Time{}, err
	}
	before = time.Now()
	err = os.Rename(tmp, p.path)
	return before, time.Now(), err
}

// install writes v and records it as the current version: glbdns may serve it from the
// moment before the rename, and the previous one until the moment after.
func (p *policyFile) install(v *version) error {
	before, after, err := p.write(render(v, p.bs, 0))
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v.from = before
	if len(p.versions) > 0 {
		p.versions[len(p.versions)-1].until = after
	}
	p.versions = append(p.versions, v)
	return nil
}

// writeBroken writes v made invalid; the current version stays what glbdns must serve.
func (p *policyFile) writeBroken(v *version, how int) error {
	_, _, err := p.write(render(v, p.bs, how))
	return err
}

func (p *policyFile) current() *version {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.versions[len(p.versions)-1]
}

// candidates are the versions glbdns may have served an answer from, for a query sent
// at sent and answered at recv: those current at some moment of [sent-window, recv].
// window covers the watch's debounce and the compile after a rename.
func (p *policyFile) candidates(sent, recv time.Time, window time.Duration) []*version {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*version
	for _, v := range p.versions {
		if v.from.After(recv) {
			continue
		}
		if !v.until.IsZero() && v.until.Add(window).Before(sent) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// newPolicyFile writes the first version, every member at weight 1, to dir/soak.hcl.
func newPolicyFile(dir string, bs []*backend) (*policyFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &policyFile{path: filepath.Join(dir, "soak.hcl"), bs: bs}
	v := &version{n: 0, weights: make([]int, len(bs)), static: []string{"192.0.2.100", "198.51.100.0"}}
	for i := range v.weights {
		v.weights[i] = 1
	}
	return p, p.install(v)
}
