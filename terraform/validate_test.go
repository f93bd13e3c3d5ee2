package terraform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/glbdns/glbdns/api"
)

// planRule is one rule the server enforces that the provider checks at plan time: a
// resource block that breaks it, what the plan's error must say (the summary and the
// attribute path), and the same object as the admin API's JSON, which the real server
// must refuse at the same field.
type planRule struct {
	name     string
	resource string // HCL of one resource
	want     string // regexp on the plan's error
	apiPath  string // where the object is written (POST)
	body     string // the object in the API's JSON
	field    string // the field the server names
}

// member is a member for the pool rules' JSON and HCL.
const (
	hclMember  = `{ name = "a", address = "192.0.2.1" }`
	jsonMember = `{"name": "a", "address": "192.0.2.1"}`
)

func poolRule(name, attrs, want, jsonAttrs, field string) planRule {
	return planRule{
		name: name,
		resource: `resource "glbdns_pool" "p" {
  name    = "p"
  members = [` + hclMember + `]
  ` + attrs + "\n}\n",
		want: want, apiPath: "/v1/pools",
		body:  `{"name": "p", "members": [` + jsonMember + `]` + jsonAttrs + `}`,
		field: field,
	}
}

func checkRule(name, check, want, jsonCheck, field string) planRule {
	return poolRule(name, "checks = ["+check+"]", want, `, "checks": [`+jsonCheck+`]`, field)
}

