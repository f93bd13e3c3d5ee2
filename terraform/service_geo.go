package terraform

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
)

// This file is glbdns_service's geo attribute: the rules of a service with policy "geo"
// (docs/policy.md, "geo"), validated at plan time as far as the policy language's checks
// need no other object (pools named by a rule are checked by the server).

// continentCodes are MaxMind's continent codes, the ones the policy language accepts.
var continentCodes = []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}

// countryRE is an ISO 3166-1 alpha-2 code as the policy language accepts it.
var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// geoMatchAttrs are a rule's match lists; a rule needs at least one.
var geoMatchAttrs = []string{"networks", "asns", "countries", "continents"}

// geoModel is the geo attribute in state; nil lists are null (absent on the server).
type geoModel struct {
	Rules        []geoRuleModel `tfsdk:"rules"`
	DefaultPools []types.String `tfsdk:"default_pools"`
}

type geoRuleModel struct {
	Networks   []types.String `tfsdk:"networks"`
	ASNs       []types.Int64  `tfsdk:"asns"`
	Countries  []types.String `tfsdk:"countries"`
	Continents []types.String `tfsdk:"continents"`
	Pools      []types.String `tfsdk:"pools"`
}

func geoSchema() schema.Attribute {
	poolList := func(desc string, required bool) schema.ListAttribute {
		return schema.ListAttribute{MarkdownDescription: desc, ElementType: types.StringType, Required: required, Optional: !required,
			Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues()}}
	}
	return schema.SingleNestedAttribute{
		MarkdownDescription: "The rules of a `geo` service: required with `policy = \"geo\"`, refused with any other policy " +
			"(both checked at plan time). The first rule a client matches gives the pool order, by precedence whatever the " +
			"order of the rules: `networks` (longest prefix) > `asns` > `countries` > `continents` > `default_pools`. The client " +
			"is the EDNS Client Subnet address when the resolver sends one, else the resolver's. Country and continent rules need " +
			"a `geoip` block with a City or Country database in the operator's policy, ASN rules an `asn_database`.",
		Optional: true,
		Attributes: map[string]schema.Attribute{
			"rules": schema.ListNestedAttribute{
				MarkdownDescription: "The rules, at least one. A network, ASN, country or continent may appear in one rule only (checked by the server).",
				Required:            true,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Validators: []validator.Object{geoRuleValidator{}},
					Attributes: map[string]schema.Attribute{
						"networks": schema.ListAttribute{
							MarkdownDescription: "CIDR prefixes the rule matches (`\"198.51.100.0/24\"`, `\"2001:db8::/32\"`), no bits set past the prefix length.",
							Optional:            true,
							ElementType:         types.StringType,
							Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
								listvalidator.ValueStringsAre(cidrValidator{})},
						},
						"asns": schema.ListAttribute{
							MarkdownDescription: "Autonomous system numbers the rule matches (1 to 4294967295).",
							Optional:            true,
							ElementType:         types.Int64Type,
							Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
								listvalidator.ValueInt64sAre(int64validator.Between(1, math.MaxUint32))},
						},
						"countries": schema.ListAttribute{
							MarkdownDescription: "ISO 3166-1 alpha-2 country codes the rule matches, upper case (`\"GB\"`).",
							Optional:            true,
							ElementType:         types.StringType,
							Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
								listvalidator.ValueStringsAre(stringvalidator.RegexMatches(countryRE, `must be an ISO 3166-1 alpha-2 country code, two upper-case letters such as "GB"`))},
						},
						"continents": schema.ListAttribute{
							MarkdownDescription: "Continent codes the rule matches: `AF`, `AN`, `AS`, `EU`, `NA`, `OC`, `SA`.",
							Optional:            true,
							ElementType:         types.StringType,
							Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
								listvalidator.ValueStringsAre(stringvalidator.OneOf(continentCodes...))},
						},
						"pools": poolList("The pool order for the clients the rule matches, walked as `failover`; each a pool of the service's `pools`.", true),
					},
				},
			},
			"default_pools": poolList("The pool order for clients no rule matches. Unset, the service's `pools` order.", false),
		},
	}
}

// geoRuleValidator requires at least one match list in a rule ("Empty rule").
type geoRuleValidator struct{}

