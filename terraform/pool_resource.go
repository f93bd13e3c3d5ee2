package terraform

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/terraform/client"
)

var (
	_ resource.Resource                = &poolResource{}
	_ resource.ResourceWithConfigure   = &poolResource{}
	_ resource.ResourceWithImportState = &poolResource{}
)

// Limits of the policy package (policy/pool.go): weights up to 2^24 keep any service's
// weight sum far inside 64 bits; rise and fall are counts of consecutive probe results.
const (
	maxWeight    = 1 << 24
	maxThreshold = 1000
)

// nameRE is what the provider accepts as a pool, member or check name before asking the
// server; the server's policy package has the last word.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// NewPoolResource is the glbdns_pool resource's factory.
func NewPoolResource() resource.Resource { return &poolResource{} }

// poolResource manages one pool through /v1/pools/{name}.
type poolResource struct {
	client *client.Client
}

// poolModel is a pool in Terraform state; its attribute names are the API's JSON names.
type poolModel struct {
	ID      types.String  `tfsdk:"id"`
	Name    types.String  `tfsdk:"name"`
	Region  types.String  `tfsdk:"region"`
	Members []memberModel `tfsdk:"members"`
	Checks  []checkModel  `tfsdk:"checks"`
	Managed types.Bool    `tfsdk:"managed"`
	Version types.String  `tfsdk:"version"`
}

type memberModel struct {
	Name    types.String `tfsdk:"name"`
	Address types.String `tfsdk:"address"`
	Host    types.String `tfsdk:"host"`
	Weight  types.Int64  `tfsdk:"weight"`
}

type checkModel struct {
	Name             types.String            `tfsdk:"name"`
	Type             types.String            `tfsdk:"type"`
	Port             types.Int64             `tfsdk:"port"`
	Interval         types.String            `tfsdk:"interval"`
	Timeout          types.String            `tfsdk:"timeout"`
	Rise             types.Int64             `tfsdk:"rise"`
	Fall             types.Int64             `tfsdk:"fall"`
	Method           types.String            `tfsdk:"method"`
	Path             types.String            `tfsdk:"path"`
	Host             types.String            `tfsdk:"host"`
	Headers          map[string]types.String `tfsdk:"headers"`
	ExpectStatus     []types.String          `tfsdk:"expect_status"`
	ExpectBody       types.String            `tfsdk:"expect_body"`
	ExpectBodyRegexp types.String            `tfsdk:"expect_body_regexp"`
	ServerName       types.String            `tfsdk:"server_name"`
	Insecure         types.Bool              `tfsdk:"insecure"`
	FollowRedirects  types.Bool              `tfsdk:"follow_redirects"`
	Send             types.String            `tfsdk:"send"`
	Expect           types.String            `tfsdk:"expect"`
	QName            types.String            `tfsdk:"qname"`
	QType            types.String            `tfsdk:"qtype"`
	ExpectRcode      types.String            `tfsdk:"expect_rcode"`
	ExpectAnswer     types.String            `tfsdk:"expect_answer"`
}

func (r *poolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool"
}

// checkTypes are the probers of healthd; a check's type defaults to its name when the name
// is one of them.
var checkTypes = []string{"http", "https", "tcp", "dns"}

