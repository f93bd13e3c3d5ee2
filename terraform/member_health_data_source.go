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
	_ datasource.DataSource              = &memberHealthDataSource{}
	_ datasource.DataSourceWithConfigure = &memberHealthDataSource{}
)

// NewMemberHealthDataSource is the glbdns_member_health data source's factory.
func NewMemberHealthDataSource() datasource.DataSource { return &memberHealthDataSource{} }

// memberHealthDataSource reads the live health of one pool's members from GET /v1/health,
// the view merged over every fresh healthd reporter. It is a snapshot at refresh time:
// useful for checks and outputs, not for deciding configuration.
type memberHealthDataSource struct {
	client *client.Client
}

type memberHealthModel struct {
	ID      types.String        `tfsdk:"id"`
	Pool    types.String        `tfsdk:"pool"`
	Members []memberHealthEntry `tfsdk:"members"`
	Up      types.Int64         `tfsdk:"up"`
}

type memberHealthEntry struct {
	Name      types.String `tfsdk:"name"`
	Status    types.String `tfsdk:"status"`
	Drained   types.Bool   `tfsdk:"drained"`
	Reporters types.Int64  `tfsdk:"reporters"`
}

func (d *memberHealthDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_member_health"
}

func (d *memberHealthDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the live health of a pool's members, as merged by the glbdns node over every fresh healthd reporter.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{MarkdownDescription: "The pool's name.", Computed: true},
			"pool": schema.StringAttribute{MarkdownDescription: "Name of the pool.", Required: true},
			"members": schema.ListNestedAttribute{
				MarkdownDescription: "One entry per member of the pool, in the server's order.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":      schema.StringAttribute{MarkdownDescription: "Name of the member.", Computed: true},
					"status":    schema.StringAttribute{MarkdownDescription: "Merged health status as the server reports it (e.g. `up`, `down`, `unknown`).", Computed: true},
					"drained":   schema.BoolAttribute{MarkdownDescription: "Whether a drain is in force for the member.", Computed: true},
					"reporters": schema.Int64Attribute{MarkdownDescription: "How many fresh healthd reporters the status is merged from.", Computed: true},
				}},
			},
			"up": schema.Int64Attribute{MarkdownDescription: "Number of members whose status is `up` and that are not drained: those that can be answered.", Computed: true},
		},
	}
}

func (d *memberHealthDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *memberHealthDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg memberHealthModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pool := cfg.Pool.ValueString()
	// /v1/health lists members, not pools: ask for the pool so that a typo is an error
	// rather than an empty list.
	p, err := d.client.GetPool(ctx, pool)
	if errors.Is(err, client.ErrNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("pool"), "Pool not found", "The glbdns node has no pool named "+cfg.Pool.String()+".")
		return
	} else if err != nil {
		addAPIError(&resp.Diagnostics, "read pool "+pool, err)
		return
	}
	hs, err := d.client.Health(ctx)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read member health", err)
		return
	}
	out := memberHealthModel{ID: types.StringValue(pool), Pool: cfg.Pool, Members: []memberHealthEntry{}}
	up := int64(0)
	// The members are listed in the pool's order, as in glbdns_pool.members, whatever
	// order /v1/health uses (the server sorts by member name).
	byName := map[string]api.MemberHealth{}
	for _, h := range hs {
		if h.Pool == pool {
			byName[h.Member] = h
		}
	}
	for _, m := range p.Members {
		h, ok := byName[m.Name]
		if !ok {
			continue // not in the serving snapshot yet
		}
		if h.Status == "up" && !h.Drained {
			up++
		}
		out.Members = append(out.Members, memberHealthEntry{
			Name: types.StringValue(h.Member), Status: types.StringValue(h.Status),
			Drained: types.BoolValue(h.Drained), Reporters: types.Int64Value(int64(h.Reporters)),
		})
	}
	out.Up = types.Int64Value(up)
	resp.Diagnostics.Append(resp.State.Set(ctx, out)...)
}