// planRules has one case per kind of rule the provider now checks at plan time.
var planRules = []planRule{
	{name: "duplicate member", resource: `resource "glbdns_pool" "p" {
  name    = "p"
  members = [` + hclMember + `, { name = "a", address = "192.0.2.2" }]
}`, want: `(?s)Duplicate member.*members\[1\]\.name: The pool already has a member "a"`,
		apiPath: "/v1/pools", body: `{"name": "p", "members": [` + jsonMember + `, {"name": "a", "address": "192.0.2.2"}]}`, field: "members[1].name"},
	checkRule("duplicate check", `{ name = "http" }, { name = "http" }`, `(?s)Duplicate check.*checks\[1\]\.name`,
		`{"name": "http"}, {"name": "http"}`, "checks[1].name"),
	checkRule("missing type", `{ name = "web" }`, `(?s)Missing check type.*checks\[0\]\.type: Check "web" needs a type`,
		`{"name": "web"}`, "checks[0]"),
	checkRule("unsupported argument", `{ name = "tcp", port = 22, path = "/" }`,
		`(?s)Unsupported argument.*checks\[0\]\.path: The "path" argument does not apply to a tcp check`,
		`{"name": "tcp", "port": 22, "path": "/"}`, "checks[0].path"),
	checkRule("tcp port", `{ name = "tcp" }`, `(?s)Missing check port.*checks\[0\]\.port`, `{"name": "tcp"}`, "checks[0]"),
	checkRule("timeout against the default interval", `{ name = "http", timeout = "5s" }`,
		`(?s)Invalid timeout.*checks\[0\]\.timeout: The timeout \(5s\) must be shorter than the interval \(5s\)`,
		`{"name": "http", "timeout": "5s"}`, "checks[0].timeout"),
	checkRule("interval against the default timeout", `{ name = "http", interval = "1s" }`,
		`(?s)Invalid timeout.*checks\[0\]\.interval`, `{"name": "http", "interval": "1s"}`, "checks[0].interval"),
	checkRule("http path", `{ name = "http", path = "healthz" }`, `(?s)checks\[0\]\.path must start with "/"`,
		`{"name": "http", "path": "healthz"}`, "checks[0].path"),
	checkRule("body regexp", `{ name = "http", expect_body_regexp = "(" }`,
		`(?s)Invalid regular expression.*checks\[0\]\.expect_body_regexp: error parsing regexp`,
		`{"name": "http", "expect_body_regexp": "("}`, "checks[0].expect_body_regexp"),
	checkRule("expect_status range", `{ name = "http", expect_status = ["200", "299-200"] }`,
		`(?s)Invalid expect_status.*checks\[0\]\.expect_status\[1\]: "299-200" must be an HTTP status`,
		`{"name": "http", "expect_status": ["200", "299-200"]}`, "checks[0].expect_status[1]"),
	checkRule("dns qname required", `{ name = "dns" }`, `(?s)Missing check qname.*checks\[0\]\.qname`, `{"name": "dns"}`, "checks[0]"),
	checkRule("dns qname", `{ name = "dns", qname = "a..example.com" }`, `(?s)Invalid qname.*checks\[0\]\.qname: "a..example.com" is not a valid domain name`,
		`{"name": "dns", "qname": "a..example.com"}`, "checks[0].qname"),
	checkRule("dns qtype", `{ name = "dns", qname = "example.com", qtype = "AAAAA" }`, `(?s)Invalid qtype.*checks\[0\]\.qtype`,
		`{"name": "dns", "qname": "example.com", "qtype": "AAAAA"}`, "checks[0].qtype"),
	checkRule("dns rcode", `{ name = "dns", qname = "example.com", expect_rcode = "FINE" }`, `(?s)Invalid expect_rcode.*checks\[0\]\.expect_rcode`,
		`{"name": "dns", "qname": "example.com", "expect_rcode": "FINE"}`, "checks[0].expect_rcode"),
	poolRule("load timeout against the check's interval", `checks = [{ name = "http", interval = "2s", timeout = "1s" }]
  load   = { metric = "conns", timeout = "3s" }`,
		`(?s)Invalid timeout.*load\.timeout: The load timeout \(3s\) must be shorter than its interval \(2s\).*check "http"`,
		`, "checks": [{"name": "http", "interval": "2s", "timeout": "1s"}], "load": {"metric": "conns", "timeout": "3s"}`, "load.timeout"),
	poolRule("cold_start timeout bound", `cold_start = { timeout = "6m" }`, `(?s)Invalid duration.*cold_start\.timeout: The value "6m" must be.*at most 5m0s`,
		`, "cold_start": {"timeout": "6m"}`, "cold_start.timeout"),
	poolRule("cold_start timeout against the checks", `checks = [{ name = "http", interval = "1m", timeout = "30s" }]
  cold_start = {}`, `(?s)Invalid cold_start timeout.*cold_start\.timeout: The cold start timeout \(unset, the default 10s\) must not be shorter than the timeout of the pool's checks \(30s\)`,
		`, "checks": [{"name": "http", "interval": "1m", "timeout": "30s"}], "cold_start": {}`, "cold_start"),
	poolRule("cold_start idle_interval against the checks", `checks = [{ name = "http", interval = "20m" }]
  cold_start = { idle_interval = "10m" }`, `(?s)Invalid cold_start idle_interval.*cold_start\.idle_interval`,
		`, "checks": [{"name": "http", "interval": "20m"}], "cold_start": {"idle_interval": "10m"}`, "cold_start.idle_interval"),
	{name: "pool name length", resource: `resource "glbdns_pool" "p" {
  name    = "` + strings.Repeat("p", 192) + `"
  members = [` + hclMember + `]
}`, want: `(?s)Invalid name.*is too long`, apiPath: "/v1/pools",
		body: `{"name": "` + strings.Repeat("p", 192) + `", "members": [` + jsonMember + `]}`, field: "name"},
	serviceRule("service name", `name = "bad..glb.example.com"`, `(?s)Invalid service name.*name: "bad..glb.example.com" is not a domain name`,
		`"name": "bad..glb.example.com"`, "name"),
	serviceRule("service name length", `name = "`+longServiceName+`"`, `(?s)Invalid service name.*is not a domain name the server can store`,
		`"name": "`+longServiceName+`"`, "name"),
	serviceRule("steering pools", `name = "f.glb.example.com"
  policy = "failover"
  pools = [`+quotedPools(65)+`]`, `(?s)Too many pools.*pools: A failover service steers between at most 64 pools; this one lists 65`,
		`"name": "f.glb.example.com", "policy": "failover", "pools": [`+quotedPools(65)+`]`, "pools"),
	serviceRule("geo rule pools", `name = "g.glb.example.com"
  policy = "geo"
  pools = ["p0"]
  geo = { rules = [{ countries = ["GB"], pools = ["p1"] }] }`, `(?s)Pool not in service.*geo\.rules\[0\]\.pools\[0\]: Pool "p1"`,
		`"name": "g.glb.example.com", "policy": "geo", "pools": ["p0"], "geo": {"rules": [{"countries": ["GB"], "pools": ["p1"]}]}`, "geo.rules[0].pools[0]"),
	serviceRule("geo default_pools", `name = "g.glb.example.com"
  policy = "geo"
  pools = ["p0"]
  geo = { rules = [{ countries = ["GB"], pools = ["p0"] }], default_pools = ["p1"] }`, `(?s)Pool not in service.*geo\.default_pools\[0\]`,
		`"name": "g.glb.example.com", "policy": "geo", "pools": ["p0"], "geo": {"rules": [{"countries": ["GB"], "pools": ["p0"]}], "default_pools": ["p1"]}`, "geo.default_pools[0]"),
	serviceRule("geo duplicate across rules", `name = "g.glb.example.com"
  policy = "geo"
  pools = ["p0", "p1"]
  geo = { rules = [{ networks = ["2001:db8::/32"], pools = ["p0"] }, { networks = ["2001:DB8::/32"], pools = ["p1"] }] }`,
		`(?s)Duplicate network.*geo\.rules\[1\]\.networks\[0\]: "2001:db8::/32" is already matched by geo.rules\[0\]`,
		`"name": "g.glb.example.com", "policy": "geo", "pools": ["p0", "p1"], "geo": {"rules": [{"networks": ["2001:db8::/32"], "pools": ["p0"]}, {"networks": ["2001:DB8::/32"], "pools": ["p1"]}]}`, "geo.rules[1].networks[0]"),
	{name: "drain duration bound", resource: `resource "glbdns_member_drain" "d" {
  pool     = "p"
  member   = "a"
  duration = "9000h"
}`, want: `(?s)Invalid duration.*duration: The value "9000h" must be a positive Go duration.*at most 8784h0m0s`,
		apiPath: "/v1/pools/p/members/a/drain", body: `{"duration": "9000h"}`, field: "duration"},
}

