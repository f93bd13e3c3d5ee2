package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/zones"
)

// downSet is a Health that reports the members whose Index is set as down.
type downSet []bool

func (d downSet) Up(m *Member) bool { return m.Index >= len(d) || !d[m.Index] }

const testZone = `
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
}
`

// load compiles an HCL policy (with testZone prepended) or fails the test.
func load(t testing.TB, src string) *Snapshot {
	t.Helper()
	snap, diags := Load([]File{{Name: "test.hcl", Data: []byte(testZone + src)}})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return snap
}

// service returns the snapshot's service of that name, with seeded randomness.
func service(t testing.TB, snap *Snapshot, name string) *Service {
	t.Helper()
	for _, s := range snap.Services {
		if s.Name == name {
			s.rand = rand.New(rand.NewPCG(1, 2))
			return s
		}
	}
	t.Fatalf("no service %q", name)
	return nil
}

func client4(s string) Client {
	a := netip.MustParseAddr(s)
	return Client{Addr: a, SourcePrefix: a.BitLen()}
}

const fourMembers = `
pool "p" {
  member "m0" {
    address = "192.0.2.10"
  }
  member "m1" {
    address = "192.0.2.11"
  }
  member "m2" {
    address = "192.0.2.12"
  }
  member "m3" {
    address = "192.0.2.13"
  }
  member "v6" {
    address = "2001:db8::1"
  }
}
`

func TestRoundRobin(t *testing.T) {
	snap := load(t, fourMembers+`
service "rr.glb.example.com" {
  pools = ["p"]
}
service "rr2.glb.example.com" {
  pools   = ["p"]
  answers = 2
}`)
	t.Run("spread", func(t *testing.T) {
		svc := service(t, snap, "rr.glb.example.com.")
		counts := map[string]int{}
		var dst []*Member
		for range 4000 {
			sel := svc.Select(client4("198.51.100.1"), dns.TypeA, AllUp{}, dst)
			if len(sel.Members) != 1 || sel.AllDown || sel.Scope != 0 {
				t.Fatalf("selection %+v", sel)
			}
			counts[sel.Members[0].Name]++
			dst = sel.Members
		}
		for _, n := range []string{"m0", "m1", "m2", "m3"} {
			if c := counts[n]; c < 950 || c > 1050 {
				t.Errorf("%s answered %d times of 4000, want 1000 ± 50", n, c)
			}
		}
	})
	t.Run("consecutive answers", func(t *testing.T) {
		svc := service(t, snap, "rr2.glb.example.com.")
		seen := map[string]int{}
		for i := range 8 {
			sel := svc.Select(client4("198.51.100.1"), dns.TypeA, AllUp{}, nil)
			if len(sel.Members) != 2 || sel.Members[0] == sel.Members[1] {
				t.Fatalf("query %d: %v", i, names(sel.Members))
			}
			a, b := sel.Members[0].Index, sel.Members[1].Index
			if b != (a+1)%4 {
				t.Errorf("query %d: %v are not consecutive", i, names(sel.Members))
			}
			seen[sel.Members[0].Name]++
		}
		if len(seen) != 4 {
			t.Errorf("cursor did not rotate over all members: %v", seen)
		}
	})
	t.Run("the fallback pool rotates its own cursor", func(t *testing.T) {
		snap := load(t, fourMembers+`
pool "sorry" {
  member "s1" {
    address = "192.0.2.100"
  }
  member "s2" {
    address = "192.0.2.101"
  }
}
service "fb.glb.example.com" {
  pools         = ["p"]
  when_all_down = "fallback"
  fallback      = "sorry"
}`)
		svc := service(t, snap, "fb.glb.example.com.")
		down := downSet{true, true, true, true}
		var got []string
		for _, h := range []Health{AllUp{}, AllUp{}, down, down, down, AllUp{}, AllUp{}} {
			got = append(got, svc.Select(client4("198.51.100.1"), dns.TypeA, h, nil).Members[0].Name)
		}
		// The service's rotation resumes where it stopped (m2), whatever the fallback
		// answered meanwhile.
		if want := "m0 m1 s1 s2 s1 m2 m3"; strings.Join(got, " ") != want {
			t.Errorf("answers %q, want %q", strings.Join(got, " "), want)
		}
	})
	t.Run("skips down members", func(t *testing.T) {
		svc := service(t, snap, "rr.glb.example.com.")
		h := downSet{false, true, false, true}
		for range 100 {
			sel := svc.Select(client4("198.51.100.1"), dns.TypeA, h, nil)
			if n := sel.Members[0].Name; n != "m0" && n != "m2" {
				t.Fatalf("answered down member %s", n)
			}
		}
	})
}

