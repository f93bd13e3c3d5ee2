package terraform

import (
	"context"
	"errors"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
)

var (
	_ datasource.DataSource              = &poolDataSource{}
	_ datasource.DataSourceWithConfigure = &poolDataSource{}
)

// NewPoolDataSource is the glbdns_pool data source's factory.
func NewPoolDataSource() datasource.DataSource { return &poolDataSource{} }

// poolDataSource reads one pool by name, managed or from the operator's files. It shares
// poolModel with the resource.
type poolDataSource struct {
	client *client.Client
}

func (d *poolDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool"
}

func (d *poolDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	num := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a pool by name, whether it is managed through the API or defined in the operator's policy files.",
		Attributes: map[string]schema.Attribute{
			"id":     str("The pool's name."),
			"name":   schema.StringAttribute{MarkdownDescription: "Name of the pool to read.", Required: true},
			"region": str("Region of the pool."),
			"location": schema.ListAttribute{
				MarkdownDescription: "`[latitude, longitude]` of the pool in degrees; null when it has none.",
				Computed:            true,
				ElementType:         types.Float64Type,
			},
			"bias": schema.Float64Attribute{
				MarkdownDescription: "Kilometres a `nearest` service subtracts from the client's distance to the pool; null when unset (0).",
				Computed:            true,
			},
			"method":      str("Member method inside the pool for steering services; null when the service's method applies."),
			"min_healthy": str("Usable members for the pool to count as up: a number (`\"2\"`) or a percentage (`\"50%\"`); null when unset (1)."),
			"unknown_is":  str("How the pool's members count while their health is unknown, `up` or `down`; null when the server's `-health-unknown-is` default applies."),
			"port":        num("Port of the members in SRV answers, unless a member sets its own; null when unset."),
			"members": schema.ListNestedAttribute{
				MarkdownDescription: "The pool's members, in order.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":    str("Name of the member."),
					"address": str("IP address of the member, when it has one."),
					"host":    str("Host name of the member, when it has one."),
					"weight":  num("Relative weight; 0 means drained by configuration."),
					"port":    num("Port of the member in SRV answers; null when the pool's applies."),
				}},
			},
			"checks": schema.ListNestedAttribute{
				MarkdownDescription: "The pool's health checks. Pools from the operator's files are shown with the policy's defaults filled in; pools written through the API as written (unset attributes are null).",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":               str("Name of the check."),
					"type":               str("Prober: `http`, `https`, `tcp` or `dns`."),
					"port":               num("Port probed."),
					"interval":           str("Time between probes."),
					"timeout":            str("Deadline of one probe."),
					"rise":               num("Consecutive successes to come up."),
					"fall":               num("Consecutive failures to go down."),
					"method":             str("HTTP method."),
					"path":               str("HTTP request path."),
					"host":               str("HTTP Host header."),
					"headers":            schema.MapAttribute{MarkdownDescription: "Names of the extra HTTP request headers, each with the value `\"" + api.HeaderMask + "\"`: the server never returns header values.", Computed: true, ElementType: types.StringType},
					"expect_status":      schema.ListAttribute{MarkdownDescription: "Accepted HTTP statuses and ranges.", Computed: true, ElementType: types.StringType},
					"expect_body":        str("Substring the body must contain."),
					"expect_body_regexp": str("Regular expression the body must match."),
					"server_name":        str("TLS server name (SNI)."),
					"insecure":           schema.BoolAttribute{MarkdownDescription: "Whether TLS verification is skipped.", Computed: true},
					"follow_redirects":   schema.BoolAttribute{MarkdownDescription: "Whether HTTP redirects are followed.", Computed: true},
					"send":               str("Bytes a tcp check sends."),
					"expect":             str("Bytes a tcp check expects."),
					"qname":              str("Query name of a dns check."),
					"qtype":              str("Query type of a dns check."),
					"expect_rcode":       str("Expected response code of a dns check."),
					"expect_answer":      str("Data the answer of a dns check must contain."),
				}},
			},
			"load":       loadDataSchema(),
			"cold_start": coldStartDataSchema(),
			"managed":    schema.BoolAttribute{MarkdownDescription: "False for pools from the operator's files (read-only).", Computed: true},
			"version":    str("The server's version of the pool."),
		},
	}
}

func (d *poolDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *poolDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg poolModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := d.client.GetPool(ctx, cfg.Name.ValueString())
	if errors.Is(err, client.ErrNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Pool not found",
			"The glbdns node has no pool named "+cfg.Name.String()+".")
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read pool "+cfg.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, poolFromAPI(p, nil))...)
}