func (r *poolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	optStr := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true, Validators: []validator.String{stringvalidator.LengthAtLeast(1)}}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A pool of members (addresses or host names) that services answer from, with the health checks " +
			"that decide which members are up. Pools defined in the operator's policy files are read-only and cannot be managed here.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The pool's name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the pool, unique among pools. Changing it replaces the pool.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'")},
			},
			"region": optStr("Region of the pool (e.g. `eu`), used by geo policies for the failover order."),
			"members": schema.ListNestedAttribute{
				MarkdownDescription: "The pool's members, in order. Each has exactly one of `address` and `host`.",
				Required:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{
						MarkdownDescription: "Name of the member, unique within the pool; health and drains are keyed by pool and member name.",
						Required:            true,
						Validators:          []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'")},
					},
					"address": schema.StringAttribute{
						MarkdownDescription: "IPv4 or IPv6 address, answered as an A or AAAA record.",
						Optional:            true,
						Validators: []validator.String{
							stringvalidator.LengthAtLeast(1),
							stringvalidator.ExactlyOneOf(path.MatchRelative().AtParent().AtName("host")),
						},
					},
					"host": schema.StringAttribute{
						MarkdownDescription: "Host name, answered as a CNAME record.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"weight": schema.Int64Attribute{
						MarkdownDescription: "Relative weight for the `weighted` policy, 0 to 16777216; 0 drains the member. Defaults to 1.",
						Optional:            true,
						Computed:            true,
						Default:             int64default.StaticInt64(1),
						Validators:          []validator.Int64{int64validator.Between(0, maxWeight)},
					},
				}},
			},
			"checks": schema.ListNestedAttribute{
				MarkdownDescription: "Health checks probed by healthd against every member. Attributes that do not apply " +
					"to the check's type (a `path` on a `tcp` check) are refused by the server.",
				Optional: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{
						MarkdownDescription: "Name of the check, unique within the pool.",
						Required:            true,
						Validators:          []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'")},
					},
					// The server stores a check as written and applies the policy language's
					// defaults when it compiles the pool, so an unset attribute stays null here
					// (Optional, not Computed): the state shows what the configuration says.
					"type": schema.StringAttribute{
						MarkdownDescription: "Prober: `http`, `https`, `tcp` or `dns`. Unset, the server uses the check's name when that is one of these.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.OneOf(checkTypes...)},
					},
					"port": schema.Int64Attribute{
						MarkdownDescription: "Port to probe. Unset, the server uses 80 (http), 443 (https) or 53 (dns); required for tcp.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.Between(1, 65535)},
					},
					"interval": schema.StringAttribute{
						MarkdownDescription: "Time between probes, a Go duration such as `2s`; `1m` and `60s` are the same value. Unset, the server uses `5s`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator{}},
					},
					"timeout": schema.StringAttribute{
						MarkdownDescription: "Deadline of one probe, shorter than `interval`, a Go duration. Unset, the server uses `2s`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator{}},
					},
					"rise": schema.Int64Attribute{
						MarkdownDescription: "Consecutive successes before a down member counts as up. Unset, the server uses 2.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.Between(1, maxThreshold)},
					},
					"fall": schema.Int64Attribute{
						MarkdownDescription: "Consecutive failures before an up member counts as down. Unset, the server uses 3.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.Between(1, maxThreshold)},
					},
					"method":             optStr("HTTP method of an `http`/`https` check. The server's default is `GET`."),
					"path":               optStr("HTTP request path of an `http`/`https` check, e.g. `/healthz`."),
					"host":               optStr("HTTP Host header of an `http`/`https` check."),
					"headers":            schema.MapAttribute{MarkdownDescription: "Extra HTTP request headers of an `http`/`https` check.", Optional: true, ElementType: types.StringType},
					"expect_status":      schema.ListAttribute{MarkdownDescription: "Accepted HTTP statuses of an `http`/`https` check: codes (`\"200\"`) or ranges (`\"200-299\"`).", Optional: true, ElementType: types.StringType},
					"expect_body":        optStr("Substring the HTTP response body must contain."),
					"expect_body_regexp": optStr("Regular expression (RE2) the HTTP response body must match."),
					"server_name":        optStr("TLS server name (SNI) of an `https` check."),
					"insecure":           schema.BoolAttribute{MarkdownDescription: "Skip TLS certificate verification on an `https` check.", Optional: true},
					"follow_redirects":   schema.BoolAttribute{MarkdownDescription: "Follow HTTP redirects on an `http`/`https` check.", Optional: true},
					"send":               optStr("Bytes a `tcp` check sends after connecting."),
					"expect":             optStr("Bytes a `tcp` check expects to read back."),
					"qname":              optStr("Query name of a `dns` check."),
					"qtype":              optStr("Query type of a `dns` check, e.g. `A`."),
					"expect_rcode":       optStr("Expected response code of a `dns` check, e.g. `NOERROR`."),
					"expect_answer":      optStr("Data the answer section of a `dns` check must contain."),
				}},
			},
			"managed": schema.BoolAttribute{
				MarkdownDescription: "Whether the pool is managed through the API; false for pools from the operator's files, which are read-only.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "The server's version of the pool, sent back as `If-Match` on update and delete so that a change made elsewhere is never overwritten.",
				Computed:            true,
			},
		},
	}
}

func (r *poolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *poolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan poolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.client.CreatePool(ctx, plan.toAPI())
	if err != nil {
		addAPIError(&resp.Diagnostics, "create pool "+plan.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, poolFromAPI(p, &plan))...)
}

func (r *poolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state poolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.client.GetPool(ctx, state.Name.ValueString())
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx) // deleted outside Terraform: plan creates it again
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read pool "+state.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, poolFromAPI(p, &state))...)
}

func (r *poolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state poolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.client.PutPool(ctx, plan.toAPI(), state.Version.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "update pool "+plan.Name.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, poolFromAPI(p, &plan))...)
}

func (r *poolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state poolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.DeletePool(ctx, state.Name.ValueString(), state.Version.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addAPIError(&resp.Diagnostics, "delete pool "+state.Name.ValueString(), err)
	}
}