func TestWeighted(t *testing.T) {
	snap := load(t, `
pool "p" {
  member "heavy" {
    address = "192.0.2.1"
    weight  = 3
  }
  member "light" {
    address = "192.0.2.2"
  }
  member "drained" {
    address = "192.0.2.3"
    weight  = 0
  }
}
pool "zero" {
  member "z1" {
    address = "192.0.2.4"
    weight  = 0
  }
  member "z2" {
    address = "192.0.2.5"
    weight  = 0
  }
}
service "w.glb.example.com" {
  policy = "weighted"
  pools  = ["p"]
}
service "w2.glb.example.com" {
  policy  = "weighted"
  pools   = ["p"]
  answers = 3
}
service "z.glb.example.com" {
  policy        = "weighted"
  pools         = ["zero"]
  when_all_down = "servfail"
}`)
	t.Run("3:1", func(t *testing.T) {
		svc := service(t, snap, "w.glb.example.com.")
		counts := map[string]int{}
		var dst []*Member
		for range 10000 {
			sel := svc.Select(client4("198.51.100.1"), dns.TypeA, AllUp{}, dst)
			counts[sel.Members[0].Name]++
			dst = sel.Members
		}
		if counts["drained"] != 0 {
			t.Errorf("drained member answered %d times", counts["drained"])
		}
		if share := float64(counts["heavy"]) / 10000; share < 0.72 || share > 0.78 {
			t.Errorf("heavy share %.4f, want 0.75 ± 0.03 (%v)", share, counts)
		}
	})
	t.Run("distinct, never drained", func(t *testing.T) {
		svc := service(t, snap, "w2.glb.example.com.")
		for range 200 {
			sel := svc.Select(client4("198.51.100.1"), dns.TypeA, AllUp{}, nil)
			if len(sel.Members) != 2 || sel.Members[0] == sel.Members[1] {
				t.Fatalf("want 2 distinct non-drained members, got %v", names(sel.Members))
			}
		}
	})
	t.Run("all weight 0 is all down", func(t *testing.T) {
		svc := service(t, snap, "z.glb.example.com.")
		sel := svc.Select(client4("198.51.100.1"), dns.TypeA, AllUp{}, nil)
		if !sel.ServFail || !sel.AllDown {
			t.Errorf("selection %+v, want ServFail and AllDown", sel)
		}
	})
}

func TestClientSubnetHash(t *testing.T) {
	snap := load(t, fourMembers+`
service "h.glb.example.com" {
  policy = "client_subnet_hash"
  pools  = ["p"]
}
service "h20.glb.example.com" {
  policy         = "client_subnet_hash"
  pools          = ["p"]
  hash_prefix_v4 = 20
  answers        = 2
}`)
	svc := service(t, snap, "h.glb.example.com.")
	subnet := func(i int) Client { return client4(fmt.Sprintf("10.%d.%d.7", i/256, i%256)) }
	pick := func(c Client, h Health) *Member { return svc.Select(c, dns.TypeA, h, nil).Members[0] }

	t.Run("same /24 same answer", func(t *testing.T) {
		for i := range 50 {
			want := pick(subnet(i), AllUp{})
			for host := range 256 {
				c := client4(fmt.Sprintf("10.%d.%d.%d", i/256, i%256, host))
				if got := pick(c, AllUp{}); got != want {
					t.Fatalf("subnet %d host %d: %s, want %s", i, host, got.ID(), want.ID())
				}
			}
		}
	})
	t.Run("balanced and consistent", func(t *testing.T) {
		const n = 1000
		before := make([]*Member, n)
		counts := map[string]int{}
		for i := range n {
			before[i] = pick(subnet(i), AllUp{})
			counts[before[i].Name]++
		}
		for _, name := range []string{"m0", "m1", "m2", "m3"} {
			if c := counts[name]; c < 150 || c > 350 {
				t.Errorf("%s holds %d of %d subnets, want about 250", name, c, n)
			}
		}
		down := downSet{false, false, true} // m2 down
		moved := 0
		for i := range n {
			after := pick(subnet(i), down)
			if after == before[i] {
				continue
			}
			moved++
			if before[i].Name != "m2" {
				t.Errorf("subnet %d moved from up member %s to %s", i, before[i].ID(), after.ID())
			}
		}
		if moved > n*30/100 || moved != counts["m2"] {
			t.Errorf("%d of %d subnets moved, want exactly m2's %d (at most 30%%)", moved, n, counts["m2"])
		}
		for i := range n {
			if got := pick(subnet(i), AllUp{}); got != before[i] {
				t.Fatalf("subnet %d did not come back to %s after recovery (got %s)", i, before[i].ID(), got.ID())
			}
		}
	})
	t.Run("scope", func(t *testing.T) {
		svc20 := service(t, snap, "h20.glb.example.com.")
		for _, tc := range []struct {
			name   string
			svc    *Service
			client Client
			scope  int
		}{
			{"no ECS", svc, client4("192.0.2.1"), 0},
			{"ECS /24", svc, Client{Addr: netip.MustParseAddr("192.0.2.0"), SourcePrefix: 24, ECS: true}, 24},
			{"ECS /32 truncated to /24", svc, Client{Addr: netip.MustParseAddr("192.0.2.1"), SourcePrefix: 32, ECS: true}, 24},
			{"ECS /16 coarser than prefix", svc, Client{Addr: netip.MustParseAddr("192.0.0.0"), SourcePrefix: 16, ECS: true}, 16},
			{"ECS /24 with prefix 20", svc20, Client{Addr: netip.MustParseAddr("192.0.2.0"), SourcePrefix: 24, ECS: true}, 20},
			{"ECS IPv6 /64 truncated to /56", svc, Client{Addr: netip.MustParseAddr("2001:db8:1:2::"), SourcePrefix: 64, ECS: true}, 56},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := tc.svc.Select(tc.client, dns.TypeA, AllUp{}, nil).Scope; got != tc.scope {
					t.Errorf("scope %d, want %d", got, tc.scope)
				}
			})
		}
	})
	t.Run("deterministic across processes", func(t *testing.T) {
		// Rendezvous identities are FNV-1a, not a per-process seeded hash: a fixed client
		// must land on the same member on every node and after every restart. These
		// values were computed once; they must never change.
		got := []string{}
		for _, a := range []string{"192.0.2.1", "198.51.100.1", "203.0.113.1", "10.1.2.3", "10.1.3.3", "10.1.4.3", "172.16.0.1", "100.64.0.1"} {
			got = append(got, pick(client4(a), AllUp{}).Name)
		}
		if want := goldenHashPicks; strings.Join(got, " ") != want {
			t.Errorf("picks %q, want %q", strings.Join(got, " "), want)
		}
	})
}

