package terraform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/glbdns/glbdns/terraform/client"
	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// endpointsConfig is the provider block with several endpoints.
func endpointsConfig(token string, urls ...string) string {
	var quoted []string
	for _, u := range urls {
		quoted = append(quoted, fmt.Sprintf("%q", u))
	}
	return fmt.Sprintf(`
provider "glbdns" {
  endpoints = [%s]
  token     = %q
}
`, strings.Join(quoted, ", "), token)
}

// appConfig is a pool of one member at addr, a service www answering with it, and the
// pool read back through the data source.
func appConfig(addr string) string {
	return fmt.Sprintf(`
resource "glbdns_pool" "web" {
  name    = "web"
  members = [{ name = "m1", address = %q }]
}

resource "glbdns_service" "www" {
  name  = "www.glb.example.com"
  pools = [glbdns_pool.web.name]
}

data "glbdns_pool" "web" {
  name = glbdns_pool.web.name
}
`, addr)
}

// TestAccProviderFailover runs two real glbdns nodes with the same operator policy and a
// provider given both. With both up, everything goes to the first (the second, which
// shares no store with it, has nothing). Then the first is shut down: the next plan's
// refresh goes to the second, which has none of the objects, so they are created there,
// read back (data source, import), updated and destroyed, all through the second node.
func TestAccProviderFailover(t *testing.T) {
	nodes := glbtest.StartNodes(t, 2, glbtest.Options{Token: accToken})
	a, b := nodes[0], nodes[1]
	const www = "www.glb.example.com"
	cfg := func(addr string) string { return endpointsConfig(accToken, a.URL, b.URL) + appConfig(addr) }
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(b, www), // NXDOMAIN
		Steps: []resource.TestStep{
			{ // both up: the first endpoint serves every request
				Config: cfg("192.0.2.10"),
				Check:  resource.ComposeAggregateTestCheckFunc(checkDNS(a, www, "192.0.2.10"), checkDNS(b, www)),
			},
			{ // the first is down: refresh, create and read go to the second
				PreConfig: a.Stop,
				Config:    cfg("192.0.2.10"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.web", plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction("glbdns_service.www", plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.glbdns_pool.web", tfjsonpath.New("members").AtSliceIndex(0).AtMapKey("address"),
						knownvalue.StringExact("192.0.2.10")),
				},
				Check: checkDNS(b, www, "192.0.2.10"),
			},
			{
				ResourceName:      "glbdns_service.www",
				ImportState:       true,
				ImportStateId:     www,
				ImportStateVerify: true,
			},
			{ // update in place, with If-Match, through the second
				Config: cfg("192.0.2.20"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("glbdns_pool.web", plancheck.ResourceActionUpdate),
				}},
				Check: checkDNS(b, www, "192.0.2.20"),
			},
		},
	})
}

// TestAccProviderEndpointsEnv configures the endpoints through GLBDNS_ENDPOINTS alone,
// the first of them down.
func TestAccProviderEndpointsEnv(t *testing.T) {
	nodes := glbtest.StartNodes(t, 2, glbtest.Options{Token: accToken})
	a, b := nodes[0], nodes[1]
	a.Stop()
	t.Setenv(EnvEndpoints, a.URL+", "+b.URL+",")
	t.Setenv(EnvEndpoint, "")
	accTest(t, resource.TestCase{
		CheckDestroy: checkDNS(b, "www.glb.example.com"),
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf("provider \"glbdns\" {\n  token = %q\n}\n", accToken) + appConfig("192.0.2.10"),
			Check:  checkDNS(b, "www.glb.example.com", "192.0.2.10"),
		}},
	})
}

// TestAccProviderNoEndpointAnswers stops both nodes: the plan (the data source's read)
// fails with one diagnostic that names each endpoint and why it failed.
func TestAccProviderNoEndpointAnswers(t *testing.T) {
	nodes := glbtest.StartNodes(t, 2, glbtest.Options{Token: accToken})
	a, b := nodes[0], nodes[1]
	a.Stop()
	b.Stop()
	accTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			Config:   endpointsConfig(accToken, a.URL, b.URL) + "data \"glbdns_pool\" \"web\" {\n  name = \"web\"\n}\n",
			PlanOnly: true,
			ExpectError: inOrder("glbdns not reachable", "Could not read pool web: GET /v1/pools/web: no endpoint answered:",
				a.URL+": dial tcp", "connection refused", b.URL+": dial tcp", "connection refused", "Check that the provider's endpoints"),
		}},
	})
}

