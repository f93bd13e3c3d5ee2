package terraform

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/store"
	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// headersConfig is a pool whose check sends a credential, and a second header.
func headersConfig(url, token, auth string) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "test" {
  name    = "web-eu"
  members = [{ name = "fra-1", address = "192.0.2.10" }]
  checks = [
    { name = "http", port = 8080, headers = { Authorization = %q, X-Tenant = "acme" } },
  ]
}
`, auth)
}

// checkStoredHeaders is a TestCheckFunc that compiles the node's policy and documents as
// healthd does (a store of its own on them) and compares the check's headers with want:
// what the masked API never shows must still reach the prober.
func checkStoredHeaders(n *glbtest.Node, pool string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		st, err := store.Open(n.PolicyDir, n.ManagedDir)
		if err != nil {
			return err
		}
		defer st.Close()
		snap, diags := st.Load()
		if diags.HasErrors() {
			return diags
		}
		p := snap.PoolByName[pool]
		if p == nil || len(p.Checks) != 1 {
			return fmt.Errorf("compiled pool %s = %+v", pool, p)
		}
		if got := p.Checks[0].Headers; !maps.Equal(got, want) {
			return fmt.Errorf("headers healthd would send: %v, want %v", got, want)
		}
		return nil
	}
}

// checkNotRead is a TestCheckFunc that reads the pool from the API and wants none of
// secrets in the body.
func checkNotRead(n *glbtest.Node, secrets ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		req, err := http.NewRequest(http.MethodGet, n.URL+"/v1/pools/web-eu", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+n.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				return fmt.Errorf("GET /v1/pools/web-eu shows %q: %s", s, b)
			}
		}
		return nil
	}
}

// TestAccPoolResource_headers: the API never returns header values, so the state keeps
// the configured ones; a plan after apply is empty, a changed value is applied, an import
// holds the mask until the next apply, and a header removed outside Terraform comes back.
func TestAccPoolResource_headers(t *testing.T) {
	n := startNode(t)
	headers := func(auth string) knownvalue.Check {
		return knownvalue.MapExact(map[string]knownvalue.Check{
			"Authorization": knownvalue.StringExact(auth), "X-Tenant": knownvalue.StringExact("acme"),
		})
	}
	at := tfjsonpath.New("checks").AtSliceIndex(0).AtMapKey("headers")
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{ // the mask itself cannot be configured (first: the last step's configuration is destroyed)
				Config:      headersConfig(n.URL, n.Token, api.HeaderMask),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid header value`),
			},
			{ // create: the state holds the configured values, healthd would send them
				Config:            headersConfig(n.URL, n.Token, "Bearer one"),
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("glbdns_pool.test", at, headers("Bearer one"))},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkStoredHeaders(n, "web-eu", map[string]string{"Authorization": "Bearer one", "X-Tenant": "acme"}),
					checkNotRead(n, "Bearer one", "acme"),
				),
			},
			{ // a refresh and a plan with the same configuration: no diff
				Config:   headersConfig(n.URL, n.Token, "Bearer one"),
				PlanOnly: true,
			},
			{ // an import cannot read the values: it holds the mask (the next apply sends them)
				ResourceName:            "glbdns_pool.test",
				ImportState:             true,
				ImportStateId:           "web-eu",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"checks.0.headers"},
				ImportStateCheck: func(s []*terraform.InstanceState) error {
					if len(s) != 1 || s[0].Attributes["checks.0.headers.Authorization"] != api.HeaderMask {
						return fmt.Errorf("imported headers: %v", s)
					}
					return nil
				},
			},
			{ // a changed value is applied
				Config: headersConfig(n.URL, n.Token, "Bearer two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.test", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("glbdns_pool.test", at, headers("Bearer two"))},
				Check:             checkStoredHeaders(n, "web-eu", map[string]string{"Authorization": "Bearer two", "X-Tenant": "acme"}),
			},
			{ // a header removed outside Terraform shows as drift, and apply puts it back
				PreConfig: func() {
					putWithETag(t, n.URL, n.Token, "/v1/pools/web-eu", func(p map[string]any) {
						delete(p["checks"].([]any)[0].(map[string]any)["headers"].(map[string]any), "X-Tenant")
					})
				},
				Config: headersConfig(n.URL, n.Token, "Bearer two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.test", plancheck.ResourceActionUpdate),
				}},
				Check: checkStoredHeaders(n, "web-eu", map[string]string{"Authorization": "Bearer two", "X-Tenant": "acme"}),
			},
			{ // the limitation: a value changed outside Terraform reads back as the mask, so
				// the plan cannot see it (docs/resources/pool.md)
				PreConfig: func() {
					putWithETag(t, n.URL, n.Token, "/v1/pools/web-eu", func(p map[string]any) {
						p["checks"].([]any)[0].(map[string]any)["headers"].(map[string]any)["Authorization"] = "Bearer elsewhere"
					})
				},
				Config: headersConfig(n.URL, n.Token, "Bearer two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: checkStoredHeaders(n, "web-eu", map[string]string{"Authorization": "Bearer elsewhere", "X-Tenant": "acme"}),
			},
		},
	})
}

// TestAccPoolDocsHeadersExample applies the "Check headers" example of
// docs/resources/pool.md, its token given as the variable it declares.
func TestAccPoolDocsHeadersExample(t *testing.T) {
	n := startNode(t)
	doc, err := os.ReadFile("docs/resources/pool.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Check headers\n.*?```terraform\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/resources/pool.md has no terraform block under \"## Check headers\"")
	}
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config:          providerConfig(n.URL, n.Token) + string(m[1]),
			ConfigVariables: config.Variables{"health_token": config.StringVariable("t0k-sekrit")},
			Check: resource.ComposeAggregateTestCheckFunc(
				checkStoredHeaders(n, "api", map[string]string{"Authorization": "Bearer t0k-sekrit"}),
				resource.TestCheckResourceAttr("glbdns_pool.api", "checks.0.headers.Authorization", "Bearer t0k-sekrit"),
			),
		}},
	})
}