// goldenHashPicks is the rendezvous choice of four fixed clients over m0..m3.
const goldenHashPicks = "m3 m3 m2 m3 m0 m1 m1 m0"

func TestWhenAllDown(t *testing.T) {
	snap := load(t, `
pool "p" {
  member "a" {
    address = "192.0.2.1"
  }
  member "b" {
    address = "192.0.2.2"
  }
  member "c" {
    address = "192.0.2.3"
    weight  = 0
  }
}
pool "sorry" {
  member "s1" {
    address = "192.0.2.100"
  }
  member "s2" {
    address = "192.0.2.101"
  }
}
service "all.glb.example.com" {
  pools   = ["p"]
  answers = 3
}
service "sf.glb.example.com" {
  pools         = ["p"]
  when_all_down = "servfail"
}
service "fb.glb.example.com" {
  pools         = ["p"]
  answers       = 2
  when_all_down = "fallback"
  fallback      = "sorry"
}`)
	allDown := downSet{true, true, true, true, true}
	onlyS1 := downSet{true, true, true, false, true}
	for _, tc := range []struct {
		name     string
		svc      string
		h        Health
		want     string // sorted member names
		servfail bool
		alldown  bool
	}{
		{"all: usable", "all.glb.example.com.", downSet{true}, "b", false, false},
		{"all: fail open without drained", "all.glb.example.com.", allDown, "a b", false, true},
		{"servfail", "sf.glb.example.com.", allDown, "", true, true},
		{"servfail not when one is up", "sf.glb.example.com.", downSet{true}, "b", false, false},
		{"fallback usable members", "fb.glb.example.com.", onlyS1, "s1", false, true},
		{"fallback all down answers all", "fb.glb.example.com.", allDown, "s1 s2", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := service(t, snap, tc.svc)
			sel := svc.Select(client4("192.0.2.200"), dns.TypeA, tc.h, nil)
			if got := sortedNames(sel.Members); got != tc.want || sel.ServFail != tc.servfail || sel.AllDown != tc.alldown {
				t.Errorf("got %q servfail=%v alldown=%v, want %q servfail=%v alldown=%v",
					got, sel.ServFail, sel.AllDown, tc.want, tc.servfail, tc.alldown)
			}
		})
	}
}

