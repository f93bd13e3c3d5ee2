// Package terraform is the glbdns Terraform provider (terraform-plugin-framework). It
// manages pools, services and member drains through the glbdns admin API
// (docs/admin-api.md) and reads pools and live member health. Every object it writes
// carries the API's version, sent back as If-Match, so an update never overwrites a change
// made elsewhere since the last refresh.
package terraform

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/terraform/client"
)

// Environment variables that stand in for the provider's attributes. EnvEndpoints is a
// comma-separated list; EnvEndpoint holds one URL.
const (
	EnvEndpoint  = "GLBDNS_ENDPOINT"
	EnvEndpoints = "GLBDNS_ENDPOINTS"
	EnvToken     = "GLBDNS_ADMIN_TOKEN"
)

var _ provider.Provider = &glbdnsProvider{}

// glbdnsProvider is the provider; version is set at link time in the binary.
type glbdnsProvider struct {
	version string
}

// providerModel is the provider block.
type providerModel struct {
	Endpoint  types.String `tfsdk:"endpoint"`
	Endpoints types.List   `tfsdk:"endpoints"`
	Token     types.String `tfsdk:"token"`
}

// New returns the provider factory that providerserver.Serve and the tests use.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &glbdnsProvider{version: version} }
}

func (p *glbdnsProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "glbdns"
	resp.Version = p.version
}

func (p *glbdnsProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages [glbdns](https://github.com/glbdns/glbdns) pools, services and member drains " +
			"through the admin API of a glbdns node. A change made through any node reaches every node that shares its policy store; " +
			"given several nodes of a cluster (`endpoints`), the provider fails over between them.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "URL of the glbdns admin listener, e.g. `http://127.0.0.1:8053`. " +
					"Set at most one of `endpoint` and `endpoints`; with neither, the `" + EnvEndpoints + "` or the `" +
					EnvEndpoint + "` environment variable.",
				Optional:   true,
				Validators: []validator.String{endpointValidator{}},
			},
			"endpoints": schema.ListAttribute{
				MarkdownDescription: "URLs of the admin listeners of several nodes of one glbdns cluster, tried in this order, " +
					"e.g. `[\"http://10.0.0.1:8053\", \"http://10.0.0.2:8053\"]`. Requests go to the node that answered last; " +
					"when it cannot be reached, times out or answers 502, 503 or 504, a read moves on to the next node, " +
					"and a write only when it never reached the node (a write that may have been applied is not sent twice). " +
					"Instead of `endpoint`; with neither, the `" + EnvEndpoints + "` environment variable (comma-separated) " +
					"or `" + EnvEndpoint + "`.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.NoNullValues(),
					listvalidator.ValueStringsAre(endpointValidator{}),
					distinctEndpoints{},
					listvalidator.ConflictsWith(path.MatchRoot("endpoint")),
				},
			},
			"token": schema.StringAttribute{
				MarkdownDescription: "Admin token, sent as a bearer token on every request. Defaults to the `" + EnvToken +
					"` environment variable. A node with a token configured needs it for reads too; without one, every write fails.",
				Optional:  true,
				Sensitive: true,
			},
		},
	}
}

func (p *glbdnsProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Token.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Unknown glbdns admin token",
			"The provider cannot create the admin API client because the token is not known until apply. "+
				"Set it to a static value or use the "+EnvToken+" environment variable.")
	}
	endpoints, diags := configEndpoints(cfg, os.Getenv)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	token := os.Getenv(EnvToken)
	if !cfg.Token.IsNull() {
		token = cfg.Token.ValueString()
	}
	c, err := client.New(endpoints, token, client.WithUserAgent("terraform-provider-glbdns/"+p.version))
	if err != nil { // configEndpoints has checked what New checks
		resp.Diagnostics.AddError("Invalid glbdns endpoints", "The provider could not use its endpoints: "+err.Error()+".")
		return
	}
	resp.DataSourceData = c
	resp.ResourceData = c
}

