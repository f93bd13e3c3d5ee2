package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy/geoip"
)

// The GeoIP2 test databases of the MaxMind DB format (see their README): 81.2.69.142 and
// 81.2.69.160 are GB (London), 216.160.83.56 US (near Seattle), 89.160.20.112 SE in
// AS29518, 175.16.199.0 CN, 10.0.0.1 is in no database.
const geoDir = "../testdata/geoip/"

func openGeo(t testing.TB) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(geoDir+"GeoIP2-City-Test.mmdb", geoDir+"GeoLite2-ASN-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// geoClient is the client as the server builds it: the address (ECS or source), then
// one GeoIP lookup. prefix < 0 means no ECS.
func geoClient(db *geoip.DB, addr string, prefix int) Client {
	a := netip.MustParseAddr(addr)
	c := Client{Addr: a, SourcePrefix: a.BitLen()}
	if prefix >= 0 {
		c.SourcePrefix, c.ECS = prefix, true
	}
	c.Geo, c.HasGeo = db.Lookup(a), true
	return c
}

const steerPolicy = `
geoip {
  database     = "City.mmdb"
  asn_database = "ASN.mmdb"
}

pool "eu" {
  location = [51.5074, -0.1278] # London
  member "lon-1" {
    address = "192.0.2.1"
  }
  member "lon-2" {
    address = "192.0.2.2"
  }
}

pool "us" {
  location = [40.7128, -74.006] # New York
  member "nyc-1" {
    address = "198.51.100.1"
  }
  member "nyc-2" {
    address = "198.51.100.2"
  }
}

pool "asia" {
  member "sin-1" {
    address = "203.0.113.1"
  }
}

pool "ny-biased" {
  location = [40.7128, -74.006]
  bias     = 6000
  member "nyc-9" {
    address = "198.51.100.9"
  }
}

pool "quorum" {
  min_healthy = 2
  member "q1" {
    address = "192.0.2.11"
  }
  member "q2" {
    address = "192.0.2.12"
  }
  member "q3" {
    address = "192.0.2.13"
  }
}

pool "half" {
  min_healthy = "50%"
  member "h1" {
    address = "192.0.2.21"
  }
  member "h2" {
    address = "192.0.2.22"
  }
  member "h3" {
    address = "192.0.2.23"
  }
  member "h4" {
    address = "192.0.2.24"
  }
}

pool "hashed" {
  method = "client_subnet_hash"
  member "x1" {
    address = "192.0.2.31"
  }
  member "x2" {
    address = "192.0.2.32"
  }
}

pool "backup" {
  member "b1" {
    address = "192.0.2.99"
  }
}

service "geo.glb.example.com" {
  policy = "geo"
  pools  = ["eu", "us", "asia"]
  geo {
    rule {
      networks = ["81.2.69.160/27", "10.1.0.0/16"]
      pools    = ["us", "eu"]
    }
    rule {
      asns  = [29518]
      pools = ["asia", "eu"]
    }
    rule {
      countries = ["GB", "DE"]
      pools     = ["eu", "us", "asia"]
    }
    rule {
      continents = ["NA"]
      pools      = ["us", "eu"]
    }
    default_pools = ["us", "asia"]
  }
}

service "near.glb.example.com" {
  policy = "nearest"
  pools  = ["asia", "us", "eu"]
}

service "nearbias.glb.example.com" {
  policy = "nearest"
  pools  = ["eu", "ny-biased"]
}

service "quorum.glb.example.com" {
  policy = "failover"
  pools  = ["quorum", "backup"]
}

service "half.glb.example.com" {
  policy = "failover"
  pools  = ["half", "backup"]
}

service "hashfo.glb.example.com" {
  policy = "failover"
  pools  = ["hashed", "backup"]
}

service "geohash.glb.example.com" {
  policy = "geo"
  pools  = ["hashed", "us"]
  geo {
    rule {
      countries = ["GB"]
      pools     = ["hashed", "us"]
    }
    default_pools = ["hashed", "us"]
  }
}
`

// downIDs is a Health that reports the members with these "pool/member" IDs as down.
type downIDs map[string]bool

func (d downIDs) Up(m *Member) bool { return !d[m.ID()] }

func TestSteering(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy)
	for _, tc := range []struct {
		name, svc, addr string
		prefix          int      // ECS source prefix; -1 for none
		noGeo           bool     // the server has no database open
		down            []string // member IDs down
		want            string   // the chosen pool
		allDown         bool
		scope           int
	}{
		// geo: country, and failover along the country's order as health changes.
		{name: "GB gets eu", svc: "geo", addr: "81.2.69.142", prefix: 32, want: "eu", scope: 31},
		{name: "GB with eu down gets us", svc: "geo", addr: "81.2.69.142", prefix: 32, down: []string{"eu/lon-1", "eu/lon-2"}, want: "us", scope: 31},
		{name: "GB with eu half down stays on eu", svc: "geo", addr: "81.2.69.142", prefix: 32, down: []string{"eu/lon-1"}, want: "eu", scope: 31},
		{name: "GB with eu and us down gets asia", svc: "geo", addr: "81.2.69.142", prefix: 32, down: []string{"eu/lon-1", "eu/lon-2", "us/nyc-1", "us/nyc-2"}, want: "asia", scope: 31},
		{name: "GB with everything down fails open on eu", svc: "geo", addr: "81.2.69.142", prefix: 32,
			down: []string{"eu/lon-1", "eu/lon-2", "us/nyc-1", "us/nyc-2", "asia/sin-1"}, want: "eu", allDown: true, scope: 31},
		{name: "GB without ECS has no scope", svc: "geo", addr: "81.2.69.142", prefix: -1, want: "eu", scope: 0},
		{name: "scope capped at the source prefix", svc: "geo", addr: "81.2.69.142", prefix: 20, want: "eu", scope: 20},
		{name: "US gets us by continent", svc: "geo", addr: "216.160.83.56", prefix: 32, want: "us", scope: 29},
		{name: "ASN rule beats continent", svc: "geo", addr: "89.160.20.112", prefix: 32, want: "asia", scope: 17},
		{name: "CIDR rule beats country", svc: "geo", addr: "81.2.69.160", prefix: 32, want: "us", scope: 27},
		{name: "unknown address gets the default order", svc: "geo", addr: "10.0.0.1", prefix: 32, want: "us", scope: 16},
		{name: "default order fails over too", svc: "geo", addr: "10.0.0.1", prefix: 32, down: []string{"us/nyc-1", "us/nyc-2"}, want: "asia", scope: 16},
		{name: "CN (no rule) gets the default order", svc: "geo", addr: "175.16.199.0", prefix: 24, want: "us", scope: 24},
		{name: "no database: default order, scoped clear of a network rule", svc: "geo", addr: "81.2.69.142", prefix: 32, noGeo: true, want: "us", scope: 27},
		{name: "no database, no network rule nearby: no scope", svc: "geo", addr: "175.16.199.0", prefix: 32, noGeo: true, want: "us", scope: 1},
		{name: "no database: networks still match", svc: "geo", addr: "81.2.69.170", prefix: 32, noGeo: true, want: "us", scope: 27},

		// nearest
		{name: "nearest: GB is nearest London", svc: "near", addr: "81.2.69.142", prefix: 32, want: "eu", scope: 31},
		{name: "nearest: US west coast is nearest New York", svc: "near", addr: "216.160.83.56", prefix: 32, want: "us", scope: 29},
		{name: "nearest: GB with eu down gets us, then asia (no location)", svc: "near", addr: "81.2.69.142", prefix: 32, down: []string{"eu/lon-1", "eu/lon-2"}, want: "us", scope: 31},
		{name: "nearest: no location last", svc: "near", addr: "81.2.69.142", prefix: 32, down: []string{"eu/lon-1", "eu/lon-2", "us/nyc-1", "us/nyc-2"}, want: "asia", scope: 31},
		{name: "nearest: client without location gets the pool order", svc: "near", addr: "10.0.0.1", prefix: 32, want: "asia", scope: 8},
		{name: "nearest: no database gets the pool order", svc: "near", addr: "81.2.69.142", prefix: 32, noGeo: true, want: "asia", scope: 0},
		{name: "nearest: bias flips GB to New York", svc: "nearbias", addr: "81.2.69.142", prefix: 32, want: "ny-biased", scope: 31},

		// failover with min_healthy
		{name: "min_healthy 2: one down stays", svc: "quorum", addr: "192.0.2.1", prefix: 24, down: []string{"quorum/q1"}, want: "quorum", scope: 0},
		{name: "min_healthy 2: two down spills", svc: "quorum", addr: "192.0.2.1", prefix: 24, down: []string{"quorum/q1", "quorum/q3"}, want: "backup", scope: 0},
		{name: "min_healthy 50%: two of four down stays", svc: "half", addr: "192.0.2.1", prefix: 24, down: []string{"half/h1", "half/h2"}, want: "half", scope: 0},
		{name: "min_healthy 50%: three of four down spills", svc: "half", addr: "192.0.2.1", prefix: 24, down: []string{"half/h1", "half/h2", "half/h4"}, want: "backup", scope: 0},
		{name: "min_healthy 50%: back up returns", svc: "half", addr: "192.0.2.1", prefix: 24, down: []string{"half/h1"}, want: "half", scope: 0},
		{name: "failover: all below, degraded pool answers", svc: "quorum", addr: "192.0.2.1", prefix: 24, down: []string{"quorum/q1", "quorum/q2", "backup/b1"}, want: "quorum", allDown: true, scope: 0},

		// client_subnet_hash inside a pool: the scope is the larger dependency.
		{name: "failover with a hashed pool scopes to the hash prefix", svc: "hashfo", addr: "192.0.2.0", prefix: 24, want: "hashed", scope: 24},
		{name: "hash prefix capped by the source prefix", svc: "hashfo", addr: "192.0.0.0", prefix: 16, want: "hashed", scope: 16},
		{name: "geo + hash: the City network is longer", svc: "geohash", addr: "81.2.69.142", prefix: 32, want: "hashed", scope: 31},
		{name: "geo + hash: the hash prefix is longer", svc: "geohash", addr: "10.0.0.1", prefix: 32, want: "hashed", scope: 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := service(t, snap, tc.svc+".glb.example.com.")
			c := geoClient(db, tc.addr, tc.prefix)
			if tc.noGeo {
				c.Geo, c.HasGeo = geoip.Info{}, false
			}
			h := downIDs{}
			for _, id := range tc.down {
				if snap.memberByID(id) == nil {
					t.Fatalf("no member %q", id)
				}
				h[id] = true
			}
			sel := svc.Select(c, dns.TypeA, h, nil)
			if len(sel.Members) != 1 {
				t.Fatalf("got %d members, want 1", len(sel.Members))
			}
			if got := sel.Members[0].Pool; got != tc.want {
				t.Errorf("answered from pool %q, want %q", got, tc.want)
			}
			if h[sel.Members[0].ID()] && !tc.allDown {
				t.Errorf("answered %s, which is down", sel.Members[0].ID())
			}
			if sel.AllDown != tc.allDown {
				t.Errorf("AllDown = %v, want %v", sel.AllDown, tc.allDown)
			}
			if sel.Scope != tc.scope {
				t.Errorf("scope /%d, want /%d", sel.Scope, tc.scope)
			}
		})
	}
}

