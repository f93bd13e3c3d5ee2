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

const twoPools = `
resource "glbdns_pool" "eu" {
  name    = "web-eu"
  members = [{ name = "fra-1", address = "192.0.2.10" }]
}
resource "glbdns_pool" "us" {
  name    = "web-us"
  members = [{ name = "iad-1", address = "198.51.100.10" }]
}
`

func serviceConfig(url, token, extra string) string {
	return providerConfig(url, token) + twoPools + fmt.Sprintf(`
resource "glbdns_service" "www" {
  name   = "www.glb.example.com"
  policy = "weighted"
  pools  = [glbdns_pool.eu.name, glbdns_pool.us.name]
  %s
}
`, extra)
}

func TestAccServiceResource(t *testing.T) {
	n := startNode(t)
	url, token := n.URL, n.Token
	const www = "www.glb.example.com"
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, www), // NXDOMAIN
		Steps: []resource.TestStep{
			{
				Config: serviceConfig(url, token, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("policy"), knownvalue.StringExact("weighted")),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("ttl"), knownvalue.Int64Exact(30)),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("answers"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("when_all_down"), knownvalue.StringExact("all")),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("fallback"), knownvalue.Null()),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("hash_prefix_v6"), knownvalue.Int64Exact(56)),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("pools"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("web-eu"), knownvalue.StringExact("web-us"),
					})),
				},
				// weighted, one answer: one member of either pool
				Check: checkDNSFrom(n, www, 1, "192.0.2.10", "198.51.100.10"),
			},
			{
				ResourceName:      "glbdns_service.www",
				ImportState:       true,
				ImportStateId:     "www.glb.example.com",
				ImportStateVerify: true,
			},
			{
				Config: serviceConfig(url, token, `ttl = 60
  answers = 2
  when_all_down = "fallback"
  fallback = glbdns_pool.us.name
  hash_prefix_v4 = 20`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_service.www", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("ttl"), knownvalue.Int64Exact(60)),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("answers"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("fallback"), knownvalue.StringExact("web-us")),
					statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("hash_prefix_v4"), knownvalue.Int64Exact(20)),
				},
				Check: checkDNS(n, www, "192.0.2.10", "198.51.100.10"), // two answers: both pools
			},
		},
	})
}

func TestAccServiceResource_validation(t *testing.T) {
	url, token := startAPI(t)
	steps := []struct {
		extra string
		want  string
	}{
		{`policy = "random"`, `(?s)policy.*value must be one of`},
		{`answers = 17`, `(?s)answers.*must be between 0 and 16`},
		{`ttl = -1`, `(?s)ttl.*must be between 0 and 2147483647`},
		{`hash_prefix_v4 = 33`, `(?s)hash_prefix_v4.*must be between 0 and 32`},
		{`hash_prefix_v6 = 129`, `(?s)hash_prefix_v6.*must be between 0 and 128`},
		{`when_all_down = "nothing"`, `(?s)when_all_down.*value must be one of`},
		{`when_all_down = "fallback"`, `Missing fallback`},
		{`fallback = "web-us"`, `Unexpected fallback`},
		// method is the member method inside the pools of a steering service only.
		{`policy = "weighted"
  method = "weighted"`, `(?s)Unexpected method.*with policy "weighted" the policy is itself`},
		{`method = "weighted"`, `(?s)Unexpected method.*with policy "round_robin"`},
		{`policy = "failover"
  method = "random"`, `(?s)method.*value must be one of`},
	}
	tc := resource.TestCase{}
	for _, s := range steps {
		tc.Steps = append(tc.Steps, resource.TestStep{
			Config: providerConfig(url, token) + `resource "glbdns_service" "bad" {
  name  = "bad.glb.example.com"
  pools = ["web-eu"]
  ` + s.extra + "\n}\n",
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(s.want),
		})
	}
	// Only the server knows the pools and zones: 422 and 400 become attribute errors.
	tc.Steps = append(tc.Steps,
		resource.TestStep{
			Config: providerConfig(url, token) + `resource "glbdns_service" "bad" {
  name  = "bad.glb.example.com"
  pools = ["no-such-pool"]
}`,
			ExpectError: regexp.MustCompile(`(?s)Reference to a missing object.*no-such-pool`),
		},
		resource.TestStep{
			Config: providerConfig(url, token) + twoPools + `resource "glbdns_service" "bad" {
  name  = "www.example.org"
  pools = [glbdns_pool.eu.name]
}`,
			ExpectError: regexp.MustCompile(`Service\s+outside\s+every\s+zone`),
		},
	)
	accTest(t, tc)
}