// configEndpoints returns the admin endpoints to use. The configuration wins: its
// endpoint or endpoints (at most one of them is set; the validators say so at plan time).
// Without either, GLBDNS_ENDPOINTS (comma-separated) or GLBDNS_ENDPOINT, but not both:
// the provider writes to DNS, and two variables naming different clusters must not be
// resolved by a silent rule. The environment's values are checked as the attributes are.
func configEndpoints(cfg providerModel, getenv func(string) string) ([]string, diag.Diagnostics) {
	var diags diag.Diagnostics
	switch {
	case cfg.Endpoint.IsUnknown():
		diags.AddAttributeError(path.Root("endpoint"), "Unknown glbdns endpoint",
			"The provider cannot create the admin API client because the endpoint is not known until apply. "+
				"Set it to a static value or use the "+EnvEndpoint+" environment variable.")
		return nil, diags
	case cfg.Endpoints.IsUnknown() || slices.ContainsFunc(cfg.Endpoints.Elements(), attr.Value.IsUnknown):
		diags.AddAttributeError(path.Root("endpoints"), "Unknown glbdns endpoints",
			"The provider cannot create the admin API client because its endpoints are not known until apply. "+
				"Set them to static values or use the "+EnvEndpoints+" environment variable.")
		return nil, diags
	case !cfg.Endpoint.IsNull():
		return []string{cfg.Endpoint.ValueString()}, nil
	case !cfg.Endpoints.IsNull():
		var out []string
		for _, v := range cfg.Endpoints.Elements() {
			out = append(out, v.(types.String).ValueString())
		}
		return out, nil
	}
	many, one := strings.TrimSpace(getenv(EnvEndpoints)), strings.TrimSpace(getenv(EnvEndpoint))
	var out []string
	var from string
	switch {
	case many != "" && one != "":
		diags.AddError("Conflicting glbdns endpoint variables",
			"Both "+EnvEndpoints+" and "+EnvEndpoint+" are set, and the provider will not guess which names the cluster to write to. "+
				"Unset one of them, or set endpoints in the provider block.")
		return nil, diags
	case many != "":
		from = EnvEndpoints
		for _, e := range strings.Split(many, ",") {
			if e = strings.TrimSpace(e); e != "" { // a trailing comma is harmless
				out = append(out, e)
			}
		}
	case one != "":
		from = EnvEndpoint
		if strings.Contains(one, ",") {
			diags.AddError("Invalid "+EnvEndpoint, EnvEndpoint+" holds one URL; for several, use "+EnvEndpoints+" (comma-separated).")
			return nil, diags
		}
		out = []string{one}
	default:
		diags.AddAttributeError(path.Root("endpoints"), "Missing glbdns endpoint",
			"The provider needs the URL of at least one glbdns admin listener. Set the endpoint or endpoints attribute, or the "+
				EnvEndpoints+" or "+EnvEndpoint+" environment variable.")
		return nil, diags
	}
	seen := map[string]string{}
	for _, e := range out {
		norm, err := client.ParseEndpoint(e)
		if err != nil {
			diags.AddError("Invalid "+from, fmt.Sprintf("%s must hold http or https URLs with a host, such as http://127.0.0.1:8053: %s.", from, err))
			continue
		}
		if prev, dup := seen[norm]; dup {
			diags.AddError("Duplicate endpoint in "+from, fmt.Sprintf("%s names %q and %q, which are the same endpoint.", from, prev, e))
		}
		seen[norm] = e
	}
	return out, diags
}

// endpointValidator checks at plan time that a string is an admin endpoint: an http or
// https URL with a host (client.ParseEndpoint).
type endpointValidator struct{}

func (endpointValidator) Description(context.Context) string {
	return "must be an http or https URL with a host and no query or fragment, such as http://127.0.0.1:8053"
}

func (v endpointValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v endpointValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := client.ParseEndpoint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid glbdns endpoint",
			fmt.Sprintf("The value of %s %s; %s.", req.Path, v.Description(ctx), err))
	}
}

// distinctEndpoints checks at plan time that no two endpoints are the same once
// normalised (client.ParseEndpoint: "http://A:1/" is "http://a:1"): the client would
// only try the node twice. The error is on the later one.
type distinctEndpoints struct{}

func (distinctEndpoints) Description(context.Context) string {
	return "must name each endpoint once"
}

func (v distinctEndpoints) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v distinctEndpoints) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	seen := map[string]int{}
	for i, e := range req.ConfigValue.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsNull() || s.IsUnknown() {
			continue
		}
		norm, err := client.ParseEndpoint(s.ValueString())
		if err != nil {
			continue // endpointValidator reports it
		}
		if j, dup := seen[norm]; dup {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i), "Duplicate glbdns endpoint",
				fmt.Sprintf("%s (%q) is the same endpoint as %s; name each node once.", req.Path.AtListIndex(i), s.ValueString(), req.Path.AtListIndex(j)))
			continue
		}
		seen[norm] = i
	}
}

func (p *glbdnsProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewPoolResource, NewServiceResource, NewMemberDrainResource}
}

func (p *glbdnsProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewPoolDataSource, NewMemberHealthDataSource}
}
