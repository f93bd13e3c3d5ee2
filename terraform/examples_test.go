package terraform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// exampleEndpoint is the endpoint the documented examples name; the tests point it at
// their node and add the token, which the examples leave to GLBDNS_ADMIN_TOKEN.
const exampleEndpoint = `endpoint = "http://127.0.0.1:8053"`

// pointAt returns the example cfg with its endpoint and token set for the node at url.
func pointAt(t *testing.T, cfg, url, token string) string {
	t.Helper()
	if !strings.Contains(cfg, exampleEndpoint) {
		t.Fatalf("the example no longer sets %s", exampleEndpoint)
	}
	// The examples name their source "glbdns/glbdns"; register the in-process provider there.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "glbdns")
	return strings.Replace(cfg, exampleEndpoint, fmt.Sprintf("endpoint = %q\n  token    = %q", url, token), 1)
}

// TestAccExampleMain applies examples/main.tf as written, with only the endpoint and token
// pointed at a real glbdns, so the documented example cannot rot; e2e's
// TestTerraformApplyToDNS applies the same file with the tofu and provider binaries.
func TestAccExampleMain(t *testing.T) {
	n := startNode(t)
	b, err := os.ReadFile("examples/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, "www.glb.example.com"), // NXDOMAIN
		Steps: []resource.TestStep{{
			Config: pointAt(t, string(b), n.URL, n.Token),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("policy"), knownvalue.StringExact("weighted")),
				statecheck.ExpectKnownValue("glbdns_member_drain.fra_1", tfjsonpath.New("id"), knownvalue.StringExact("web-eu/fra-1")),
				// fra-1 is drained and no healthd reports ams-1 up: none counts as up.
				statecheck.ExpectKnownOutputValue("web_eu_members_up", knownvalue.Int64Exact(0)),
			},
			// fra-1 is drained: the service answers with ams-1 only.
			Check: checkDNS(n, "www.glb.example.com", "192.0.2.11"),
		}},
	})
}

