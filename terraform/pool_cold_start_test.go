package terraform

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func coldStartConfig(url, token, coldStart string) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "fn" {
  name       = "fn"
  members    = [{ name = "a", address = "192.0.2.80" }]
  checks     = [{ name = "http", port = 8080, path = "/healthz", interval = "5s", timeout = "2s" }]
  cold_start = %s
}
data "glbdns_pool" "fn" {
  name = glbdns_pool.fn.name
}
`, coldStart)
}

// TestAccPoolColdStart applies a pool with a cold_start attribute (no diff after), imports
// it, refuses a bad duration at plan time and a timeout shorter than the check's at apply
// (the server's rule), and changes it in place.
func TestAccPoolColdStart(t *testing.T) {
	n := startNode(t)
	url, token := n.URL, n.Token
	noDiff := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				Config:           coldStartConfig(url, token, `{ timeout = "20s", idle_after = "30m" }`),
				ConfigPlanChecks: noDiff,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.fn", tfjsonpath.New("cold_start"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"timeout": knownvalue.StringExact("20s"), "idle_after": knownvalue.StringExact("30m"), "idle_interval": knownvalue.Null(),
					})),
					statecheck.ExpectKnownValue("data.glbdns_pool.fn", tfjsonpath.New("cold_start").AtMapKey("idle_after"), knownvalue.StringExact("30m")),
				},
			},
			{ResourceName: "glbdns_pool.fn", ImportState: true, ImportStateId: "fn", ImportStateVerify: true},
			{Config: coldStartConfig(url, token, `{ idle_after = "soon" }`), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Invalid duration.*"soon"`)},
			{Config: coldStartConfig(url, token, `{ timeout = "1s" }`), ExpectError: regexp.MustCompile(`(?s)Invalid cold_start timeout`)},
			{
				Config:           coldStartConfig(url, token, `{ idle_interval = "15m" }`),
				ConfigPlanChecks: noDiff,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.fn", tfjsonpath.New("cold_start").AtMapKey("idle_interval"), knownvalue.StringExact("15m")),
				},
			},
		},
	})
}
