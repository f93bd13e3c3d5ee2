package terraform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
)

var (
	_ resource.Resource                     = &serviceResource{}
	_ resource.ResourceWithConfigure        = &serviceResource{}
	_ resource.ResourceWithImportState      = &serviceResource{}
	_ resource.ResourceWithConfigValidators = &serviceResource{}
)

// Limits of the policy package (policy/service.go): 16 answers fit a 512-byte UDP
// response; a TTL is at most 2^31-1 (RFC 2181 section 8). The schema states api's service
// defaults so that plans show them; the server applies the same ones.
const (
	maxAnswers = 16
	maxTTL     = 1<<31 - 1
)

var (
	// policies are the service policies: the first four pick members from all the pools
	// together (least_connections needs every pool's load attribute, checked by the
	// server), the steering ones (steeringPolicies) choose one pool at a time.
	policies         = []string{"round_robin", "weighted", "client_subnet_hash", "least_connections", "failover", "geo", "nearest"}
	steeringPolicies = []string{"failover", "geo", "nearest"}
	allDownModes     = []string{"all", "servfail", "fallback"}
)

// NewServiceResource is the glbdns_service resource's factory.
func NewServiceResource() resource.Resource { return &serviceResource{} }

// serviceResource manages one service through /v1/services/{name}.
type serviceResource struct {
	client *client.Client
}

// serviceModel is a service in Terraform state.
type serviceModel struct {
	ID           types.String   `tfsdk:"id"`
	Name         types.String   `tfsdk:"name"`
	Policy       types.String   `tfsdk:"policy"`
	Method       types.String   `tfsdk:"method"`
	Pools        []types.String `tfsdk:"pools"`
	TTL          types.Int64    `tfsdk:"ttl"`
	Answers      types.Int64    `tfsdk:"answers"`
	WhenAllDown  types.String   `tfsdk:"when_all_down"`
	Fallback     types.String   `tfsdk:"fallback"`
	HashPrefixV4 types.Int64    `tfsdk:"hash_prefix_v4"`
	HashPrefixV6 types.Int64    `tfsdk:"hash_prefix_v6"`
	Geo          *geoModel      `tfsdk:"geo"`
	Managed      types.Bool     `tfsdk:"managed"`
	Version      types.String   `tfsdk:"version"`
}

func (r *serviceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service"
}

