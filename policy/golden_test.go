package policy

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"
	"golang.org/x/tools/txtar"

	"github.com/glbdns/glbdns/zones"
)

var update = flag.Bool("update", false, "rewrite the want section of testdata/*.txtar golden files")

// TestGolden loads every testdata/*.txtar case, caddy style: the archive's files (*.hcl,
// zone files) are written to a directory and loaded with LoadPath; the "want" file holds
// the compiled snapshot as JSON, or the expected errors as "file:line:col: summary: detail"
// lines. An optional "lookups" file lists "qname qtype" queries whose zone answers are
// added to the JSON, so that records and zone files are checked too.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) { golden(t, path) })
	}
}

// TestGoldenChunked runs the golden cases again with every file cut into chunks at each
// top-level block (see hclparse.ParseFiles): the snapshots and diagnostics must be the same as
// with whole-file parsing, whether the chunks are used or a parse error sends the file
// back to a whole-file parse.
func TestGoldenChunked(t *testing.T) {
	if *update {
		t.Skip("golden files are written by TestGolden")
	}
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	defer func(n int) { chunkSize = n }(chunkSize)
	chunkSize = 1
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) { golden(t, path) })
	}
}

func golden(t *testing.T, path string) {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var want, lookups string
	wantIdx := -1
	for i, f := range ar.Files {
		switch f.Name {
		case "want":
			want, wantIdx = string(f.Data), i
		case "lookups":
			lookups = string(f.Data)
		default:
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f.Name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := render(t, dir, lookups)
	if *update {
		if wantIdx < 0 {
			ar.Files = append(ar.Files, txtar.File{Name: "want"})
			wantIdx = len(ar.Files) - 1
		}
		ar.Files[wantIdx].Data = []byte(got)
		if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
	}
}

func render(t *testing.T, dir, lookups string) string {
	t.Helper()
	snap, diags := LoadPath(dir)
	if diags.HasErrors() {
		if snap != nil {
			t.Errorf("snapshot returned along with errors")
		}
		return diagLines(diags, dir)
	}
	if snap == nil {
		t.Fatal("no snapshot and no errors")
	}
	v := snapshotView(snap, dir)
	for _, line := range strings.Split(strings.TrimSpace(lookups), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v.Lookups = append(v.Lookups, lookupView(snap.Zones, f[0], f[1]))
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func diagLines(diags hcl.Diagnostics, dir string) string {
	var b strings.Builder
	for _, d := range diags {
		pos := "-"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", rel(d.Subject.Filename, dir), d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s: %s\n", pos, d.Summary, strings.ReplaceAll(d.Detail, dir+string(filepath.Separator), ""))
	}
	return b.String()
}

func rel(name, dir string) string {
	if r, err := filepath.Rel(dir, name); err == nil {
		return r
	}
	return name
}

// The JSON view of a snapshot: deterministic (declaration order, sorted maps), with
// members by identity rather than pointer.
type (
	jsonSnapshot struct {
		Files    []string      `json:"files"`
		GeoIP    *jsonGeoIP    `json:"geoip,omitempty"`
		Zones    []jsonZone    `json:"zones"`
		Pools    []jsonPool    `json:"pools"`
		Services []jsonService `json:"services"`
		Lookups  []jsonLookup  `json:"lookups,omitempty"`
	}
	jsonZone struct {
		Origin string   `json:"origin"`
		SOA    string   `json:"soa"`
		NS     []string `json:"ns"`
	}
	jsonGeoIP struct {
		Database    string `json:"database,omitempty"`
		ASNDatabase string `json:"asn_database,omitempty"`
	}
	jsonPool struct {
		Name       string       `json:"name"`
		Region     string       `json:"region,omitempty"`
		Location   []float64    `json:"location,omitempty"`
		Bias       float64      `json:"bias,omitempty"`
		Method     string       `json:"method,omitempty"`
		MinHealthy string       `json:"min_healthy,omitempty"` // only when not the default 1
		Members    []jsonMember `json:"members"`
		Checks     []jsonCheck  `json:"checks,omitempty"`
	}
	jsonMember struct {
		Index  int         `json:"index"`
		ID     string      `json:"id"`
		Addr   string      `json:"addr,omitempty"`
		Host   string      `json:"host,omitempty"`
		Weight uint32      `json:"weight"`
		Port   uint16      `json:"port,omitempty"`
		Checks []jsonCheck `json:"checks,omitempty"`
	}
	jsonService struct {
		Ref         int      `json:"ref"`
		Name        string   `json:"name"`
		Zone        string   `json:"zone"`
		Method      string   `json:"method"`
		Pools       []string `json:"pools"`
		TTL         uint32   `json:"ttl"`
		Answers     int      `json:"answers"`
		WhenAllDown string   `json:"when_all_down"`
		Fallback    string   `json:"fallback,omitempty"`
		HashPrefix4 int      `json:"hash_prefix_v4"`
		HashPrefix6 int      `json:"hash_prefix_v6"`
		Steering    string   `json:"steering,omitempty"`
		NeedsGeo    bool     `json:"needs_geo,omitempty"`
		// Per pool of a steering service: "name method need4/need6/needHost".
		Steer []string `json:"steer,omitempty"`
		// SRV lists "member weight port target" per member, when the service answers SRV.
		SRV []string `json:"srv,omitempty"`
		Geo *jsonGeo `json:"geo,omitempty"`
	}
	jsonGeo struct {
		Rules      []string       `json:"rules"`
		Countries  map[string]int `json:"countries,omitempty"`
		Continents map[string]int `json:"continents,omitempty"`
		ASNs       map[uint32]int `json:"asns,omitempty"`
		Networks   []string       `json:"networks,omitempty"` // longest first: "prefix -> rule"
		Default    []string       `json:"default"`
	}
	jsonLookup struct {
		Query   string   `json:"query"`
		Kind    string   `json:"kind"`
		Answer  []string `json:"answer,omitempty"`
		Service *int     `json:"service,omitempty"`
	}
)

func snapshotView(s *Snapshot, dir string) jsonSnapshot {
	var v jsonSnapshot
	for _, f := range s.Files {
		v.Files = append(v.Files, rel(f, dir))
	}
	for _, z := range s.Zones.Zones() {
		jz := jsonZone{Origin: z.Origin(), SOA: z.SOA().String()}
		for _, rr := range z.NS() {
			jz.NS = append(jz.NS, rr.String())
		}
		v.Zones = append(v.Zones, jz)
	}
	if city, asn := s.GeoIPPaths(); city != "" || asn != "" {
		// Paths inside the test's directory are shown relative to it; others as they are.
		inDir := func(p string) string {
			if strings.HasPrefix(p, dir+string(filepath.Separator)) {
				return rel(p, dir)
			}
			return p
		}
		v.GeoIP = &jsonGeoIP{Database: inDir(city), ASNDatabase: inDir(asn)}
	}
	for _, p := range s.Pools {
		jp := jsonPool{Name: p.Name, Region: p.Region, Checks: checksView(p.Checks), Bias: p.Bias}
		if p.HasLocation {
			jp.Location = []float64{p.Lat, p.Lon}
		}
		if p.HasMethod {
			jp.Method = p.Method.String()
		}
		switch {
		case p.MinHealthyPercent > 0:
			jp.MinHealthy = fmt.Sprintf("%d%%", p.MinHealthyPercent)
		case p.MinHealthy != 1:
			jp.MinHealthy = fmt.Sprint(p.MinHealthy)
		}
		for _, m := range p.Members {
			jm := jsonMember{Index: m.Index, ID: m.ID(), Host: m.Host, Weight: m.Weight, Port: m.Port}
			if m.Addr.IsValid() {
				jm.Addr = m.Addr.String()
			}
			// Show the member's checks only where they differ from the pool's.
			same := len(m.Checks) == len(p.Checks)
			for i := 0; same && i < len(m.Checks); i++ {
				same = m.Checks[i] == p.Checks[i]
			}
			if !same {
				jm.Checks = checksView(m.Checks)
			}
			jp.Members = append(jp.Members, jm)
		}
		v.Pools = append(v.Pools, jp)
	}
	for _, svc := range s.Services {
		js := jsonService{Ref: int(svc.Ref), Name: svc.Name, Zone: svc.Zone, Method: svc.Method.String(),
			TTL: svc.TTL, Answers: svc.Answers, WhenAllDown: svc.WhenAllDown.String(),
			HashPrefix4: svc.HashPrefix4, HashPrefix6: svc.HashPrefix6}
		for _, p := range svc.Pools {
			js.Pools = append(js.Pools, p.Name)
		}
		if svc.Fallback != nil {
			js.Fallback = svc.Fallback.Name
		}
		js.Steering, js.NeedsGeo = svc.Steering.String(), svc.NeedsGeo
		for i := range svc.entries {
			sp := &svc.entries[i]
			if sp.pool == nil {
				break // a plain service's one entry: its members, listed under the pools
			}
			js.Steer = append(js.Steer, fmt.Sprintf("%s %s need %d/%d/%d", sp.pool.Name, sp.method, sp.need[famV4], sp.need[famV6], sp.need[famHost]))
		}
		svc.srvMembers(func(m *Member) {
			if w, port, target, ok := svc.SRV(m); ok {
				js.SRV = append(js.SRV, fmt.Sprintf("%s %d %d %s", m.ID(), w, port, target))
			}
		})
		if g := svc.geo; g != nil {
			js.Geo = geoView(svc, g)
		}
		v.Services = append(v.Services, js)
	}
	return v
}

var kindNames = map[zones.Kind]string{zones.Answer: "answer", zones.NoData: "nodata", zones.NXDomain: "nxdomain",
	zones.Referral: "referral", zones.CNAME: "cname", zones.Service: "service"}

func lookupView(set *zones.Set, qname, qtype string) jsonLookup {
	l := jsonLookup{Query: qname + " " + qtype}
	z := set.Find(qname)
	if z == nil {
		l.Kind = "refused"
		return l
	}
	res := z.Lookup(qname, dns.StringToType[qtype])
	l.Kind = kindNames[res.Kind]
	rrs := append(append([]dns.RR(nil), res.Answer...), res.Ns...)
	for _, rr := range rrs {
		l.Answer = append(l.Answer, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(l.Answer)
	if res.Kind == zones.Service {
		ref := int(res.Service)
		l.Service = &ref
	}
	return l
}

// jsonCheck is a Check with zero fields left out and durations as strings.
type jsonCheck struct {
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	Port             int               `json:"port"`
	Interval         string            `json:"interval"`
	Timeout          string            `json:"timeout"`
	Rise             int               `json:"rise"`
	Fall             int               `json:"fall"`
	Method           string            `json:"method,omitempty"`
	Path             string            `json:"path,omitempty"`
	Host             string            `json:"host,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
	ExpectStatus     []StatusRange     `json:"expect_status,omitempty"`
	ExpectBody       string            `json:"expect_body,omitempty"`
	ExpectBodyRegexp string            `json:"expect_body_regexp,omitempty"`
	ServerName       string            `json:"server_name,omitempty"`
	Insecure         bool              `json:"insecure,omitempty"`
	FollowRedirects  bool              `json:"follow_redirects,omitempty"`
	Send             string            `json:"send,omitempty"`
	Expect           string            `json:"expect,omitempty"`
	QName            string            `json:"qname,omitempty"`
	QType            string            `json:"qtype,omitempty"`
	ExpectRcode      string            `json:"expect_rcode,omitempty"`
	ExpectAnswer     string            `json:"expect_answer,omitempty"`
}

func checksView(cs []*Check) []jsonCheck {
	var out []jsonCheck
	for _, c := range cs {
		out = append(out, jsonCheck{c.Name, c.Type, c.Port, c.Interval.String(), c.Timeout.String(), c.Rise, c.Fall,
			c.Method, c.Path, c.Host, c.Headers, c.ExpectStatus, c.ExpectBody, c.ExpectBodyRegexp, c.ServerName,
			c.Insecure, c.FollowRedirects, c.Send, c.Expect, c.QName, c.QType, c.ExpectRcode, c.ExpectAnswer})
	}
	return out
}

func geoView(svc *Service, g *geoTable) *jsonGeo {
	names := func(order []uint8) []string {
		out := []string{}
		for _, i := range order {
			out = append(out, svc.Pools[i].Name)
		}
		return out
	}
	jg := &jsonGeo{Default: names(g.orders[len(g.rules)])}
	for i, r := range g.rules {
		jg.Rules = append(jg.Rules, fmt.Sprintf("%d: %s", i+1, strings.Join(r.pools, ",")))
	}
	for _, t := range []struct {
		table *[26 * 26]uint16
		dst   *map[string]int
	}{{&g.country, &jg.Countries}, {&g.continent, &jg.Continents}} {
		for i, r := range t.table {
			if r != 0 {
				if *t.dst == nil {
					*t.dst = map[string]int{}
				}
				(*t.dst)[string([]byte{byte('A' + i/26), byte('A' + i%26)})] = int(r)
			}
		}
	}
	for asn, r := range g.asn {
		if jg.ASNs == nil {
			jg.ASNs = map[uint32]int{}
		}
		jg.ASNs[asn] = int(r)
	}
	for _, n := range g.nets {
		jg.Networks = append(jg.Networks, fmt.Sprintf("%s -> %d", n.p, n.rule))
	}
	return jg
}
