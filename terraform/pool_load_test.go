package terraform

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// loadConfig is a pool with a load attribute and a least_connections service over it.
func loadConfig(url, token, load string) string {
	return providerConfig(url, token) + fmt.Sprintf(`
resource "glbdns_pool" "app" {
  name = "app"
  members = [
    { name = "a", address = "192.0.2.70" },
    { name = "b", address = "192.0.2.71", weight = 2 },
  ]
  checks = [{ name = "http", port = 8080, path = "/healthz" }]
  load   = %s
}
resource "glbdns_service" "lc" {
  name   = "lc.glb.example.com"
  policy = "least_connections"
  pools  = [glbdns_pool.app.name]
}
data "glbdns_pool" "app" {
  name = glbdns_pool.app.name
}
`, load)
}

// TestAccPoolLoad applies a pool with a load attribute and a least_connections service
// over it, with no diff on the plan after; imports the pool; changes the metric in place
// (the server stores the new one); and switches the signal to json.
func TestAccPoolLoad(t *testing.T) {
	n := startNode(t)
	url, token := n.URL, n.Token
	const lc = "lc.glb.example.com"
	noDiff := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, lc), // NXDOMAIN
		Steps: []resource.TestStep{
			{
				Config: loadConfig(url, token, `{
    metric   = "active_connections"
    labels   = { listener = "public" }
    interval = "3s"
    timeout  = "1s"
  }`),
				ConfigPlanChecks: noDiff,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.app", tfjsonpath.New("load"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"type": knownvalue.Null(), "metric": knownvalue.StringExact("active_connections"),
						"labels": knownvalue.MapExact(map[string]knownvalue.Check{"listener": knownvalue.StringExact("public")}),
						"field":  knownvalue.Null(), "port": knownvalue.Null(), "path": knownvalue.Null(), "scheme": knownvalue.Null(),
						"interval": knownvalue.StringExact("3s"), "timeout": knownvalue.StringExact("1s"),
					})),
					statecheck.ExpectKnownValue("glbdns_service.lc", tfjsonpath.New("policy"), knownvalue.StringExact("least_connections")),
					statecheck.ExpectKnownValue("data.glbdns_pool.app", tfjsonpath.New("load").AtMapKey("metric"), knownvalue.StringExact("active_connections")),
				},
				// No healthd reports loads here: least_connections answers as weighted.
				Check: checkDNSFrom(n, lc, 1, "192.0.2.70", "192.0.2.71"),
			},
			{ResourceName: "glbdns_pool.app", ImportState: true, ImportStateId: "app", ImportStateVerify: true},
			{ // the metric changes in place, and the server stores the new one
				Config: loadConfig(url, token, `{
    metric   = "open_connections"
    labels   = { listener = "public" }
    interval = "3s"
    timeout  = "1s"
  }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("glbdns_pool.app", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.app", tfjsonpath.New("load").AtMapKey("metric"), knownvalue.StringExact("open_connections")),
				},
				Check: checkStoredLoad(n, "app", func(l *api.Load) bool { return l != nil && l.Metric == "open_connections" }),
			},
			{ // a json signal on its own port; labels removed
				Config:           loadConfig(url, token, `{ type = "json", field = "connections.active", port = 9100, path = "/stats" }`),
				ConfigPlanChecks: noDiff,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.app", tfjsonpath.New("load"), knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"type": knownvalue.StringExact("json"), "field": knownvalue.StringExact("connections.active"),
						"metric": knownvalue.Null(), "labels": knownvalue.Null(), "port": knownvalue.Int64Exact(9100),
					})),
				},
				Check: checkStoredLoad(n, "app", func(l *api.Load) bool { return l != nil && l.Type == "json" && l.Labels == nil }),
			},
		},
	})
}

// checkStoredLoad reads pool name from the node's API and tests its load block.
func checkStoredLoad(n *glbtest.Node, name string, ok func(*api.Load) bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		req, err := http.NewRequest(http.MethodGet, n.URL+"/v1/pools/"+name, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+n.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var p api.Pool
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			return err
		}
		if !ok(p.Load) {
			return fmt.Errorf("pool %s: stored load %+v", name, p.Load)
		}
		return nil
	}
}

// TestAccPoolLoad_validation: the load attribute's plan-time checks match the policy
// package's, and a least_connections service over a pool without load is refused by the
// server at the pool's name.
func TestAccPoolLoad_validation(t *testing.T) {
	url, token := startAPI(t)
	pool := func(load string) string {
		return providerConfig(url, token) + `resource "glbdns_pool" "bad" {
  name    = "bad"
  members = [{ name = "a", address = "192.0.2.1" }]
  load    = ` + load + `
}`
	}
	cases := []struct{ load, err string }{
		{`{ type = "xml", metric = "x" }`, `(?s)type.*value must be one of`},
		{`{}`, `Missing load metric`},
		{`{ type = "json" }`, `Missing load field`},
		{`{ metric = "conns", field = "a.b" }`, `(?s)Unsupported argument.*"field" argument does not apply to a\s+prometheus`},
		{`{ type = "number", labels = { a = "b" } }`, `(?s)Unsupported argument.*"labels"`},
		{`{ metric = "1-conns" }`, `(?s)metric.*Prometheus metric name`},
		{`{ type = "json", field = "a..b" }`, `(?s)field.*dotted path`},
		{`{ metric = "conns", port = 0 }`, `(?s)port.*must be between 1 and 65535`},
		{`{ metric = "conns", path = "metrics" }`, `(?s)path.*must start with "/"`},
		{`{ metric = "conns", scheme = "ftp" }`, `(?s)scheme.*value must be one of`},
		{`{ metric = "conns", interval = "soon" }`, `(?s)Invalid duration.*"soon" must be a positive Go duration`},
		{`{ metric = "conns", interval = "2s", timeout = "2s" }`, `(?s)Invalid timeout.*shorter than its interval`},
	}
	var steps []resource.TestStep
	for _, c := range cases {
		steps = append(steps, resource.TestStep{Config: pool(c.load), PlanOnly: true, ExpectError: regexp.MustCompile(c.err)})
	}
	steps = append(steps,
		// The interval left unset is the default (or the first http check's): caught at plan
		// time too, at the attribute.
		resource.TestStep{Config: pool(`{ metric = "conns", timeout = "5s" }`), PlanOnly: true,
			ExpectError: regexp.MustCompile(`(?s)Invalid timeout.*load\.timeout: The load timeout \(5s\) must be shorter than its interval \(5s\)`)},
		resource.TestStep{Config: providerConfig(url, token) + `
resource "glbdns_pool" "plain" {
  name    = "plain"
  members = [{ name = "a", address = "192.0.2.1" }]
}
resource "glbdns_service" "lc" {
  name   = "lc.glb.example.com"
  policy = "least_connections"
  pools  = [glbdns_pool.plain.name]
}`, ExpectError: regexp.MustCompile(`(?s)pools.*Pool\s+without\s+load\s+signal.*no\s+load\s+block`)},
	)
	accTest(t, resource.TestCase{Steps: steps})
}
