package terraform

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// failoverConfig is a failover service over two pools: primary (fra-1, ams-1, min_healthy 2)
// then backup (iad-1). primaryWeight is both primary members' weight; drain adds a drain
// of fra-1.
func failoverConfig(url, token string, primaryWeight int, drain bool) string {
	cfg := providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "primary" {
  name        = "primary"
  min_healthy = 2
  members = [
    { name = "fra-1", address = "192.0.2.10", weight = %[1]d },
    { name = "ams-1", address = "192.0.2.11", weight = %[1]d },
  ]
}
resource "glbdns_pool" "backup" {
  name    = "backup"
  members = [{ name = "iad-1", address = "198.51.100.10" }]
}
resource "glbdns_service" "api" {
  name          = "api.glb.example.com"
  policy        = "failover"
  method        = "round_robin"
  pools         = [glbdns_pool.primary.name, glbdns_pool.backup.name]
  answers       = 2
  when_all_down = "servfail"
}
`, primaryWeight)
	if drain {
		cfg += `
resource "glbdns_member_drain" "fra" {
  pool     = glbdns_pool.primary.name
  member   = "fra-1"
  duration = "1h"
}
`
	}
	return cfg
}

// TestAccFailoverService creates a failover service over two Terraform pools and follows
// its DNS answers: the first pool answers while it has min_healthy (2) usable members;
// draining one of them puts it below min_healthy and the second pool answers; without the
// drain the first pool is back (nothing is sticky); weight 0 on its members spills again.
// when_all_down = "servfail" makes sure no answer comes from failing open.
func TestAccFailoverService(t *testing.T) {
	n := startNode(t)
	url, token := n.URL, n.Token
	const api = "api.glb.example.com"
	primary, backup := []string{"192.0.2.10", "192.0.2.11"}, []string{"198.51.100.10"}
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, api), // NXDOMAIN
		Steps: []resource.TestStep{
			{ // the first pool is up: it answers
				Config: failoverConfig(url, token, 1, false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_service.api", tfjsonpath.New("policy"), knownvalue.StringExact("failover")),
					statecheck.ExpectKnownValue("glbdns_service.api", tfjsonpath.New("method"), knownvalue.StringExact("round_robin")),
					statecheck.ExpectKnownValue("glbdns_pool.primary", tfjsonpath.New("min_healthy"), knownvalue.StringExact("2")),
					statecheck.ExpectKnownValue("glbdns_pool.backup", tfjsonpath.New("min_healthy"), knownvalue.Null()),
				},
				Check: checkDNS(n, api, primary...),
			},
			{ // import: policy and method come back from the server
				ResourceName:      "glbdns_service.api",
				ImportState:       true,
				ImportStateId:     api,
				ImportStateVerify: true,
			},
			{ // fra-1 drained: one usable member, below min_healthy 2, so the backup answers
				Config: failoverConfig(url, token, 1, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_member_drain.fra", plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction("glbdns_service.api", plancheck.ResourceActionNoop),
				}},
				Check: checkDNS(n, api, backup...),
			},
			{ // the drain destroyed: the first pool answers again
				Config: failoverConfig(url, token, 1, false),
				Check:  checkDNS(n, api, primary...),
			},
			{ // every member of the first pool at weight 0: the backup answers
				Config: failoverConfig(url, token, 0, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.primary", plancheck.ResourceActionUpdate),
				}},
				Check: checkDNS(n, api, backup...),
			},
		},
	})
}

// steeringPoolConfig is one pool with the steering attributes given as HCL (attrs).
func steeringPoolConfig(url, token, attrs string) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "eu" {
  name    = "web-eu"
  members = [
    { name = "fra-1", address = "192.0.2.10" },
    { name = "ams-1", address = "192.0.2.11" },
  ]
  %s
}
`, attrs)
}

