package terraform

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccExampleMain applies examples/main.tf as written, with only the endpoint and token
// pointed at the test's API, so the documented example cannot rot.
func TestAccExampleMain(t *testing.T) {
	url, token := startAPI(t)
	b, err := os.ReadFile("examples/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	const endpoint = `endpoint = "http://127.0.0.1:8053"`
	if !strings.Contains(string(b), endpoint) {
		t.Fatalf("examples/main.tf no longer sets %s", endpoint)
	}
	cfg := strings.Replace(string(b), endpoint, `endpoint = "`+url+`"
  token    = "`+token+`"`, 1)
	// The example names its source "glbdns/glbdns"; register the in-process provider there.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "glbdns")
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("glbdns_service.www", tfjsonpath.New("policy"), knownvalue.StringExact("weighted")),
				statecheck.ExpectKnownValue("glbdns_member_drain.fra_1", tfjsonpath.New("id"), knownvalue.StringExact("web-eu/fra-1")),
				// fra-1 is drained and ams-1 (192.0.2.11, TEST-NET-1) cannot be up: no reporter, or down.
				statecheck.ExpectKnownOutputValue("web_eu_members_up", knownvalue.Int64Exact(0)),
			},
		}},
	})
}
