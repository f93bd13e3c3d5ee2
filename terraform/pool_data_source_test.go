package terraform

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccPoolDataSource(t *testing.T) {
	url, token := startAPI(t)
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: providerConfig(url, token) + `
resource "glbdns_pool" "edge" {
  name    = "edge"
  region     = "eu"
  unknown_is = "down"
  members    = [{ name = "cdn", host = "eu.cdn.example.net", weight = 2 }]
  checks  = [{ name = "tcp", port = 443 }]
}
data "glbdns_pool" "edge" {
  name = glbdns_pool.edge.name
}
data "glbdns_member_health" "edge" {
  pool = glbdns_pool.edge.name
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.glbdns_pool.edge", tfjsonpath.New("region"), knownvalue.StringExact("eu")),
					statecheck.ExpectKnownValue("data.glbdns_pool.edge", tfjsonpath.New("unknown_is"), knownvalue.StringExact("down")),
					statecheck.ExpectKnownValue("data.glbdns_pool.edge", tfjsonpath.New("members"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"name": knownvalue.StringExact("cdn"), "address": knownvalue.Null(),
							"host": knownvalue.StringExact("eu.cdn.example.net"), "weight": knownvalue.Int64Exact(2),
							"port": knownvalue.Null(),
						}),
					})),
					statecheck.ExpectKnownValue("data.glbdns_pool.edge", tfjsonpath.New("checks").AtSliceIndex(0), knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"name": knownvalue.StringExact("tcp"), "port": knownvalue.Int64Exact(443), "type": knownvalue.Null(),
					})),
					statecheck.ExpectKnownValue("data.glbdns_pool.edge", tfjsonpath.New("managed"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.glbdns_member_health.edge", tfjsonpath.New("members").AtSliceIndex(0).AtMapKey("name"), knownvalue.StringExact("cdn")),
					statecheck.ExpectKnownValue("data.glbdns_member_health.edge", tfjsonpath.New("members").AtSliceIndex(0).AtMapKey("status"), knownvalue.NotNull()),
				},
				Check: resource.TestCheckResourceAttrPair("data.glbdns_pool.edge", "version", "glbdns_pool.edge", "version"),
			},
			{
				Config:      providerConfig(url, token) + `data "glbdns_pool" "x" { name = "no-such-pool" }`,
				ExpectError: regexp.MustCompile(`Pool not found`),
			},
		},
	})
}