// memberByID finds a member by its "pool/member" identity (tests only).
func (s *Snapshot) memberByID(id string) *Member {
	for _, m := range s.Members {
		if m.ID() == id {
			return m
		}
	}
	return nil
}

// TestSteeringRecovers walks one health history: a pool's clients leave while it is
// below min_healthy and come back as soon as it recovers; nothing is sticky.
func TestSteeringRecovers(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy)
	svc := service(t, snap, "geo.glb.example.com.")
	c := geoClient(db, "81.2.69.142", 32)
	for i, step := range []struct {
		down []string
		want string
	}{
		{nil, "eu"},
		{[]string{"eu/lon-1", "eu/lon-2"}, "us"},
		{[]string{"eu/lon-2"}, "eu"},
		{[]string{"eu/lon-1", "eu/lon-2"}, "us"},
		{nil, "eu"},
	} {
		h := downIDs{}
		for _, id := range step.down {
			h[id] = true
		}
		for q := range 4 { // several queries: round robin must not carry a pool over
			if got := svc.Select(c, dns.TypeA, h, nil).Members[0].Pool; got != step.want {
				t.Fatalf("step %d query %d: pool %q, want %q", i, q, got, step.want)
			}
		}
	}
}

func TestSteeringWhenAllDown(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy+`
service "sf.glb.example.com" {
  policy        = "geo"
  pools         = ["eu", "us"]
  when_all_down = "servfail"
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu"]
    }
  }
}
service "fb.glb.example.com" {
  policy        = "failover"
  pools         = ["eu"]
  when_all_down = "fallback"
  fallback      = "backup"
}
`)
	h := downIDs{"eu/lon-1": true, "eu/lon-2": true}
	c := geoClient(db, "81.2.69.142", 32)
	// The GB rule lists only eu: us is not in its order, so eu down is all down.
	sel := service(t, snap, "sf.glb.example.com.").Select(c, dns.TypeA, h, nil)
	if !sel.ServFail || !sel.AllDown || len(sel.Members) != 0 {
		t.Errorf("servfail: got %+v", sel)
	}
	sel = service(t, snap, "fb.glb.example.com.").Select(c, dns.TypeA, h, nil)
	if !sel.AllDown || len(sel.Members) != 1 || sel.Members[0].ID() != "backup/b1" {
		t.Errorf("fallback: got %+v", sel)
	}
	// AAAA: no pool has IPv6 members: NODATA, not all down.
	sel = service(t, snap, "sf.glb.example.com.").Select(c, dns.TypeAAAA, AllUp{}, nil)
	if sel.AllDown || sel.ServFail || len(sel.Members) != 0 {
		t.Errorf("AAAA: got %+v, want NODATA", sel)
	}
}