// ImportState imports a pool by name: terraform import glbdns_pool.web web-eu.
func (r *poolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

// toAPI converts the plan into the API's pool; unknown computed values are left out, so
// the server fills its defaults.
func (m *poolModel) toAPI() client.Pool {
	p := client.Pool{Name: m.Name.ValueString(), Region: m.Region.ValueString(), Members: []client.Member{}}
	for _, mm := range m.Members {
		p.Members = append(p.Members, client.Member{
			Name: mm.Name.ValueString(), Address: mm.Address.ValueString(), Host: mm.Host.ValueString(),
			Weight: int64Ptr(mm.Weight),
		})
	}
	for _, c := range m.Checks {
		ac := client.Check{
			Name: c.Name.ValueString(), Type: c.Type.ValueString(), Port: c.Port.ValueInt64(),
			Interval: c.Interval.ValueString(), Timeout: c.Timeout.ValueString(),
			Rise: c.Rise.ValueInt64(), Fall: c.Fall.ValueInt64(),
			Method: c.Method.ValueString(), Path: c.Path.ValueString(), Host: c.Host.ValueString(),
			ExpectBody: c.ExpectBody.ValueString(), ExpectBodyRegexp: c.ExpectBodyRegexp.ValueString(),
			ServerName: c.ServerName.ValueString(), Insecure: boolPtr(c.Insecure), FollowRedirects: boolPtr(c.FollowRedirects),
			Send: c.Send.ValueString(), Expect: c.Expect.ValueString(), QName: c.QName.ValueString(), QType: c.QType.ValueString(),
			ExpectRcode: c.ExpectRcode.ValueString(), ExpectAnswer: c.ExpectAnswer.ValueString(),
		}
		if c.Headers != nil {
			ac.Headers = map[string]string{}
			for k, v := range c.Headers {
				ac.Headers[k] = v.ValueString()
			}
		}
		if c.ExpectStatus != nil {
			ac.ExpectStatus = client.StatusList{}
			for _, s := range c.ExpectStatus {
				ac.ExpectStatus = append(ac.ExpectStatus, s.ValueString())
			}
		}
		p.Checks = append(p.Checks, ac)
	}
	return p
}

// poolFromAPI converts the server's pool into state. prior (plan or state, may be nil)
// only decides between null and an empty list or map, which the API does not tell apart.
func poolFromAPI(p *client.Pool, prior *poolModel) poolModel {
	m := poolModel{
		ID: types.StringValue(p.Name), Name: types.StringValue(p.Name), Region: strOrNull(p.Region),
		Managed: types.BoolValue(p.Managed), Version: types.StringValue(p.Version),
		Members: []memberModel{},
	}
	for _, am := range p.Members {
		w := int64(1)
		if am.Weight != nil {
			w = *am.Weight
		}
		m.Members = append(m.Members, memberModel{
			Name: types.StringValue(am.Name), Address: strOrNull(am.Address), Host: strOrNull(am.Host), Weight: types.Int64Value(w),
		})
	}
	if len(p.Checks) == 0 && prior != nil && prior.Checks != nil {
		m.Checks = []checkModel{}
	}
	for i, c := range p.Checks {
		cm := checkModel{
			Name: types.StringValue(c.Name), Type: strOrNull(c.Type), Port: int64OrNull(c.Port),
			Interval: strOrNull(c.Interval), Timeout: strOrNull(c.Timeout),
			Rise: int64OrNull(c.Rise), Fall: int64OrNull(c.Fall),
			Method: strOrNull(c.Method), Path: strOrNull(c.Path), Host: strOrNull(c.Host),
			ExpectBody: strOrNull(c.ExpectBody), ExpectBodyRegexp: strOrNull(c.ExpectBodyRegexp),
			ServerName: strOrNull(c.ServerName), Insecure: types.BoolPointerValue(c.Insecure),
			FollowRedirects: types.BoolPointerValue(c.FollowRedirects),
			Send:            strOrNull(c.Send), Expect: strOrNull(c.Expect), QName: strOrNull(c.QName), QType: strOrNull(c.QType),
			ExpectRcode: strOrNull(c.ExpectRcode), ExpectAnswer: strOrNull(c.ExpectAnswer),
		}
		var pc *checkModel
		if prior != nil && i < len(prior.Checks) {
			pc = &prior.Checks[i]
			cm.Interval = sameDuration(cm.Interval, pc.Interval)
			cm.Timeout = sameDuration(cm.Timeout, pc.Timeout)
		}
		if len(c.Headers) > 0 || (pc != nil && pc.Headers != nil) {
			cm.Headers = map[string]types.String{}
			for k, v := range c.Headers {
				cm.Headers[k] = types.StringValue(v)
			}
		}
		if len(c.ExpectStatus) > 0 || (pc != nil && pc.ExpectStatus != nil) {
			cm.ExpectStatus = []types.String{}
			for _, s := range c.ExpectStatus {
				cm.ExpectStatus = append(cm.ExpectStatus, types.StringValue(s))
			}
		}
		m.Checks = append(m.Checks, cm)
	}
	return m
}

// strOrNull maps the API's omitted (empty) strings to null, which is what an unset
// optional attribute is in Terraform.
func strOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// int64OrNull maps the API's omitted (zero) numbers to null.
func int64OrNull(v int64) types.Int64 {
	if v == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(v)
}

// sameDuration returns prior when it is the same duration as got spelled differently
// ("1m" and "60s", "1m0s"), so that a server or an operator tool that canonicalises a
// duration causes no diff; otherwise got.
func sameDuration(got, prior types.String) types.String {
	if got.IsNull() || prior.IsNull() || prior.IsUnknown() {
		return got
	}
	a, errA := time.ParseDuration(got.ValueString())
	b, errB := time.ParseDuration(prior.ValueString())
	if errA == nil && errB == nil && a == b {
		return prior
	}
	return got
}

func int64Ptr(v types.Int64) *int64 {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	return v.ValueInt64Pointer()
}

func boolPtr(v types.Bool) *bool {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	return v.ValueBoolPointer()
}