// TestAccReadmeExample applies the ```terraform block of the repository's README.md.
func TestAccReadmeExample(t *testing.T) {
	n := startNode(t)
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```terraform\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) != 1 {
		t.Fatalf("README.md has %d terraform blocks; want 1", len(blocks))
	}
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, "www.glb.example.com"), // NXDOMAIN
		Steps: []resource.TestStep{{
			Config: pointAt(t, blocks[0][1], n.URL, n.Token),
			// weighted, one answer: fra-1 or ams-1
			Check: checkDNSFrom(n, "www.glb.example.com", 1, "192.0.2.10", "192.0.2.11"),
		}},
	})
}

// TestAccExampleFailover applies examples/failover/main.tf as written and follows its DNS
// answers: app-eu answers while two of its members are usable; with two of them drained
// it is below min_healthy and app-us answers.
func TestAccExampleFailover(t *testing.T) {
	n := startNode(t)
	b, err := os.ReadFile("examples/failover/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pointAt(t, string(b), n.URL, n.Token)
	const app = "app.glb.example.com"
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, app), // NXDOMAIN
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("glbdns_pool.eu", tfjsonpath.New("min_healthy"), knownvalue.StringExact("2")),
					statecheck.ExpectKnownValue("glbdns_pool.us", tfjsonpath.New("bias"), knownvalue.Float64Exact(-100)),
					statecheck.ExpectKnownValue("glbdns_service.app", tfjsonpath.New("method"), knownvalue.StringExact("round_robin")),
				},
				Check: checkDNSFrom(n, app, 2, "192.0.2.21", "192.0.2.22", "192.0.2.23"),
			},
			{
				Config: cfg + `
resource "glbdns_member_drain" "fra_1" {
  pool     = glbdns_pool.eu.name
  member   = "fra-1"
  duration = "1h"
}
resource "glbdns_member_drain" "fra_2" {
  pool     = glbdns_pool.eu.name
  member   = "fra-2"
  duration = "1h"
}
`,
				Check: checkDNS(n, app, "198.51.100.21", "198.51.100.22"),
			},
		},
	})
}

// TestAccExampleResources applies the resource examples of the documentation
// (examples/resources/*/resource.tf) together, so that the snippets stay valid against a
// real glbdns. In them fra-1 is drained and web-eu's other member has an IPv6 address
// only: for A queries web-eu has no usable member, so the failover service app answers
// from web-us, and so does the geo service for a client no rule matches. The node's
// policy has a geoip block, which a geo service needs.
func TestAccExampleResources(t *testing.T) {
	n := glbtest.Start(t, glbtest.Options{Token: accToken,
		Policy: fmt.Sprintf("geoip {\n  database = %q\n}\n", geoCityDB(t))})
	files, err := filepath.Glob("examples/resources/*/resource.tf")
	if err != nil || len(files) == 0 {
		t.Fatalf("resource examples: %v, %d files", err, len(files))
	}
	cfg := providerConfig(n.URL, n.Token)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg += "\n" + string(b)
	}
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(n, "app.glb.example.com"), // NXDOMAIN
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("glbdns_pool.web_us", tfjsonpath.New("min_healthy"), knownvalue.StringExact("50%")),
				statecheck.ExpectKnownValue("glbdns_service.app", tfjsonpath.New("policy"), knownvalue.StringExact("failover")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				checkDNSFrom(n, "app.glb.example.com", 1, "198.51.100.10", "198.51.100.11"),
				checkDNSFrom(n, "www.glb.example.com", 1, "198.51.100.10", "198.51.100.11"), // fra-1 drained
				checkDNSFrom(n, "geo.glb.example.com", 1, "198.51.100.10", "198.51.100.11"), // default_pools: web-us first
			),
		}},
	})
}

// exampleEndpoints is the endpoints line of examples/provider/provider.tf.
const exampleEndpoints = `endpoints = ["http://127.0.0.1:8053", "http://127.0.0.1:8054"]`

// TestAccExampleProvider applies examples/provider/provider.tf, the provider page's
// Example Usage, with its endpoints pointed at two real nodes, the first of them down, and
// its token variable set through TF_VAR_; a pool and a service beside it show that the
// provider so configured works, through the second node.
func TestAccExampleProvider(t *testing.T) {
	b, err := os.ReadFile("examples/provider/provider.tf")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	if !strings.Contains(cfg, exampleEndpoints) {
		t.Fatalf("the example no longer sets %s", exampleEndpoints)
	}
	nodes := glbtest.StartNodes(t, 2, glbtest.Options{Token: accToken})
	first, second := nodes[0], nodes[1]
	first.Stop()
	t.Setenv("TF_VAR_glbdns_admin_token", accToken)
	cfg = strings.Replace(cfg, exampleEndpoints, fmt.Sprintf("endpoints = [%q, %q]", first.URL, second.URL), 1)
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(second, "www.glb.example.com"), // NXDOMAIN
		Steps: []resource.TestStep{{
			Config: cfg + appConfig("192.0.2.10"),
			Check:  checkDNS(second, "www.glb.example.com", "192.0.2.10"),
		}},
	})
}

// TestProviderDocs checks that docs/index.md shows examples/provider/provider.tf as its
// Example Usage and lists each provider attribute with its MarkdownDescription.
func TestProviderDocs(t *testing.T) {
	doc, err := os.ReadFile("docs/index.md")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile("examples/provider/provider.tf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "## Example Usage\n\n```terraform\n"+string(ex)+"```\n") {
		t.Error("docs/index.md's Example Usage is not examples/provider/provider.tf")
	}
	var resp provider.SchemaResponse
	New("test")().Schema(context.Background(), provider.SchemaRequest{}, &resp)
	for name, a := range resp.Schema.Attributes {
		line := regexp.MustCompile("(?m)^- `" + name + "` \\([^)]*\\) (.*)$").FindSubmatch(doc)
		if line == nil {
			t.Errorf("docs/index.md does not list %s", name)
			continue
		}
		if got := string(line[1]); got != a.GetMarkdownDescription() {
			t.Errorf("docs/index.md describes %s as\n%s\nwant its MarkdownDescription\n%s", name, got, a.GetMarkdownDescription())
		}
	}
}