func (geoRuleValidator) Description(context.Context) string {
	return "a rule sets at least one of networks, asns, countries and continents"
}

func (v geoRuleValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (geoRuleValidator) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	for _, n := range geoMatchAttrs {
		if a, ok := attrs[n]; ok && !a.IsNull() {
			return // set, or unknown until apply
		}
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Empty rule",
		"A geo rule needs at least one of networks, asns, countries or continents.")
}

// cidrValidator accepts a CIDR prefix as the policy language does: no zone, no IPv4-mapped
// IPv6 prefix, no bits set past the prefix length.
type cidrValidator struct{}

func (cidrValidator) Description(context.Context) string {
	return `must be a CIDR prefix such as "198.51.100.0/24" or "2001:db8::/32"`
}

func (v cidrValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (cidrValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || p.Addr().Zone() != "":
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid network",
			fmt.Sprintf("%q is not a CIDR prefix such as \"198.51.100.0/24\" or \"2001:db8::/32\".", s))
	case p.Addr().Is4In6():
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid network",
			fmt.Sprintf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix (clients are matched as IPv4).", s))
	case p != p.Masked():
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid network",
			fmt.Sprintf("%q has bits set past its prefix length; did you mean %q?", s, p.Masked().String()))
	}
}

// geoValidator requires geo exactly when the policy is "geo", as the server does
// ("Missing geo block", "Unexpected geo block").
type geoValidator struct{}

func (geoValidator) Description(context.Context) string {
	return "geo is set exactly when policy is \"geo\""
}

func (v geoValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (geoValidator) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var policy types.String
	var geo types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("policy"), &policy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("geo"), &geo)...)
	if resp.Diagnostics.HasError() || policy.IsUnknown() || geo.IsUnknown() {
		return
	}
	p := policy.ValueString()
	if policy.IsNull() {
		p = "round_robin" // the default
	}
	switch {
	case p == "geo" && geo.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("geo"), "Missing geo",
			"The service has policy \"geo\" but no geo attribute with rules.")
	case p != "geo" && !geo.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("geo"), "Unexpected geo",
			fmt.Sprintf("The geo rules are used only by a service with policy \"geo\"; this one has policy %q. Remove geo, or set policy = \"geo\".", p))
	}
}

func stringList(vs []types.String) []string {
	if vs == nil {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ValueString()
	}
	return out
}

func stringValues(vs []string) []types.String {
	if vs == nil {
		return nil
	}
	out := make([]types.String, len(vs))
	for i, v := range vs {
		out[i] = types.StringValue(v)
	}
	return out
}

func (g *geoModel) toAPI() *api.Geo {
	if g == nil {
		return nil
	}
	out := &api.Geo{Rules: []api.GeoRule{}, DefaultPools: stringList(g.DefaultPools)}
	for _, r := range g.Rules {
		ar := api.GeoRule{Networks: stringList(r.Networks), Countries: stringList(r.Countries),
			Continents: stringList(r.Continents), Pools: stringList(r.Pools)}
		if ar.Pools == nil {
			ar.Pools = []string{}
		}
		if r.ASNs != nil {
			ar.ASNs = make([]int64, len(r.ASNs))
			for i, a := range r.ASNs {
				ar.ASNs[i] = a.ValueInt64()
			}
		}
		out.Rules = append(out.Rules, ar)
	}
	return out
}

func geoFromAPI(g *api.Geo) *geoModel {
	if g == nil {
		return nil
	}
	out := &geoModel{Rules: []geoRuleModel{}, DefaultPools: stringValues(g.DefaultPools)}
	for _, r := range g.Rules {
		mr := geoRuleModel{Networks: stringValues(r.Networks), Countries: stringValues(r.Countries),
			Continents: stringValues(r.Continents), Pools: stringValues(r.Pools)}
		if mr.Pools == nil {
			mr.Pools = []types.String{}
		}
		if r.ASNs != nil {
			mr.ASNs = make([]types.Int64, len(r.ASNs))
			for i, a := range r.ASNs {
				mr.ASNs[i] = types.Int64Value(a)
			}
		}
		out.Rules = append(out.Rules, mr)
	}
	return out
}