// TestGeoScopeExcludesNestedNetworks checks the scope widening of RFC 7871 section
// 7.2.1: an answer must not be cached for a prefix holding a network rule that answers
// differently.
func TestGeoScopeExcludesNestedNetworks(t *testing.T) {
	g := &geoTable{rules: make([]geoRule, 2), nets: []netRule{
		{netip.MustParsePrefix("10.1.2.0/24"), 2},
		{netip.MustParsePrefix("10.1.0.0/16"), 1},
	}}
	for _, tc := range []struct {
		addr  string
		rule  int
		scope int
	}{
		{"10.1.2.3", 1, 24},   // the /24 rule
		{"10.1.3.3", 0, 24},   // the /16 rule, but 10.1.2.0/24 is inside 10.1.0.0/16 next door
		{"10.1.128.1", 0, 17}, // the /16 rule; 10.1.128.0/17 is the widest prefix without the /24
		{"10.0.0.1", 2, 16},   // no rule: 10.1.0.0/16 is next door at /15
		{"192.0.2.1", 2, 1},   // no rule: 10/8 differs from 192/8 in the first bit
	} {
		c := Client{Addr: netip.MustParseAddr(tc.addr)}
		rule, _, scope := g.match(&c)
		if rule != tc.rule || scope != tc.scope {
			t.Errorf("%s: rule %d scope /%d, want rule %d scope /%d", tc.addr, rule, scope, tc.rule, tc.scope)
		}
	}
}

func TestSteeringExplain(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy)
	svc := service(t, snap, "geo.glb.example.com.")
	h := downIDs{"eu/lon-1": true, "eu/lon-2": true}
	ex := svc.Explain(geoClient(db, "81.2.69.142", 32), dns.TypeA, h)
	out := ex.String()
	for _, want := range []string{
		"policy    geo",
		"geoip     country=GB continent=EU asn=- location=51.5142,-0.0931",
		"network   city=81.2.69.142/31 asn=81.0.0.0/9",
		"rule      rule 3 at test.hcl:",
		"(countries)",
		"    1. eu               usable 0/2, min_healthy 1: below min_healthy, method round_robin",
		"  * 2. us               usable 2/2, min_healthy 1: up, method round_robin",
		"    3. asia             usable 1/1, min_healthy 1: up",
		"pool      us",
		"path      pool us is up",
		"scope     /31",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if ex.ChosenPool != "us" || len(ex.Order) != 3 || ex.Order[0].Up || !ex.Order[1].Up {
		t.Errorf("explanation fields: %+v", ex)
	}
	// nearest shows distances; a pool without location says so.
	out = service(t, snap, "near.glb.example.com.").Explain(geoClient(db, "81.2.69.142", 32), dns.TypeA, AllUp{}).String()
	for _, want := range []string{"rule      nearest: distance from the client's location minus bias", "* 1. eu", "distance-bias 3 km", "2. us", "3. asia", "no location"} {
		if !strings.Contains(out, want) {
			t.Errorf("nearest explain lacks %q:\n%s", want, out)
		}
	}
}

func TestSteeringDoesNotAllocate(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy)
	var h Health = downSet{true, true} // eu down: every walk spills once
	for _, tc := range []struct{ svc, addr string }{
		{"geo", "81.2.69.142"}, {"geo", "81.2.69.160"}, {"geo", "89.160.20.112"}, {"near", "81.2.69.142"},
		{"half", "192.0.2.1"}, {"geohash", "81.2.69.142"},
	} {
		t.Run(tc.svc+" "+tc.addr, func(t *testing.T) {
			svc := service(t, snap, tc.svc+".glb.example.com.")
			c := geoClient(db, tc.addr, 32)
			dst := make([]*Member, 0, 8)
			if n := testing.AllocsPerRun(100, func() { dst = svc.Select(c, dns.TypeA, h, dst).Members }); n != 0 {
				t.Errorf("%v allocations per Select, want 0", n)
			}
		})
	}
}

// BenchmarkSelectGeo is the whole geo selection with Client.Geo already filled: rule
// match, a walk that spills over a pool that is down, and the pool's method.
func BenchmarkSelectGeo(b *testing.B) {
	db := openGeo(b)
	snap := load(b, steerPolicy)
	svc := snap.Services[0]
	c := geoClient(db, "81.2.69.142", 32)
	var h Health = downSet{true} // eu/lon-1 down: eu still up
	dst := make([]*Member, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = svc.Select(c, dns.TypeA, h, dst).Members
	}
}

// BenchmarkSelectNearest is nearest with Client.Geo filled: three distances and a sort.
func BenchmarkSelectNearest(b *testing.B) {
	db := openGeo(b)
	snap := load(b, steerPolicy)
	svc := service(b, snap, "near.glb.example.com.")
	c := geoClient(db, "81.2.69.142", 32)
	var h Health = AllUp{}
	dst := make([]*Member, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = svc.Select(c, dns.TypeA, h, dst).Members
	}
}

// BenchmarkGeoLookupAndSelect is what the server does per query of a geo service: one
// GeoIP lookup (City + ASN) and the selection.
func BenchmarkGeoLookupAndSelect(b *testing.B) {
	db := openGeo(b)
	snap := load(b, steerPolicy)
	svc := snap.Services[0]
	a := netip.MustParseAddr("81.2.69.142")
	var h Health = downSet{true}
	dst := make([]*Member, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		c := Client{Addr: a, SourcePrefix: 32, ECS: true}
		if svc.NeedsGeo {
			c.Geo, c.HasGeo = db.Lookup(a), true
		}
		dst = svc.Select(c, dns.TypeA, h, dst).Members
	}
}

// TestSteeringConcurrent runs steering selections from several goroutines (for -race):
// the per-pool round-robin cursors are the only shared mutable state.
func TestSteeringConcurrent(t *testing.T) {
	db := openGeo(t)
	snap := load(t, steerPolicy)
	svc := service(t, snap, "geo.glb.example.com.")
	svc.rand = nil // the seeded source is not safe for concurrent use; round robin needs none
	c := geoClient(db, "81.2.69.142", 32)
	var h Health = downSet{true}
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			dst := make([]*Member, 0, 8)
			for range 500 {
				sel := svc.Select(c, dns.TypeA, h, dst)
				if len(sel.Members) != 1 || sel.Members[0].ID() != "eu/lon-2" {
					errs <- "wrong answer"
					return
				}
				dst = sel.Members
			}
			errs <- ""
		}()
	}
	for range 4 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
