package terraform

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func poolConfig(url, token, region string, fraWeight int) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "test" {
  name   = "web-eu"
  region = %q
  members = [
    { name = "fra-1", address = "192.0.2.10", weight = %d },
    { name = "ams-1", address = "192.0.2.11" },
  ]
  checks = [
    { name = "http", port = 8080, path = "/healthz", interval = "2s", timeout = "1s", expect_status = ["200-299"] },
  ]
}
`, region, fraWeight)
}

func TestAccPoolResource(t *testing.T) {
	url, token := startAPI(t)
	versions := statecheck.CompareValue(compare.ValuesDiffer())
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{ // create
				Config: poolConfig(url, token, "eu", 3),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("id"), knownvalue.StringExact("web-eu")),
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("managed"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("members"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("fra-1"), "weight": knownvalue.Int64Exact(3)}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("ams-1"), "weight": knownvalue.Int64Exact(1), "host": knownvalue.Null()}),
					})),
					// The server keeps a check as written: unset attributes stay null (the
					// policy's defaults apply when it compiles the pool).
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("checks").AtSliceIndex(0), knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"type": knownvalue.Null(), "port": knownvalue.Int64Exact(8080), "interval": knownvalue.StringExact("2s"),
						"rise": knownvalue.Null(), "fall": knownvalue.Null(), "method": knownvalue.Null(),
					})),
					versions.AddStateValue("glbdns_pool.test", tfjsonpath.New("version")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("glbdns_pool.test", "checks.0.expect_status.0", "200-299"),
					resource.TestCheckResourceAttrSet("glbdns_pool.test", "version"),
				),
			},
			{ // import by name
				ResourceName:      "glbdns_pool.test",
				ImportState:       true,
				ImportStateId:     "web-eu",
				ImportStateVerify: true,
			},
			{ // update in place, sending the version as If-Match
				Config: poolConfig(url, token, "europe", 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.test", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("region"), knownvalue.StringExact("europe")),
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("members").AtSliceIndex(0).AtMapKey("weight"), knownvalue.Int64Exact(5)),
					versions.AddStateValue("glbdns_pool.test", tfjsonpath.New("version")),
				},
			},
			{ // a change made through the API shows as drift in the plan, and apply reverts it
				PreConfig: func() {
					putWithETag(t, url, token, "/v1/pools/web-eu", func(p map[string]any) { p["region"] = "changed-elsewhere" })
				},
				Config: poolConfig(url, token, "europe", 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.test", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.test", tfjsonpath.New("region"), knownvalue.StringExact("europe")),
				},
			},
		},
	})
}

func TestAccPoolResource_validation(t *testing.T) {
	url, token := startAPI(t)
	pool := func(members string) string {
		return providerConfig(url, token) + `resource "glbdns_pool" "bad" {
  name    = "bad"
  members = [` + members + `]
}`
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{Config: pool(`{ name = "a", address = "192.0.2.1", weight = -1 }`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)weight.*must be between 0 and 16777216`)},
			{Config: pool(`{ name = "a", address = "192.0.2.1", port = 70000 }`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)port.*must be between 1 and 65535`)},
			{Config: pool(`{ name = "a", address = "192.0.2.1", host = "a.example.net" }`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`Invalid Attribute Combination`)},
			{Config: pool(`{ name = "a" }`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`Invalid Attribute Combination`)},
			// Refused at plan time with the policy's own check (api.ParseMemberAddress).
			{Config: pool(`{ name = "a", address = "not-an-ip" }`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Invalid address.*"not-an-ip"\s+is\s+not\s+an\s+IPv4\s+or\s+IPv6`)},
		},
	})
}

// TestAccPoolResource_port: the SRV ports of a pool and of a member are stored as
// written, imported, and a member's removed port falls back to null (the pool's).
func TestAccPoolResource_port(t *testing.T) {
	url, token := startAPI(t)
	config := func(memberPort string) string {
		return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "srv" {
  name = "srv-eu"
  port = 8443
  members = [
    { name = "fra-1", address = "192.0.2.10"%s },
    { name = "ams-1", address = "192.0.2.11" },
  ]
}
`, memberPort)
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: config(", port = 9443"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.srv", tfjsonpath.New("port"), knownvalue.Int64Exact(8443)),
					statecheck.ExpectKnownValue("glbdns_pool.srv", tfjsonpath.New("members"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("fra-1"), "port": knownvalue.Int64Exact(9443)}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("ams-1"), "port": knownvalue.Null()}),
					})),
				},
			},
			{ResourceName: "glbdns_pool.srv", ImportState: true, ImportStateId: "srv-eu", ImportStateVerify: true},
			{
				Config: config(""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.srv", tfjsonpath.New("members").AtSliceIndex(0).AtMapKey("port"), knownvalue.Null()),
				},
			},
		},
	})
}