// TestAPIErrorEndpoints checks the diagnostics of the client's *EndpointError: a request
// no endpoint answered, and a write that stopped because it may have been applied.
func TestAPIErrorEndpoints(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	tests := []struct {
		name    string
		err     error
		summary string
		detail  []string
	}{
		{"unreachable", &client.EndpointError{Method: "GET", Path: "/v1/pools/web", Attempts: []client.Attempt{
			{Endpoint: "http://127.0.0.1:1", Err: refused},
			{Endpoint: "http://127.0.0.1:2", Err: &client.APIError{StatusCode: 503, Reason: "store unavailable"}},
		}}, "glbdns not reachable", []string{
			"Could not read pool web: GET /v1/pools/web: no endpoint answered: http://127.0.0.1:1: dial tcp",
			"; http://127.0.0.1:2: 503 store unavailable.", "Check that the provider's endpoints"}},
		{"write not retried", &client.EndpointError{Method: "POST", Path: "/v1/pools", Attempts: []client.Attempt{
			{Endpoint: "http://127.0.0.1:1", Err: refused},
			{Endpoint: "http://127.0.0.1:2", Err: fmt.Errorf("no answer within 30s: %w", context.DeadlineExceeded)},
		}, NotRetried: []string{"http://127.0.0.1:3"}}, "Write not retried", []string{
			"http://127.0.0.1:2: no answer within 30s: context deadline exceeded; not retried on http://127.0.0.1:3, since the write may have been applied.",
			"Run terraform refresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var diags diag.Diagnostics
			addAPIError(&diags, "read pool web", tt.err)
			if len(diags) != 1 || diags[0].Summary() != tt.summary {
				t.Fatalf("diagnostics %v; want one with summary %q", diags, tt.summary)
			}
			if !inOrder(tt.detail...).MatchString(diags[0].Detail()) {
				t.Errorf("detail %q; want %q in order", diags[0].Detail(), tt.detail)
			}
		})
	}
}

// TestAccProvider_endpointsValidation checks that bad endpoints fail at plan time, on the
// attribute (and the list element) at fault, before any request is sent.
func TestAccProvider_endpointsValidation(t *testing.T) {
	steps := []struct {
		provider string
		want     []string // in this order in the output, which wraps lines anywhere
	}{
		{`endpoint = "127.0.0.1:8053"`, []string{"Invalid glbdns endpoint", "The value of endpoint must be an http or https URL",
			`endpoint "127.0.0.1:8053": no scheme; want an http or https URL with a host`}},
		{`endpoint = "http://127.0.0.1:8053/?x=1"`, []string{"Invalid glbdns endpoint", "want no query or fragment"}},
		{`endpoints = ["http://127.0.0.1:1", "ftp://127.0.0.1:2"]`, []string{"Invalid glbdns endpoint",
			"The value of endpoints[1] must be", `endpoint "ftp://127.0.0.1:2": want an http or https URL`}},
		{`endpoints = ["http://127.0.0.1:1", "http://127.0.0.1:2", "HTTP://127.0.0.1:1/"]`, []string{"Duplicate glbdns endpoint",
			`endpoints[2] ("HTTP://127.0.0.1:1/") is the same endpoint as endpoints[0]`}},
		{`endpoints = []`, []string{"Invalid Attribute Value", "endpoints list must contain at least 1 elements"}},
		{`endpoints = ["http://127.0.0.1:1", null]`, []string{"Null List Value"}},
		{`endpoint  = "http://127.0.0.1:1"
  endpoints = ["http://127.0.0.1:2"]`, []string{"Invalid Attribute Combination", `"endpoint"`}},
	}
	tc := resource.TestCase{}
	for _, s := range steps {
		tc.Steps = append(tc.Steps, resource.TestStep{
			Config:      fmt.Sprintf("provider \"glbdns\" {\n  %s\n}\n", s.provider) + appConfig("192.0.2.10"),
			PlanOnly:    true,
			ExpectError: inOrder(s.want...),
		})
	}
	accTest(t, tc)
}

