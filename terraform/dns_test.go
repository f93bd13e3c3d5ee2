package terraform

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// dnsConfig is a pool of two members answered together by one service, and, when drain is
// set, a drain of fra-1.
func dnsConfig(url, token, amsAddress string, drain bool) string {
	cfg := providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "web" {
  name    = "web-eu"
  members = [
    { name = "fra-1", address = "192.0.2.10" },
    { name = "ams-1", address = %q },
  ]
}
resource "glbdns_service" "www" {
  name    = "www.glb.example.com"
  pools   = [glbdns_pool.web.name]
  answers = 2
}
`, amsAddress)
	if drain {
		cfg += `
resource "glbdns_member_drain" "fra" {
  pool     = glbdns_pool.web.name
  member   = "fra-1"
  duration = "1h"
  reason   = "kernel upgrade"
}
`
	}
	return cfg
}

// TestAccDNSAnswers applies configurations to a real glbdns and asks it over DNS, after
// every apply, whether the answers follow: a created service answers with its pool's
// members, a changed address is answered at once, a change made through the API is
// answered (and reverted by the next apply), a drained member leaves the answers and
// comes back when the drain is destroyed, and a destroyed service is NXDOMAIN.
func TestAccDNSAnswers(t *testing.T) {
	n := startNode(t)
	const www = "www.glb.example.com"
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, www), // NXDOMAIN
		Steps: []resource.TestStep{
			{ // create
				PreConfig: func() {
					if err := checkDNS(n, www)(nil); err != nil {
						t.Fatalf("before any apply: %v", err)
					}
				},
				Config: dnsConfig(n.URL, n.Token, "192.0.2.11", false),
				Check:  checkDNS(n, www, "192.0.2.10", "192.0.2.11"),
			},
			{ // a member's address changes in place
				Config: dnsConfig(n.URL, n.Token, "192.0.2.12", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.web", plancheck.ResourceActionUpdate),
				}},
				Check: checkDNS(n, www, "192.0.2.10", "192.0.2.12"),
			},
			{ // changed through the API: answered at once, shown as drift, reverted by apply
				PreConfig: func() {
					putWithETag(t, n.URL, n.Token, "/v1/pools/web-eu", func(p map[string]any) {
						p["members"].([]any)[0].(map[string]any)["address"] = "192.0.2.99"
					})
					if err := checkDNS(n, www, "192.0.2.99", "192.0.2.12")(nil); err != nil {
						t.Fatalf("after the PUT: %v", err)
					}
				},
				Config: dnsConfig(n.URL, n.Token, "192.0.2.12", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.web", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("glbdns_service.www", plancheck.ResourceActionNoop),
				}},
				Check: checkDNS(n, www, "192.0.2.10", "192.0.2.12"),
			},
			{ // drained: fra-1 leaves the answers
				Config: dnsConfig(n.URL, n.Token, "192.0.2.12", true),
				Check:  checkDNS(n, www, "192.0.2.12"),
			},
			{ // the drain destroyed: fra-1 is back
				Config: dnsConfig(n.URL, n.Token, "192.0.2.12", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_member_drain.fra", plancheck.ResourceActionDestroy),
				}},
				Check: checkDNS(n, www, "192.0.2.10", "192.0.2.12"),
			},
		},
	})
}
