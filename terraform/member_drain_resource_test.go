package terraform

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func drainConfig(url, token, duration, reason string) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "eu" {
  name    = "web-eu"
  members = [
    { name = "fra-1", address = "192.0.2.10" },
    { name = "ams-1", address = "192.0.2.11" },
  ]
}
resource "glbdns_member_drain" "fra" {
  pool     = glbdns_pool.eu.name
  member   = "fra-1"
  duration = %q
  reason   = %q
}
data "glbdns_member_health" "eu" {
  pool       = glbdns_pool.eu.name
  depends_on = [glbdns_member_drain.fra]
}
`, duration, reason)
}

// untilWithin checks that until is an RFC 3339 time within d from now, give or take a minute.
func untilWithin(d time.Duration) resource.TestCheckFunc {
	return resource.TestCheckResourceAttrWith("glbdns_member_drain.fra", "until", func(v string) error {
		u, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("until %q: %w", v, err)
		}
		if off := time.Until(u) - d; off < -time.Minute || off > time.Minute {
			return fmt.Errorf("until %s is not %s from now", v, d)
		}
		return nil
	})
}

func TestAccMemberDrainResource(t *testing.T) {
	url, token := startAPI(t)
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config: drainConfig(url, token, "1h", "kernel upgrade"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_member_drain.fra", tfjsonpath.New("id"), knownvalue.StringExact("web-eu/fra-1")),
					statecheck.ExpectKnownValue("data.glbdns_member_health.eu", tfjsonpath.New("members"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("fra-1"), "drained": knownvalue.Bool(true)}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("ams-1"), "drained": knownvalue.Bool(false)}),
					})),
				},
				Check: untilWithin(time.Hour),
			},
			{
				ResourceName:      "glbdns_member_drain.fra",
				ImportState:       true,
				ImportStateId:     "web-eu/fra-1",
				ImportStateVerify: true,
				// The server keeps until, not the duration it was computed from.
				ImportStateVerifyIgnore: []string{"duration"},
			},
			{ // extend in place: the member is drained again for the new duration
				Config: drainConfig(url, token, "3h", "kernel upgrade, take two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_member_drain.fra", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("glbdns_member_drain.fra", tfjsonpath.New("until")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_member_drain.fra", tfjsonpath.New("reason"), knownvalue.StringExact("kernel upgrade, take two")),
				},
				Check: untilWithin(3 * time.Hour),
			},
		},
	})
}

func TestAccMemberDrainResource_errors(t *testing.T) {
	url, token := startAPI(t)
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config:      drainConfig(url, token, "soon", ""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid duration.*positive Go duration`),
			},
			{
				Config: providerConfig(url, token) + `
resource "glbdns_pool" "eu" {
  name    = "web-eu"
  members = [{ name = "fra-1", address = "192.0.2.10" }]
}
resource "glbdns_member_drain" "x" {
  pool     = glbdns_pool.eu.name
  member   = "no-such-member"
  duration = "10m"
}`,
				ExpectError: regexp.MustCompile(`(?s)Reference to a missing object.*no-such-member`),
			},
			{
				ResourceName:  "glbdns_member_drain.x",
				ImportState:   true,
				ImportStateId: "no-slash",
				ExpectError:   regexp.MustCompile(`Invalid import ID`),
			},
		},
	})
}