func (r *serviceResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A DNS name that glbdns answers from pools, with a selection policy. The name must fall inside " +
			"a zone defined in the operator's policy files.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The service's name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Fully qualified DNS name of the service, e.g. `www.glb.example.com`. Changing it replaces the service.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.LengthBetween(1, 253),
					policyValidator{"Invalid service name", fmt.Sprintf("is not a domain name the server can store (labels of at most 63 octets, no empty label, a document name service-NAME.hcl of at most %d bytes)", api.MaxDocName), validServiceName}},
			},
			"policy": schema.StringAttribute{
				MarkdownDescription: "Selection policy. Over the members of all the pools together: `round_robin`, `weighted` " +
					"(answers converge to the members' weights), `client_subnet_hash` (consistent per client subnet) or " +
					"`least_connections` (members with fewer active connections per unit of weight get more answers; every pool " +
					"needs a `load` attribute). Steering " +
					"between pools, the first pool of an order that is up (at least its `min_healthy` members usable) answering: " +
					"`failover` (the `pools` order), `nearest` (by distance from the client's GeoIP location to the pools' `location`, " +
					"minus their `bias`; needs a `geoip` block in the operator's policy and a pool with a location) or `geo` " +
					"(the pool order of the first of the `geo` rules the client matches). Defaults to `round_robin`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("round_robin"),
				Validators: []validator.String{stringvalidator.OneOf(policies...)},
			},
			"method": schema.StringAttribute{
				MarkdownDescription: "Member method inside the pools of a `failover`, `geo` or `nearest` service: `round_robin`, " +
					"`weighted`, `client_subnet_hash` or `least_connections` (the pools need `load`); a pool's own `method` wins. Only with those policies (checked at plan " +
					"time). Unset, `round_robin`.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(memberMethods...)},
			},
			"pools": schema.ListAttribute{
				MarkdownDescription: "Names of the pools to answer from, in order; each must exist.",
				Required:            true,
				ElementType:         types.StringType,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues()},
			},
			"ttl": schema.Int64Attribute{
				MarkdownDescription: "TTL of the answers in seconds. Defaults to 30, which bounds how long resolvers keep sending clients to a member that just went down.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(api.DefaultTTL),
				Validators:          []validator.Int64{int64validator.Between(0, maxTTL)},
			},
			"answers": schema.Int64Attribute{
				MarkdownDescription: "Members per answer, 1 to 16, or 0 for every usable member (A/AAAA, and SRV records per pool). Defaults to 1. Must be 1 for host-name members (a name holds one CNAME).",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(1),
				Validators:          []validator.Int64{int64validator.Between(0, maxAnswers)},
			},
			"when_all_down": schema.StringAttribute{
				MarkdownDescription: "What to answer when every member is down: `all` (fail open), `servfail`, or `fallback` " +
					"(answer from the `fallback` pool). Defaults to `all`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("all"),
				Validators: []validator.String{stringvalidator.OneOf(allDownModes...)},
			},
			"fallback": schema.StringAttribute{
				MarkdownDescription: "Pool to answer from when every member is down; set exactly when `when_all_down` is `fallback`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"hash_prefix_v4": schema.Int64Attribute{
				MarkdownDescription: "IPv4 prefix length the `client_subnet_hash` policy hashes on, 0 to 32. Defaults to 24.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(api.DefaultHashPrefixV4),
				Validators:          []validator.Int64{int64validator.Between(0, 32)},
			},
			"hash_prefix_v6": schema.Int64Attribute{
				MarkdownDescription: "IPv6 prefix length the `client_subnet_hash` policy hashes on, 0 to 128. Defaults to 56.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(api.DefaultHashPrefixV6),
				Validators:          []validator.Int64{int64validator.Between(0, 128)},
			},
			"geo": geoSchema(),
			"managed": schema.BoolAttribute{
				MarkdownDescription: "Whether the service is managed through the API; false for services from the operator's files.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "The server's version of the service, sent back as `If-Match` on update and delete.",
				Computed:            true,
			},
		},
	}
}

// ConfigValidators checks at plan time what the schema alone cannot: fallback is set
// exactly when when_all_down is "fallback", method only with a steering policy, geo
// exactly with policy "geo", and the pools of a steering service and of its geo rules
// (serviceRulesValidator).
func (r *serviceResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{fallbackValidator{}, methodValidator{}, geoValidator{}, serviceRulesValidator{}}
}

// methodValidator refuses a service method with a policy that is not failover, geo or
// nearest, as the server does ("Unexpected method"): round_robin, weighted,
// client_subnet_hash and least_connections are themselves the member method.
type methodValidator struct{}

func (methodValidator) Description(context.Context) string {
	return "method is set only when policy is \"failover\", \"geo\" or \"nearest\""
}

func (v methodValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (methodValidator) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var policy, method types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("policy"), &policy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("method"), &method)...)
	if resp.Diagnostics.HasError() || policy.IsUnknown() || method.IsNull() || method.IsUnknown() {
		return
	}
	p := policy.ValueString()
	if policy.IsNull() {
		p = "round_robin" // the default
	}
	if !slices.Contains(steeringPolicies, p) {
		resp.Diagnostics.AddAttributeError(path.Root("method"), "Unexpected method",
			fmt.Sprintf("The method sets the member method inside the pools of a failover, geo or nearest service; "+
				"with policy %q the policy is itself the member method. Remove method, or set the policy to one of %s.",
				p, strings.Join(steeringPolicies, ", ")))
	}
}