// TestAccPoolResource_steering round-trips the steering attributes: create, import-verify,
// update, set bias to 0, and remove them all. The framework plans again after every apply
// and fails on a non-empty plan, so none of them may drift (numbers that are not exact
// float64s such as 51.5074, a min_healthy written as an HCL number). The server is asked
// directly too: what Terraform leaves unset must be absent from its JSON.
func TestAccPoolResource_steering(t *testing.T) {
	url, token := startAPI(t)
	const res = "glbdns_pool.eu"
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: steeringPoolConfig(url, token, `location    = [51.5074, -0.1278]
  bias        = 200.5
  method      = "client_subnet_hash"
  min_healthy = "50%"
  unknown_is  = "down"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("location"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.Float64Exact(51.5074), knownvalue.Float64Exact(-0.1278),
					})),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("bias"), knownvalue.Float64Exact(200.5)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("method"), knownvalue.StringExact("client_subnet_hash")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("min_healthy"), knownvalue.StringExact("50%")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("unknown_is"), knownvalue.StringExact("down")),
				},
				Check: checkPoolJSON(url, "web-eu", map[string]any{
					"location": []any{51.5074, -0.1278}, "bias": 200.5, "method": "client_subnet_hash", "min_healthy": "50%",
					"unknown_is": "down",
				}),
			},
			{ // import: every steering attribute read back from the server
				ResourceName:      res,
				ImportState:       true,
				ImportStateId:     "web-eu",
				ImportStateVerify: true,
			},
			{ // update in place; min_healthy as an HCL number, which the server returns as a JSON number
				Config: steeringPoolConfig(url, token, `location    = [40.7128, -74.006]
  bias        = -150
  method      = "weighted"
  min_healthy = 2
  unknown_is  = "up"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("location"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.Float64Exact(40.7128), knownvalue.Float64Exact(-74.006),
					})),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("bias"), knownvalue.Float64Exact(-150)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("method"), knownvalue.StringExact("weighted")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("min_healthy"), knownvalue.StringExact("2")),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("unknown_is"), knownvalue.StringExact("up")),
				},
				Check: checkPoolJSON(url, "web-eu", map[string]any{
					"location": []any{40.7128, -74.006}, "bias": -150.0, "method": "weighted", "min_healthy": 2.0,
					"unknown_is": "up",
				}),
			},
			{ // import again, with the number form of min_healthy
				ResourceName:      res,
				ImportState:       true,
				ImportStateId:     "web-eu",
				ImportStateVerify: true,
			},
			{ // a bias of 0 is written, kept and read back as 0, not as unset
				Config: steeringPoolConfig(url, token, `location = [0, 0]
  bias     = 0`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("location"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.Float64Exact(0), knownvalue.Float64Exact(0),
					})),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("bias"), knownvalue.Float64Exact(0)),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("method"), knownvalue.Null()),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("min_healthy"), knownvalue.Null()),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("unknown_is"), knownvalue.Null()),
				},
				Check: checkPoolJSON(url, "web-eu", map[string]any{
					"location": []any{0.0, 0.0}, "bias": 0.0, "method": nil, "min_healthy": nil, "unknown_is": nil,
				}),
			},
			{ // all removed: null in state, absent on the server
				Config: steeringPoolConfig(url, token, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("location"), knownvalue.Null()),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("bias"), knownvalue.Null()),
				},
				Check: checkPoolJSON(url, "web-eu", map[string]any{"location": nil, "bias": nil, "method": nil, "min_healthy": nil, "unknown_is": nil}),
			},
		},
	})
}

// checkPoolJSON GETs a pool from the admin API and compares the given fields of its JSON
// with want (JSON numbers as float64); a nil want means the field must be absent.
func checkPoolJSON(url, pool string, want map[string]any) resource.TestCheckFunc {
	return func(*terraform.State) error {
		c := &http.Client{Timeout: 5 * time.Second}
		req, err := http.NewRequest(http.MethodGet, url+"/v1/pools/"+pool, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+accToken) // reads need it on a node with one
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET pool %s: %s, %v", pool, resp.Status, err)
		}
		for k, w := range want {
			g, ok := got[k]
			switch {
			case w == nil && ok:
				return fmt.Errorf("pool %s: %s is %v; want it absent", pool, k, g)
			case w != nil && !ok:
				return fmt.Errorf("pool %s: %s is absent; want %v", pool, k, w)
			case w != nil && fmt.Sprint(g) != fmt.Sprint(w):
				return fmt.Errorf("pool %s: %s is %#v; want %#v", pool, k, g, w)
			}
		}
		return nil
	}
}

// geoCityDB is MaxMind's GeoIP2 City test database, committed in testdata/geoip at the
// repository root (as for policy/ and e2e/): 81.2.69.142 is in London, 216.160.83.56 near Seattle, and 127.0.0.1
// is in no database.
func geoCityDB(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the GeoIP test database: %v", err)
	}
	return p
}

// nearestConfig is a nearest service over pool us (Seattle) then eu (London), with eu's
// bias given.
func nearestConfig(url, token string, euBias int) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "eu" {
  name     = "eu"
  location = [51.5074, -0.1278]
  bias     = %d
  members  = [{ name = "lon-1", address = "192.0.2.1" }]
}
resource "glbdns_pool" "us" {
  name        = "us"
  location    = [47.6062, -122.3321]
  method      = "weighted"
  min_healthy = "100%%"
  members     = [{ name = "sea-1", address = "198.51.100.1" }]
}
resource "glbdns_service" "near" {
  name   = "near.glb.example.com"
  policy = "nearest"
  pools  = [glbdns_pool.us.name, glbdns_pool.eu.name]
}
`, euBias)
}

// TestAccNearestService runs a node whose operator policy opens the GeoIP test database
// and asks a Terraform-made nearest service, with EDNS Client Subnet, for clients in
// London and near Seattle: each gets its nearest pool, a client without a location the
// pools order; a bias of 20000 km on eu then draws even the Seattle client there.
func TestAccNearestService(t *testing.T) {
	n := glbtest.Start(t, glbtest.Options{Token: accToken,
		Policy: fmt.Sprintf("geoip {\n  database = %q\n}\n", geoCityDB(t))})
	url, token := n.URL, n.Token
	const near = "near.glb.example.com"
	const london, seattle = "81.2.69.142", "216.160.83.56"
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, near), // NXDOMAIN
		Steps: []resource.TestStep{
			{
				Config: nearestConfig(url, token, 0),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkDNSFor(n, near, london, "192.0.2.1"),
					checkDNSFor(n, near, seattle, "198.51.100.1"),
					checkDNS(n, near, "198.51.100.1"), // 127.0.0.1 has no location: the pools order
				),
			},
			{ // the pools and the service import with their steering attributes
				ResourceName: "glbdns_pool.us", ImportState: true, ImportStateId: "us", ImportStateVerify: true,
			},
			{
				ResourceName: "glbdns_service.near", ImportState: true, ImportStateId: near, ImportStateVerify: true,
			},
			{
				Config: nearestConfig(url, token, 20000),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.eu", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("glbdns_pool.us", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkDNSFor(n, near, london, "192.0.2.1"),
					checkDNSFor(n, near, seattle, "192.0.2.1"),
				),
			},
		},
	})
}

// geoConfig is a geo service over pools web-eu (192.0.2.10) and web-us (198.51.100.10):
// GB clients get eu, US clients us, the network rule (netRule, HCL) its order, others
// default_pools (us first).
func geoConfig(url, token, netRule string) string {
	return providerConfig(url, token) + twoPools + fmt.Sprintf(`
resource "glbdns_service" "geo" {
  name   = "geo.glb.example.com"
  policy = "geo"
  method = "weighted"
  pools  = [glbdns_pool.eu.name, glbdns_pool.us.name]
  geo = {
    rules = [
      { countries = ["GB"], pools = [glbdns_pool.eu.name] },
      { countries = ["US", "CA"], continents = ["SA"], pools = [glbdns_pool.us.name, glbdns_pool.eu.name] },
      %s,
    ]
    default_pools = [glbdns_pool.us.name, glbdns_pool.eu.name]
  }
}
`, netRule)
}

// TestAccGeoService runs a node whose operator policy opens the GeoIP test databases and
// asks a Terraform-made geo service, with EDNS Client Subnet, for clients in London (GB),
// near Seattle (US), in a rule's network, and without a location: each gets its rule's
// pool, the last default_pools. The service imports with its rules; moving the London
// client's /32 into the network rule then beats its country rule (networks first).
func TestAccGeoService(t *testing.T) {
	asnDB, err := filepath.Abs("../testdata/geoip/GeoLite2-ASN-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	n := glbtest.Start(t, glbtest.Options{Token: accToken,
		Policy: fmt.Sprintf("geoip {\n  database = %q\n  asn_database = %q\n}\n", geoCityDB(t), asnDB)})
	url, token := n.URL, n.Token
	const geo = "geo.glb.example.com"
	const london, seattle, netClient = "81.2.69.142", "216.160.83.56", "203.0.113.7"
	const eu, us = "192.0.2.10", "198.51.100.10"
	const res = "glbdns_service.geo"
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, geo), // NXDOMAIN
		Steps: []resource.TestStep{
			{
				Config: geoConfig(url, token, `{ networks = ["203.0.113.0/24"], asns = [64496], pools = [glbdns_pool.eu.name] }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(res, tfjsonpath.New("geo").AtMapKey("rules").AtSliceIndex(1), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"countries":  knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("US"), knownvalue.StringExact("CA")}),
						"continents": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("SA")}),
						"networks":   knownvalue.Null(),
						"asns":       knownvalue.Null(),
						"pools":      knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("web-us"), knownvalue.StringExact("web-eu")}),
					})),
					statecheck.ExpectKnownValue(res, tfjsonpath.New("geo").AtMapKey("rules").AtSliceIndex(2).AtMapKey("asns"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.Int64Exact(64496)})),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkDNSFor(n, geo, london, eu),
					checkDNSFor(n, geo, seattle, us),
					checkDNSFor(n, geo, netClient, eu),
					checkDNS(n, geo, us), // 127.0.0.1: no rule matches, default_pools
				),
			},
			{ // the service imports with its rules
				ResourceName: res, ImportState: true, ImportStateId: geo, ImportStateVerify: true,
			},
			{ // a network rule beats a country rule
				Config: geoConfig(url, token, `{ networks = ["203.0.113.0/24", "81.2.69.142/32"], pools = [glbdns_pool.us.name] }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(res, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkDNSFor(n, geo, london, us),
					checkDNSFor(n, geo, netClient, us),
					checkDNSFor(n, geo, seattle, us),
				),
			},
			{
				ResourceName: res, ImportState: true, ImportStateId: geo, ImportStateVerify: true,
			},
		},
	})
}

// TestAccGeoService_validation checks that bad geo rules fail at plan time.
func TestAccGeoService_validation(t *testing.T) {
	url, token := startAPI(t)
	svc := func(policy, geo string) string {
		return providerConfig(url, token) + twoPools + fmt.Sprintf(`
resource "glbdns_service" "geo" {
  name   = "geo.glb.example.com"
  policy = %q
  pools  = [glbdns_pool.eu.name, glbdns_pool.us.name]
  %s
}
`, policy, geo)
	}
	rule := func(r string) string { return `geo = { rules = [` + r + `] }` }
	steps := []struct{ cfg, want string }{
		{svc("geo", ""), `(?s)Missing geo.*no\s+geo\s+attribute`},
		{svc("failover", rule(`{ countries = ["GB"], pools = ["web-eu"] }`)), `(?s)Unexpected geo.*policy\s+"failover"`},
		{svc("geo", rule(`{ countries = ["gb"], pools = ["web-eu"] }`)), `(?s)countries.*ISO\s+3166-1\s+alpha-2`},
		{svc("geo", rule(`{ continents = ["XX"], pools = ["web-eu"] }`)), `(?s)continents.*value\s+must\s+be\s+one\s+of`},
		{svc("geo", rule(`{ networks = ["198.51.100.1/24"], pools = ["web-eu"] }`)), `(?s)Invalid network.*did you\s+mean\s+"198.51.100.0/24"`},
		{svc("geo", rule(`{ networks = ["not-a-prefix"], pools = ["web-eu"] }`)), `(?s)Invalid network.*not\s+a\s+CIDR\s+prefix`},
		{svc("geo", rule(`{ asns = [0], pools = ["web-eu"] }`)), `(?s)asns.*between\s+1\s+and\s+4294967295`},
		{svc("geo", rule(`{ pools = ["web-eu"] }`)), `(?s)Empty rule.*at\s+least\s+one\s+of`},
		{svc("geo", rule(`{ countries = [], pools = ["web-eu"] }`)), `(?s)countries.*at\s+least\s+1`},
		{svc("geo", `geo = { rules = [] }`), `(?s)rules.*at\s+least\s+1`},
	}
	tc := resource.TestCase{}
	for _, s := range steps {
		tc.Steps = append(tc.Steps, resource.TestStep{Config: s.cfg, PlanOnly: true, ExpectError: regexp.MustCompile(s.want)})
	}
	accTest(t, tc)
}

// checkDNSFor asks the node for the A records of name on behalf of client (an EDNS Client
// Subnet option with the client's /32) and compares the set of addresses with want.
func checkDNSFor(n *glbtest.Node, name, client string, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		m := glbtest.NewQuery(name, dns.TypeA)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 32,
			Address: net.ParseIP(client).To4()})
		r, err := glbtest.Exchange(n.DNS, m)
		if err != nil {
			return fmt.Errorf("query %s A for %s: %w", name, client, err)
		}
		got := aRecords(r)
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want))
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(got, w) {
			return fmt.Errorf("%s A for client %s: rcode %s, answers %v; want %v", name, client, dns.RcodeToString[r.Rcode], got, w)
		}
		return nil
	}
}

// TestAccPoolResource_steeringValidation checks that bad steering attributes fail at plan
// time, before any request reaches the server.
func TestAccPoolResource_steeringValidation(t *testing.T) {
	url, token := startAPI(t)
	steps := []struct {
		attrs string
		want  string
	}{
		{`min_healthy = "0"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = "101%"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = "0%"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = "05"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = "1.5"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = "half"`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = -1`, `(?s)min_healthy.*must be a whole number of members`},
		{`min_healthy = 3`, `(?s)Invalid min_healthy.*2 members, so it could never have 3`},
		{`location = [91, 0]`, `(?s)Invalid latitude.*between -90 and 90 degrees, not 91`},
		{`location = [0, -180.5]`, `(?s)Invalid longitude.*between -180 and 180 degrees, not -180.5`},
		{`location = [51.5]`, `(?s)Invalid location.*two numbers; got 1`},
		{`location = [1, 2, 3]`, `(?s)Invalid location.*two numbers; got 3`},
		{`location = [0, 0]
  bias = 20001`, `(?s)bias.*must be between -20000.* and 20000`},
		{`bias = 100`, `(?s)Invalid Attribute Combination.*location`},
		{`method = "random"`, `(?s)method.*value must be one of`},
		{`unknown_is = "UP"`, `(?s)unknown_is.*value must be one of`},
	}
	tc := resource.TestCase{}
	for _, s := range steps {
		tc.Steps = append(tc.Steps, resource.TestStep{
			Config:      steeringPoolConfig(url, token, s.attrs),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(s.want),
		})
	}
	accTest(t, tc)
}

// TestAccPoolDataSource_steering reads pools from the operator's files through the data
// source: the server shows their compiled steering attributes (min_healthy 1 and bias 0,
// the defaults, as unset).
func TestAccPoolDataSource_steering(t *testing.T) {
	n := glbtest.Start(t, glbtest.Options{Token: accToken, Policy: `
pool "legacy-eu" {
  location    = [51.5074, -0.1278]
  bias        = 250
  method      = "client_subnet_hash"
  min_healthy = "50%"
  member "lon-1" {
    address = "192.0.2.1"
  }
  member "lon-2" {
    address = "192.0.2.2"
  }
}
pool "legacy-us" {
  min_healthy = 2
  member "nyc-1" {
    address = "198.51.100.1"
  }
  member "nyc-2" {
    address = "198.51.100.2"
  }
}
pool "legacy-ap" {
  location = [1.3521, 103.8198]
  member "sin-1" {
    address = "203.0.113.1"
  }
}
`})
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: providerConfig(n.URL, n.Token) + `
data "glbdns_pool" "eu" { name = "legacy-eu" }
data "glbdns_pool" "us" { name = "legacy-us" }
data "glbdns_pool" "ap" { name = "legacy-ap" }
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.glbdns_pool.eu", tfjsonpath.New("location"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.Float64Exact(51.5074), knownvalue.Float64Exact(-0.1278),
				})),
				statecheck.ExpectKnownValue("data.glbdns_pool.eu", tfjsonpath.New("bias"), knownvalue.Float64Exact(250)),
				statecheck.ExpectKnownValue("data.glbdns_pool.eu", tfjsonpath.New("method"), knownvalue.StringExact("client_subnet_hash")),
				statecheck.ExpectKnownValue("data.glbdns_pool.eu", tfjsonpath.New("min_healthy"), knownvalue.StringExact("50%")),
				statecheck.ExpectKnownValue("data.glbdns_pool.eu", tfjsonpath.New("managed"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue("data.glbdns_pool.us", tfjsonpath.New("location"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.glbdns_pool.us", tfjsonpath.New("bias"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.glbdns_pool.us", tfjsonpath.New("method"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.glbdns_pool.us", tfjsonpath.New("min_healthy"), knownvalue.StringExact("2")),
				statecheck.ExpectKnownValue("data.glbdns_pool.ap", tfjsonpath.New("location"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.Float64Exact(1.3521), knownvalue.Float64Exact(103.8198),
				})),
				statecheck.ExpectKnownValue("data.glbdns_pool.ap", tfjsonpath.New("bias"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.glbdns_pool.ap", tfjsonpath.New("min_healthy"), knownvalue.Null()),
			},
		}},
	})
}

// TestAccPoolResource_memberValidation refuses at plan time (a PlanOnly step: validation
// runs before any call to the API), at the member's attribute, an address or host that the
// server's policy refuses (the provider checks them with api.ParseMemberAddress and
// api.ValidMemberHost). OpenTofu prints the resource and line, not a nested path.
func TestAccPoolResource_memberValidation(t *testing.T) {
	url, token := startAPI(t)
	tc := resource.TestCase{}
	for _, s := range []struct{ member, want string }{
		{`address = "192.0.2.300"`, `(?s)Invalid address.*glbdns_pool.eu.*"192.0.2.300" is not an IPv4 or IPv6`},
		{`address = "fe80::1%eth0"`, `(?s)Invalid address.*glbdns_pool.eu.*is not an IPv4 or IPv6`},
		{`address = "www.example.com"`, `(?s)Invalid address.*glbdns_pool.eu.*is not an IPv4 or IPv6`},
		{`host = "bad..example.com"`, `(?s)Invalid host.*glbdns_pool.eu.*"bad..example.com" is not a valid host name`},
	} {
		tc.Steps = append(tc.Steps, resource.TestStep{
			Config: providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "eu" {
  name    = "web-eu"
  members = [{ name = "fra-1", %s }]
}
`, s.member),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(s.want),
		})
	}
	accTest(t, tc)
}