// longServiceName is a valid domain name whose managed document name is too long.
var longServiceName = strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + testZone

func serviceRule(name, attrs, want, jsonAttrs, field string) planRule {
	if !strings.Contains(attrs, "pools") {
		attrs += "\n  pools = [\"p0\"]"
		jsonAttrs += `, "pools": ["p0"]`
	}
	return planRule{name: name, resource: "resource \"glbdns_service\" \"s\" {\n  " + attrs + "\n}\n", want: want,
		apiPath: "/v1/services", body: "{" + jsonAttrs + "}", field: field}
}

func quotedPools(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"p` + itoa(i) + `"`)
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestAccPlanTimeRules: every rule of planRules fails terraform plan (a PlanOnly step:
// validation runs before any call to the API) with its summary and the attribute path
// in the error.
func TestAccPlanTimeRules(t *testing.T) {
	url, token := startAPI(t)
	tc := resource.TestCase{}
	for _, r := range planRules {
		tc.Steps = append(tc.Steps, resource.TestStep{
			Config:   providerConfig(url, token) + r.resource,
			PlanOnly: true,
			// The CLI wraps the detail: any space may be a line break.
			ExpectError: regexp.MustCompile(strings.ReplaceAll(r.want, " ", `\s+`)),
		})
	}
	accTest(t, tc)
}

// TestPlanTimeRulesServerRefuses writes the object of every rule of planRules through the
// real server's admin API, which must refuse it (400) naming the rule's field: the
// provider checks at plan time what the server refuses, not a rule of its own. Pools the
// services name exist, so that only the rule at hand is broken.
func TestPlanTimeRulesServerRefuses(t *testing.T) {
	url, token := startAPI(t)
	post := func(p, body string) (int, api.Error) {
		req, err := http.NewRequest(http.MethodPost, url+p, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	for i := range 65 {
		if code, e := post("/v1/pools", `{"name": "p`+itoa(i)+`", "members": [{"name": "a", "address": "192.0.2.`+itoa(i+1)+`"}]}`); code != http.StatusCreated {
			t.Fatalf("create pool p%d: %d %+v", i, code, e)
		}
	}
	for _, r := range planRules {
		t.Run(r.name, func(t *testing.T) {
			code, e := post(r.apiPath, r.body)
			if code != http.StatusBadRequest {
				t.Fatalf("POST %s %s: %d %+v; want 400", r.apiPath, r.body, code, e)
			}
			fields := []string{e.Field}
			for _, fe := range e.Errors {
				fields = append(fields, fe.Field)
			}
			found := false
			for _, f := range fields {
				found = found || f == r.field
			}
			if !found {
				t.Errorf("POST %s: fields %q, want %q (%s)", r.apiPath, fields, r.field, e.Error)
			}
		})
	}
}