func TestFamiliesAndCNAME(t *testing.T) {
	snap := load(t, fourMembers+`
pool "cdn" {
  member "edge" {
    host = "Edge.CDN.example.net"
  }
}
service "v4.glb.example.com" {
  pools         = ["p"]
  answers       = 8
  when_all_down = "servfail"
}
service "cdn.glb.example.com" {
  pools = ["cdn"]
}`)
	v4 := service(t, snap, "v4.glb.example.com.")
	cdn := service(t, snap, "cdn.glb.example.com.")
	for _, tc := range []struct {
		name  string
		svc   *Service
		qtype uint16
		want  string
		cname bool
	}{
		{"A picks IPv4 only", v4, dns.TypeA, "m0 m1 m2 m3", false},
		{"AAAA picks IPv6 only", v4, dns.TypeAAAA, "v6", false},
		{"MX is NODATA", v4, dns.TypeMX, "", false},
		{"CNAME for A", cdn, dns.TypeA, "edge", true},
		{"CNAME for MX", cdn, dns.TypeMX, "edge", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := tc.svc.Select(client4("192.0.2.200"), tc.qtype, AllUp{}, nil)
			if got := sortedNames(sel.Members); got != tc.want || sel.CNAME != tc.cname || sel.ServFail {
				t.Errorf("got %q cname=%v servfail=%v, want %q cname=%v", got, sel.CNAME, sel.ServFail, tc.want, tc.cname)
			}
			if sel.CNAME && sel.Members[0].Host != "edge.cdn.example.net." {
				t.Errorf("CNAME target %q", sel.Members[0].Host)
			}
		})
	}
	t.Run("NODATA of the family is not all-down", func(t *testing.T) {
		// Only IPv4 members, all down: AAAA is still NODATA, not SERVFAIL.
		snap := load(t, `
pool "p" {
  member "a" {
    address = "192.0.2.1"
  }
}
service "x.glb.example.com" {
  pools         = ["p"]
  when_all_down = "servfail"
}`)
		sel := service(t, snap, "x.glb.example.com.").Select(client4("192.0.2.9"), dns.TypeAAAA, downSet{true}, nil)
		if sel.ServFail || len(sel.Members) != 0 {
			t.Errorf("selection %+v, want NODATA", sel)
		}
	})
}

func TestSelectDoesNotAllocate(t *testing.T) {
	snap := load(t, fourMembers+`
service "rr.glb.example.com" {
  pools   = ["p"]
  answers = 2
}
service "w.glb.example.com" {
  policy  = "weighted"
  pools   = ["p"]
  answers = 2
}
service "h.glb.example.com" {
  policy  = "client_subnet_hash"
  pools   = ["p"]
  answers = 2
}`)
	c := Client{Addr: netip.MustParseAddr("192.0.2.0"), SourcePrefix: 24, ECS: true}
	var h Health = downSet{false, true} // converted once: boxing a slice allocates
	for _, svc := range snap.Services {
		t.Run(svc.Method.String(), func(t *testing.T) {
			dst := make([]*Member, 0, 8)
			if n := testing.AllocsPerRun(100, func() { dst = svc.Select(c, dns.TypeA, h, dst).Members }); n != 0 {
				t.Errorf("%v allocations per Select, want 0", n)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	snap := load(t, fourMembers+`
service "h.glb.example.com" {
  policy = "client_subnet_hash"
  pools  = ["p"]
}`)
	svc := service(t, snap, "h.glb.example.com.")
	c := Client{Addr: netip.MustParseAddr("198.51.100.0"), SourcePrefix: 24, ECS: true}
	ex := svc.Explain(c, dns.TypeA, downSet{true})
	want := svc.Select(c, dns.TypeA, downSet{true}, nil)
	if len(ex.Selection.Members) != 1 || ex.Selection.Members[0] != want.Members[0] {
		t.Fatalf("explain chose %v, select %v", names(ex.Selection.Members), names(want.Members))
	}
	if len(ex.Candidates) != 4 || ex.Candidates[0].Up || !ex.Candidates[1].Up {
		t.Errorf("candidates %+v", ex.Candidates)
	}
	var best Candidate
	for _, cand := range ex.Candidates {
		if cand.Up && cand.Score > best.Score {
			best = cand
		}
	}
	if !best.Chosen || best.Member != want.Members[0] {
		t.Errorf("highest usable score %s not chosen", best.Member.ID())
	}
	s := ex.String()
	for _, sub := range []string{"method    client_subnet_hash", "hash key  198.51.100.0/24", "p/m0", "down",
		"path      usable members", "scope     /24", "* p/" + want.Members[0].Name} {
		if !strings.Contains(s, sub) {
			t.Errorf("explain output lacks %q:\n%s", sub, s)
		}
	}
}

// TestLoadDirectory loads a directory of two .hcl files and a zone file, as glbdns does.
func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-zones.hcl", `
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
  file        = "zones/glb.zone"
}`)
	write("20-web.hcl", `
pool "web" {
  member "a" {
    address = "192.0.2.1"
  }
}
service "www.glb.example.com" {
  pools = ["web"]
}`)
	write("README.txt", "not a policy file")
	if err := os.Mkdir(filepath.Join(dir, "zones"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("zones/glb.zone", "$ORIGIN glb.example.com.\nns1 IN A 192.0.2.53\n")

	snap, diags := LoadPath(dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(snap.Files) != 3 || !strings.HasSuffix(snap.Files[2], "glb.zone") {
		t.Errorf("files %v, want the two .hcl files and the zone file", snap.Files)
	}
	z := snap.Zones.Find("ns1.glb.example.com.")
	if z == nil {
		t.Fatal("zone not found")
	}
	if res := z.Lookup("ns1.glb.example.com.", dns.TypeA); res.Kind != zones.Answer || len(res.Answer) != 1 {
		t.Errorf("ns1 lookup %+v", res)
	}
	if res := z.Lookup("WWW.glb.example.com.", dns.TypeA); res.Kind != zones.Service || snap.Services[res.Service].Name != "www.glb.example.com." {
		t.Errorf("www lookup %+v", res)
	}
	again, _ := LoadPath(dir)
	if again.Hash != snap.Hash || len(snap.Hash) != 64 {
		t.Errorf("hash not stable: %s vs %s", snap.Hash, again.Hash)
	}
	write("zones/glb.zone", "$ORIGIN glb.example.com.\nns1 IN A 192.0.2.54\n")
	if changed, _ := LoadPath(dir); changed.Hash == snap.Hash {
		t.Error("hash did not change with the zone file")
	}
	t.Run("single file", func(t *testing.T) {
		_, diags := LoadPath(filepath.Join(dir, "20-web.hcl"))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "Service outside every zone") {
			t.Errorf("want the service outside every zone, got %v", diags)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if snap, diags := LoadPath(filepath.Join(dir, "nope")); snap != nil || !diags.HasErrors() {
			t.Error("loading a missing path succeeded")
		}
	})
}

func names(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func sortedNames(ms []*Member) string {
	n := names(ms)
	for i := range n {
		for j := i + 1; j < len(n); j++ {
			if n[j] < n[i] {
				n[i], n[j] = n[j], n[i]
			}
		}
	}
	return strings.Join(n, " ")
}

func benchSelect(b *testing.B, method string, h Health) {
	snap := load(b, fourMembers+fmt.Sprintf(`
service "b.glb.example.com" {
  policy  = %q
  pools   = ["p"]
  answers = 2
}`, method))
	svc := snap.Services[0]
	c := Client{Addr: netip.MustParseAddr("192.0.2.0"), SourcePrefix: 24, ECS: true}
	dst := make([]*Member, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = svc.Select(c, dns.TypeA, h, dst).Members
	}
}

func BenchmarkSelectRoundRobin(b *testing.B)       { benchSelect(b, "round_robin", AllUp{}) }
func BenchmarkSelectWeighted(b *testing.B)         { benchSelect(b, "weighted", AllUp{}) }
func BenchmarkSelectClientSubnetHash(b *testing.B) { benchSelect(b, "client_subnet_hash", AllUp{}) }
func BenchmarkSelectOneDown(b *testing.B) {
	var h Health = downSet{true} // boxed once, as the server's health view is
	benchSelect(b, "client_subnet_hash", h)
}

// TestSelectConcurrent runs Select from several goroutines on one service, as the server
// does; run with -race. The round-robin cursor is shared, so 4 goroutines × 1000 queries
// still spread exactly evenly over 4 members.
func TestSelectConcurrent(t *testing.T) {
	snap := load(t, fourMembers+`
service "rr.glb.example.com" {
  pools = ["p"]
}`)
	svc := snap.Services[0]
	results := make(chan map[string]int, 4)
	for range 4 {
		go func() {
			counts := map[string]int{}
			dst := make([]*Member, 0, 8)
			for range 1000 {
				sel := svc.Select(client4("192.0.2.1"), dns.TypeA, AllUp{}, dst)
				counts[sel.Members[0].Name]++
				dst = sel.Members
			}
			results <- counts
		}()
	}
	total := map[string]int{}
	for range 4 {
		for k, v := range <-results {
			total[k] += v
		}
	}
	for _, n := range []string{"m0", "m1", "m2", "m3"} {
		if total[n] != 1000 {
			t.Errorf("%s: %d answers, want 1000 (%v)", n, total[n], total)
		}
	}
}