type fallbackValidator struct{}

func (fallbackValidator) Description(context.Context) string {
	return "fallback is set exactly when when_all_down is \"fallback\""
}

func (v fallbackValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (fallbackValidator) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var mode, fb types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("when_all_down"), &mode)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("fallback"), &fb)...)
	if resp.Diagnostics.HasError() || mode.IsUnknown() || fb.IsUnknown() {
		return
	}
	switch {
	case mode.ValueString() == "fallback" && fb.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("fallback"), "Missing fallback",
			"The service answers from a fallback pool when all members are down (when_all_down = \"fallback\"), but sets no fallback pool.")
	case mode.ValueString() != "fallback" && !fb.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("fallback"), "Unexpected fallback",
			"The fallback pool is used only with when_all_down = \"fallback\"; remove it or set when_all_down.")
	}
}

func (r *serviceResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *serviceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	s, err := r.client.CreateService(ctx, plan.toAPI())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create service "+plan.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, serviceFromAPI(s, plan.Name))...)
}

func (r *serviceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	s, err := r.client.GetService(ctx, canonicalName(state.Name.ValueString()))
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read service "+state.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, serviceFromAPI(s, state.Name))...)
}

func (r *serviceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state serviceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	s, err := r.client.PutService(ctx, plan.toAPI(), state.Version.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "update service "+plan.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, serviceFromAPI(s, plan.Name))...)
}

func (r *serviceResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serviceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.DeleteService(ctx, canonicalName(state.Name.ValueString()), state.Version.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addAPIError(&resp.Diagnostics, "delete service "+state.Name.ValueString(), err)
	}
}

// ImportState imports a service by name: terraform import glbdns_service.www www.glb.example.com.
func (r *serviceResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

func (m *serviceModel) toAPI() api.Service {
	s := api.Service{
		Name: canonicalName(m.Name.ValueString()), Policy: m.Policy.ValueString(), Method: m.Method.ValueString(), Pools: []string{},
		TTL: intPtr(m.TTL), Answers: intPtr(m.Answers), WhenAllDown: m.WhenAllDown.ValueString(),
		Fallback: m.Fallback.ValueString(), HashPrefixV4: intPtr(m.HashPrefixV4), HashPrefixV6: intPtr(m.HashPrefixV6),
		Geo: m.Geo.toAPI(),
	}
	for _, p := range m.Pools {
		s.Pools = append(s.Pools, p.ValueString())
	}
	return s
}

// serviceFromAPI converts the server's service into state. The server stores names lower
// case without the trailing dot (DNS names compare case-insensitively, RFC 4343); prior,
// the configured or stored name, is kept when it is the same name spelled otherwise, so
// that "WWW.glb.example.com." shows no diff.
func serviceFromAPI(s *api.Service, prior types.String) serviceModel {
	name := types.StringValue(s.Name)
	if !prior.IsNull() && !prior.IsUnknown() && canonicalName(prior.ValueString()) == s.Name {
		name = prior
	}
	m := serviceModel{
		ID: types.StringValue(s.Name), Name: name, Policy: types.StringValue(s.Policy), Method: strOrNull(s.Method),
		TTL: intOrNull(s.TTL), Answers: intOrNull(s.Answers), WhenAllDown: types.StringValue(s.WhenAllDown),
		Fallback: strOrNull(s.Fallback), HashPrefixV4: intOrNull(s.HashPrefixV4), HashPrefixV6: intOrNull(s.HashPrefixV6),
		Managed: types.BoolValue(s.Managed), Version: types.StringValue(s.Version), Pools: []types.String{},
		Geo: geoFromAPI(s.Geo),
	}
	for _, p := range s.Pools {
		m.Pools = append(m.Pools, types.StringValue(p))
	}
	return m
}

// canonicalName is a DNS name as the server stores it: lower case, no trailing dot.
func canonicalName(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }
