// Package terraform is the glbdns Terraform provider (terraform-plugin-framework). It
// manages pools, services and member drains through the glbdns admin API
// (docs/admin-api.md) and reads pools and live member health. Every object it writes
// carries the API's version, sent back as If-Match, so an update never overwrites a change
// made elsewhere since the last refresh.
package terraform

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/terraform/client"
)

// Environment variables that stand in for the provider's attributes.
const (
	EnvEndpoint = "GLBDNS_ENDPOINT"
	EnvToken    = "GLBDNS_ADMIN_TOKEN"
)

var _ provider.Provider = &glbdnsProvider{}

// glbdnsProvider is the provider; version is set at link time in the binary.
type glbdnsProvider struct {
	version string
}

// providerModel is the provider block.
type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	Token    types.String `tfsdk:"token"`
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
			"through the admin API of a glbdns node. A change made through any node reaches every node that shares its policy store.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "URL of the glbdns admin listener, e.g. `http://127.0.0.1:8053`. " +
					"Defaults to the `" + EnvEndpoint + "` environment variable.",
				Optional: true,
			},
			"token": schema.StringAttribute{
				MarkdownDescription: "Admin token, sent as a bearer token on writes. Defaults to the `" + EnvToken +
					"` environment variable. Reads need no token; without one, every write fails.",
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
	if cfg.Endpoint.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Unknown glbdns endpoint",
			"The provider cannot create the admin API client because the endpoint is not known until apply. "+
				"Set it to a static value or use the "+EnvEndpoint+" environment variable.")
	}
	if cfg.Token.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Unknown glbdns admin token",
			"The provider cannot create the admin API client because the token is not known until apply. "+
				"Set it to a static value or use the "+EnvToken+" environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	endpoint, token := os.Getenv(EnvEndpoint), os.Getenv(EnvToken)
	if !cfg.Endpoint.IsNull() {
		endpoint = cfg.Endpoint.ValueString()
	}
	if !cfg.Token.IsNull() {
		token = cfg.Token.ValueString()
	}
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing glbdns endpoint",
			"The provider needs the URL of a glbdns admin listener. Set the endpoint attribute or the "+EnvEndpoint+" environment variable.")
		return
	}
	c, err := client.New([]string{endpoint}, token, client.WithUserAgent("terraform-provider-glbdns/"+p.version))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid glbdns endpoint",
			"The endpoint must be an http or https URL with a host, such as http://127.0.0.1:8053: "+err.Error()+".")
		return
	}
	resp.DataSourceData = c
	resp.ResourceData = c
}

func (p *glbdnsProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewPoolResource, NewServiceResource, NewMemberDrainResource}
}

func (p *glbdnsProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewPoolDataSource, NewMemberHealthDataSource}
}