// inOrder matches output that holds each of texts in turn, wherever Terraform has
// wrapped the lines.
func inOrder(texts ...string) *regexp.Regexp {
	parts := make([]string, len(texts))
	for i, s := range texts {
		parts[i] = strings.Join(strings.Fields(regexp.QuoteMeta(s)), `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, ".*"))
}

// TestConfigEndpoints is the precedence of configEndpoints: the configuration's endpoint
// or endpoints, else GLBDNS_ENDPOINTS, else GLBDNS_ENDPOINT, never both variables.
func TestConfigEndpoints(t *testing.T) {
	list := func(urls ...string) types.List {
		var vs []attr.Value
		for _, u := range urls {
			vs = append(vs, types.StringValue(u))
		}
		return types.ListValueMust(types.StringType, vs)
	}
	unset := providerModel{Endpoint: types.StringNull(), Endpoints: types.ListNull(types.StringType)}
	tests := []struct {
		name    string
		cfg     providerModel
		env     map[string]string
		want    []string
		wantErr string
	}{
		{"endpoint", providerModel{Endpoint: types.StringValue("http://a:1"), Endpoints: types.ListNull(types.StringType)},
			map[string]string{EnvEndpoints: "http://x:1"}, []string{"http://a:1"}, ""},
		{"endpoints", providerModel{Endpoint: types.StringNull(), Endpoints: list("http://a:1", "http://b:1")},
			map[string]string{EnvEndpoint: "http://x:1"}, []string{"http://a:1", "http://b:1"}, ""},
		{"GLBDNS_ENDPOINTS", unset, map[string]string{EnvEndpoints: " http://a:1, http://b:1 ,"}, []string{"http://a:1", "http://b:1"}, ""},
		{"GLBDNS_ENDPOINT", unset, map[string]string{EnvEndpoint: "http://a:1"}, []string{"http://a:1"}, ""},
		{"both variables", unset, map[string]string{EnvEndpoint: "http://a:1", EnvEndpoints: "http://b:1"}, nil,
			"Both GLBDNS_ENDPOINTS and GLBDNS_ENDPOINT are set"},
		{"several in GLBDNS_ENDPOINT", unset, map[string]string{EnvEndpoint: "http://a:1,http://b:1"}, nil,
			"GLBDNS_ENDPOINT holds one URL"},
		{"bad URL in GLBDNS_ENDPOINTS", unset, map[string]string{EnvEndpoints: "http://a:1,b:1"}, nil,
			`GLBDNS_ENDPOINTS must hold http or https URLs with a host, such as http://127.0.0.1:8053: endpoint "b:1"`},
		{"duplicate in GLBDNS_ENDPOINTS", unset, map[string]string{EnvEndpoints: "http://a:1,http://A:1/"}, nil,
			`GLBDNS_ENDPOINTS names "http://a:1" and "http://A:1/", which are the same endpoint`},
		{"nothing", unset, nil, nil, "Set the endpoint or endpoints attribute, or the GLBDNS_ENDPOINTS or GLBDNS_ENDPOINT environment variable"},
		{"unknown endpoints", providerModel{Endpoint: types.StringNull(),
			Endpoints: types.ListValueMust(types.StringType, []attr.Value{types.StringValue("http://a:1"), types.StringUnknown()})},
			nil, nil, "endpoints are not known until apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := configEndpoints(tt.cfg, func(k string) string { return tt.env[k] })
			if tt.wantErr == "" {
				if diags.HasError() || !slices.Equal(got, tt.want) {
					t.Errorf("got %q, %v; want %q", got, diags, tt.want)
				}
				return
			}
			if !diags.HasError() || !strings.Contains(diags[0].Detail(), tt.wantErr) {
				t.Errorf("got %q, %v; want an error containing %q", got, diags, tt.wantErr)
			}
		})
	}
}
