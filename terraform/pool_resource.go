package terraform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
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

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
)

var (
	_ resource.Resource                   = &poolResource{}
	_ resource.ResourceWithConfigure      = &poolResource{}
	_ resource.ResourceWithImportState    = &poolResource{}
	_ resource.ResourceWithValidateConfig = &poolResource{}
)

// Limits of the policy package (policy/pool.go): weights up to 2^24 keep any service's
// weight sum far inside 64 bits; rise and fall are counts of consecutive probe results.
const (
	maxWeight    = 1 << 24
	maxThreshold = 1000
)

// Limits of the steering attributes (policy/steer_load.go): a bias beyond half the Earth's
// circumference in km could only be a unit mistake.
const maxBias = 20000

// memberMethods are the methods that pick members inside a pool of a steering service;
// least_connections needs the pool's load attribute (checked by the server).
var memberMethods = []string{"round_robin", "weighted", "client_subnet_hash", "least_connections"}

// minHealthyRE is a pool's min_healthy as the policy language accepts it, written the one
// way the server returns it unchanged: a whole number of members from 1 (no sign, no
// leading zero), or a percentage from "1%" to "100%".
var minHealthyRE = regexp.MustCompile(`^(?:[1-9][0-9]{0,7}|(?:[1-9][0-9]?|100)%)$`)

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
	ID         types.String    `tfsdk:"id"`
	Name       types.String    `tfsdk:"name"`
	Region     types.String    `tfsdk:"region"`
	Location   []types.Float64 `tfsdk:"location"`
	Bias       types.Float64   `tfsdk:"bias"`
	Method     types.String    `tfsdk:"method"`
	MinHealthy types.String    `tfsdk:"min_healthy"`
	UnknownIs  types.String    `tfsdk:"unknown_is"`
	Port       types.Int64     `tfsdk:"port"`
	Members    []memberModel   `tfsdk:"members"`
	Checks     []checkModel    `tfsdk:"checks"`
	Load       *loadModel      `tfsdk:"load"`
	ColdStart  *coldStartModel `tfsdk:"cold_start"`
	Managed    types.Bool      `tfsdk:"managed"`
	Version    types.String    `tfsdk:"version"`
}

type memberModel struct {
	Name    types.String `tfsdk:"name"`
	Address types.String `tfsdk:"address"`
	Host    types.String `tfsdk:"host"`
	Weight  types.Int64  `tfsdk:"weight"`
	Port    types.Int64  `tfsdk:"port"`
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
var checkTypes = api.CheckTypes

func (r *poolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A pool of members (addresses or host names) that services answer from, with the health checks " +
			"that decide which members are up. Pools defined in the operator's policy files are read-only and cannot be managed here.",
		Attributes: withSteering(map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The pool's name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the pool, unique among pools. Changing it replaces the pool.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'"),
					policyValidator{"Invalid name", fmt.Sprintf("is too long: the server stores a pool as the document pool-NAME.hcl of at most %d bytes", api.MaxDocName), validPoolName}},
			},
			"region": optionalString("Region of the pool (e.g. `eu`), a free-form label. Steering between pools uses `location`, not the region."),
			"port": schema.Int64Attribute{
				MarkdownDescription: "Port of the members in SRV answers (RFC 2782), 1 to 65535, unless a member sets its own. A service answers SRV queries when every member of its pools has a port; unset, none.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
			},
			"members": schema.ListNestedAttribute{
				MarkdownDescription: "The pool's members, in order. Each has exactly one of `address` and `host`.",
				Required:            true,
				NestedObject:        schema.NestedAttributeObject{Attributes: memberAttributes()},
			},
			"checks": schema.ListNestedAttribute{
				MarkdownDescription: "Health checks probed by healthd against every member. Attributes that do not apply " +
					"to the check's type (a `path` on a `tcp` check) are refused by the server.",
				Optional:     true,
				NestedObject: schema.NestedAttributeObject{Attributes: checkAttributes()},
			},
			"load":       loadSchema(),
			"cold_start": coldStartSchema(),
			"managed": schema.BoolAttribute{
				MarkdownDescription: "Whether the pool is managed through the API; false for pools from the operator's files, which are read-only.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "The server's version of the pool, sent back as `If-Match` on update and delete so that a change made elsewhere is never overwritten.",
				Computed:            true,
			},
		}),
	}
}

// optionalString is an optional string attribute that may not be empty.
func optionalString(desc string) schema.StringAttribute {
	return schema.StringAttribute{MarkdownDescription: desc, Optional: true, Validators: []validator.String{stringvalidator.LengthAtLeast(1)}}
}

// withSteering adds the steering attributes to a pool's attributes. They are stored as
// written: the server fills in no default (an unset min_healthy means 1 member), so unset
// stays null and the plan after an apply is empty.
func withSteering(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	attrs["location"] = schema.ListAttribute{
		MarkdownDescription: "`[latitude, longitude]` of the pool in degrees (latitude -90 to 90, longitude -180 to 180). " +
			"A `nearest` service orders its pools by the client's distance to this location.",
		Optional:    true,
		ElementType: types.Float64Type,
		Validators:  []validator.List{locationValidator{}},
	}
	attrs["bias"] = schema.Float64Attribute{
		MarkdownDescription: "Kilometres subtracted from the client's distance to the pool by a `nearest` service, -20000 to 20000: " +
			"`500` makes the pool win against any pool less than 500 km closer; a negative bias sheds clients. Needs `location`. Unset, 0.",
		Optional: true,
		Validators: []validator.Float64{
			float64validator.Between(-maxBias, maxBias),
			float64validator.AlsoRequires(path.MatchRoot("location")),
		},
	}
	attrs["method"] = schema.StringAttribute{
		MarkdownDescription: "How a `failover`, `geo` or `nearest` service picks members inside this pool: `round_robin`, " +
			"`weighted`, `client_subnet_hash` or `least_connections` (needs `load`). Unset, the service's `method` applies (else `round_robin`).",
		Optional:   true,
		Validators: []validator.String{stringvalidator.OneOf(memberMethods...)},
	}
	attrs["min_healthy"] = schema.StringAttribute{
		MarkdownDescription: "How many members must be usable (up, weight above 0, not drained) for a `failover`, `geo` or `nearest` " +
			"service to count the pool as up; below it, the service answers from the next pool of its order. A whole number " +
			"of members (`\"2\"`, or the number `2`), at most the pool's member count, or a percentage from `\"1%\"` to " +
			"`\"100%\"` of the members of the asked family, rounded up. Unset, 1.",
		Optional: true,
		Validators: []validator.String{stringvalidator.RegexMatches(minHealthyRE,
			`must be a whole number of members (1 or more, no leading zero) or a percentage from "1%" to "100%"`)},
	}
	attrs["unknown_is"] = schema.StringAttribute{
		MarkdownDescription: "How the pool's members count while their health is unknown (no health report yet, or every " +
			"report stale): `up` (fail open) or `down`. Unset, the server's `-health-unknown-is` default.",
		Optional:   true,
		Validators: []validator.String{stringvalidator.OneOf("up", "down")},
	}
	return attrs
}

// memberAttributes are the attributes of one member of a pool.
func memberAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
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
				policyValidator{"Invalid address", "is not an IPv4 or IPv6 address",
					func(s string) bool { _, ok := api.ParseMemberAddress(s); return ok }},
			},
		},
		"host": schema.StringAttribute{
			MarkdownDescription: "Host name, answered as a CNAME record.",
			Optional:            true,
			Validators:          []validator.String{stringvalidator.LengthAtLeast(1), policyValidator{"Invalid host", "is not a valid host name", api.ValidMemberHost}},
		},
		"weight": schema.Int64Attribute{
			MarkdownDescription: fmt.Sprintf("Relative weight for the `weighted` policy, 0 to 16777216; 0 takes the member out of rotation for good (`glbdns_member_drain` is the temporary kind). Defaults to %d.", api.DefaultWeight),
			Optional:            true,
			Computed:            true,
			Default:             int64default.StaticInt64(api.DefaultWeight),
			Validators:          []validator.Int64{int64validator.Between(0, maxWeight)},
		},
		"port": schema.Int64Attribute{
			MarkdownDescription: "Port of the member in SRV answers, 1 to 65535. Unset, the pool's `port`.",
			Optional:            true,
			Validators:          []validator.Int64{int64validator.Between(1, 65535)},
		},
	}
}

// checkAttributes are the attributes of one health check of a pool.
func checkAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
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
			MarkdownDescription: "Time between probes, a Go duration such as `2s`; `1m` and `60s` are the same value. Unset, the server uses `" + api.DefaultCheckInterval.String() + "`.",
			Optional:            true,
			Validators:          []validator.String{durationValidator{}},
		},
		"timeout": schema.StringAttribute{
			MarkdownDescription: "Deadline of one probe, shorter than `interval`, a Go duration. Unset, the server uses `" + api.DefaultCheckTimeout.String() + "`.",
			Optional:            true,
			Validators:          []validator.String{durationValidator{}},
		},
		"rise": schema.Int64Attribute{
			MarkdownDescription: fmt.Sprintf("Consecutive successes before a down member counts as up. Unset, the server uses %d.", api.DefaultCheckRise),
			Optional:            true,
			Validators:          []validator.Int64{int64validator.Between(1, maxThreshold)},
		},
		"fall": schema.Int64Attribute{
			MarkdownDescription: fmt.Sprintf("Consecutive failures before an up member counts as down. Unset, the server uses %d.", api.DefaultCheckFall),
			Optional:            true,
			Validators:          []validator.Int64{int64validator.Between(1, maxThreshold)},
		},
		"method": optionalString("HTTP method of an `http`/`https` check. The server's default is `" + api.DefaultHTTPMethod + "`."),
		"path": schema.StringAttribute{MarkdownDescription: "HTTP request path of an `http`/`https` check, starting with `/`, e.g. `/healthz`.", Optional: true,
			Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^/`), `must start with "/"`)}},
		"host": optionalString("HTTP Host header of an `http`/`https` check."),
		"headers": schema.MapAttribute{
			MarkdownDescription: "Extra HTTP request headers of an `http`/`https` check, where its credentials live. Sensitive and write-only: " +
				"the server never returns the values (it shows each name with `\"" + api.HeaderMask + "\"`), so the state keeps the configured ones. " +
				"A value changed outside Terraform is not detected; a header added or removed outside Terraform is. The value `\"" + api.HeaderMask + "\"` cannot be configured.",
			Optional: true, Sensitive: true, ElementType: types.StringType,
			Validators: []validator.Map{headersValidator{}},
		},
		"expect_status": schema.ListAttribute{MarkdownDescription: "Accepted HTTP statuses of an `http`/`https` check: codes (`\"200\"`) or ranges (`\"200-299\"`), from 100 to 599.",
			Optional: true, ElementType: types.StringType, Validators: []validator.List{listvalidator.ValueStringsAre(expectStatusValidator{})}},
		"expect_body": optionalString("Substring the HTTP response body must contain."),
		"expect_body_regexp": schema.StringAttribute{MarkdownDescription: "Regular expression (RE2) the HTTP response body must match.", Optional: true,
			Validators: []validator.String{regexpValidator{}}},
		"server_name":      optionalString("TLS server name (SNI) of an `https` check."),
		"insecure":         schema.BoolAttribute{MarkdownDescription: "Skip TLS certificate verification on an `https` check.", Optional: true},
		"follow_redirects": schema.BoolAttribute{MarkdownDescription: "Follow HTTP redirects on an `http`/`https` check.", Optional: true},
		"send":             optionalString("Bytes a `tcp` check sends after connecting."),
		"expect":           optionalString("Bytes a `tcp` check expects to read back."),
		"qname": schema.StringAttribute{MarkdownDescription: "Query name of a `dns` check (required for it).", Optional: true,
			Validators: []validator.String{policyValidator{"Invalid qname", "is not a valid domain name", validDomainName}}},
		"qtype": schema.StringAttribute{MarkdownDescription: "Query type of a `dns` check, e.g. `A` (the default).", Optional: true,
			Validators: []validator.String{policyValidator{"Invalid qtype", "is not a DNS record type", validQType}}},
		"expect_rcode": schema.StringAttribute{MarkdownDescription: "Expected response code of a `dns` check, e.g. `NOERROR` (the default).", Optional: true,
			Validators: []validator.String{policyValidator{"Invalid expect_rcode", "is not a DNS rcode", validRcode}}},
		"expect_answer": optionalString("Data the answer section of a `dns` check must contain."),
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

// ValidateConfig checks at plan time what the attribute validators cannot: the rules
// between a pool's attributes (validatePool), and that a min_healthy number of members
// does not exceed the pool's member count (the pool could never be up; the server
// refuses it too).
func (r *poolResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	validatePool(ctx, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	var minHealthy types.String
	var members types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("min_healthy"), &minHealthy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("members"), &members)...)
	if resp.Diagnostics.HasError() || minHealthy.IsNull() || minHealthy.IsUnknown() || members.IsNull() || members.IsUnknown() {
		return
	}
	n, err := strconv.Atoi(minHealthy.ValueString())
	if err != nil || !minHealthyRE.MatchString(minHealthy.ValueString()) {
		return // a percentage, or refused by the attribute's validator
	}
	if count := len(members.Elements()); n > count {
		resp.Diagnostics.AddAttributeError(path.Root("min_healthy"), "Invalid min_healthy",
			fmt.Sprintf("The pool has %d members, so it could never have %d usable ones and would never count as up.", count, n))
	}
}

// ImportState imports a pool by name: terraform import glbdns_pool.web web-eu.
func (r *poolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

// toAPI converts the plan into the API's pool; unknown computed values are left out, so
// the server fills its defaults.
func (m *poolModel) toAPI() api.Pool {
	p := api.Pool{Name: m.Name.ValueString(), Region: m.Region.ValueString(), Members: []api.Member{},
		Method: m.Method.ValueString(), MinHealthy: api.MinHealthy(m.MinHealthy.ValueString()), UnknownIs: m.UnknownIs.ValueString(),
		Port: intPtr(m.Port), Load: m.Load.toAPI(), ColdStart: m.ColdStart.toAPI()}
	if m.Location != nil {
		p.Location = []float64{}
		for _, l := range m.Location {
			p.Location = append(p.Location, l.ValueFloat64())
		}
	}
	if !m.Bias.IsNull() && !m.Bias.IsUnknown() {
		p.Bias = m.Bias.ValueFloat64Pointer()
	}
	for _, mm := range m.Members {
		p.Members = append(p.Members, api.Member{
			Name: mm.Name.ValueString(), Address: mm.Address.ValueString(), Host: mm.Host.ValueString(),
			Weight: intPtr(mm.Weight), Port: intPtr(mm.Port),
		})
	}
	for _, c := range m.Checks {
		ac := api.Check{
			Name: c.Name.ValueString(), Type: c.Type.ValueString(), Port: intPtr(c.Port),
			Interval: c.Interval.ValueString(), Timeout: c.Timeout.ValueString(),
			Rise: intPtr(c.Rise), Fall: intPtr(c.Fall),
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
			ac.ExpectStatus = api.StatusList{}
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
func poolFromAPI(p *api.Pool, prior *poolModel) poolModel {
	m := poolModel{
		ID: types.StringValue(p.Name), Name: types.StringValue(p.Name), Region: strOrNull(p.Region),
		Method: strOrNull(p.Method), MinHealthy: strOrNull(string(p.MinHealthy)), UnknownIs: strOrNull(p.UnknownIs),
		Port:    intOrNull(p.Port),
		Managed: types.BoolValue(p.Managed), Version: types.StringValue(p.Version),
		Members: []memberModel{},
	}
	var priorBias types.Float64
	var priorLocation []types.Float64
	var priorLoad *loadModel
	var priorCold *coldStartModel
	if prior != nil {
		priorBias, priorLocation, priorLoad, priorCold = prior.Bias, prior.Location, prior.Load, prior.ColdStart
	}
	m.Load = loadFromAPI(p.Load, priorLoad)
	m.ColdStart = coldStartFromAPI(p.ColdStart, priorCold)
	if p.Location != nil {
		m.Location = []types.Float64{}
		for i, l := range p.Location {
			var pl types.Float64
			if i < len(priorLocation) {
				pl = priorLocation[i]
			}
			m.Location = append(m.Location, sameFloat(l, pl))
		}
	}
	m.Bias = types.Float64Null()
	if p.Bias != nil {
		m.Bias = sameFloat(*p.Bias, priorBias)
	}
	for _, am := range p.Members {
		w := int64(api.DefaultWeight)
		if am.Weight != nil {
			w = int64(*am.Weight)
		}
		m.Members = append(m.Members, memberModel{
			Name: types.StringValue(am.Name), Address: strOrNull(am.Address), Host: strOrNull(am.Host), Weight: types.Int64Value(w),
			Port: intOrNull(am.Port),
		})
	}
	if len(p.Checks) == 0 && prior != nil && prior.Checks != nil {
		m.Checks = []checkModel{}
	}
	for i, c := range p.Checks {
		cm := checkModel{
			Name: types.StringValue(c.Name), Type: strOrNull(c.Type), Port: intOrNull(c.Port),
			Interval: strOrNull(c.Interval), Timeout: strOrNull(c.Timeout),
			Rise: intOrNull(c.Rise), Fall: intOrNull(c.Fall),
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
				cm.Headers[k] = keptHeader(v, prior, c.Name, k)
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

// keptHeader is the state of header name of check (read back as got): the server answers
// api.HeaderMask for every value (docs/admin-api.md, "Check headers"), so the value of the
// prior plan or state under the same check and header name is kept, and the mask only for
// a header Terraform has no value of (an import, a header added outside Terraform).
func keptHeader(got string, prior *poolModel, check, name string) types.String {
	if got == api.HeaderMask && prior != nil {
		for _, pc := range prior.Checks {
			if v, ok := pc.Headers[name]; ok && pc.Name.ValueString() == check && !v.IsNull() && !v.IsUnknown() {
				return v
			}
		}
	}
	return types.StringValue(got)
}

// headersValidator refuses api.HeaderMask as a configured header value: the server would
// keep the stored value (or refuse the write) instead of sending it.
type headersValidator struct{}

func (headersValidator) Description(context.Context) string {
	return "values must not be \"" + api.HeaderMask + "\", which the API reads as \"keep the stored value\""
}

func (v headersValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (headersValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for name, e := range req.ConfigValue.Elements() {
		if s, ok := e.(types.String); ok && !s.IsUnknown() && s.ValueString() == api.HeaderMask {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(name), "Invalid header value",
				fmt.Sprintf("The value %q is the mask the glbdns API shows instead of a header's value; written, it keeps the stored value rather than sending %q.", api.HeaderMask, api.HeaderMask))
		}
	}
}

// strOrNull maps the API's omitted (empty) strings to null, which is what an unset
// optional attribute is in Terraform.
func strOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// intOrNull maps the API's omitted numbers to null.
func intOrNull(v *int) types.Int64 {
	if v == nil {
		return types.Int64Null()
	}
	return types.Int64Value(int64(*v))
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

// sameFloat returns prior when it is got as a float64, else got. A configuration's number
// (51.5074) is a decimal of arbitrary precision while the server answers the nearest
// float64; keeping the configured value makes the state hold exactly what the
// configuration says, so that no Terraform version's number comparison can see a diff or
// an "inconsistent result after apply".
func sameFloat(got float64, prior types.Float64) types.Float64 {
	if !prior.IsNull() && !prior.IsUnknown() && prior.ValueFloat64() == got {
		return prior
	}
	return types.Float64Value(got)
}

// locationValidator checks a pool's location: [latitude, longitude], latitude -90 to 90
// and longitude -180 to 180 degrees, as the policy package does.
type locationValidator struct{}

func (locationValidator) Description(context.Context) string {
	return "must be [latitude, longitude]: latitude -90 to 90, longitude -180 to 180 degrees"
}

func (v locationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (locationValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	elems := req.ConfigValue.Elements()
	if len(elems) != 2 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid location",
			fmt.Sprintf("The location must be [latitude, longitude] in degrees, two numbers; got %d.", len(elems)))
		return
	}
	for i, lim := range []struct {
		what string
		max  float64
	}{{"latitude", 90}, {"longitude", 180}} {
		f, ok := elems[i].(types.Float64)
		if !ok || f.IsUnknown() {
			continue
		}
		if f.IsNull() {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i), "Invalid "+lim.what, "The "+lim.what+" must be a number, not null.")
			continue
		}
		if x := f.ValueFloat64(); x < -lim.max || x > lim.max {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i), "Invalid "+lim.what,
				fmt.Sprintf("The %s must be between %g and %g degrees, not %g.", lim.what, -lim.max, lim.max, x))
		}
	}
}

// intPtr is an optional number for the API: nil (the server's default) when unset.
func intPtr(v types.Int64) *int {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	n := int(v.ValueInt64())
	return &n
}

func boolPtr(v types.Bool) *bool {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	return v.ValueBoolPointer()
}

// policyValidator checks a string at plan time with the policy's own check (ok), so that
// the provider refuses what the server would, with the attribute path, before any call.
type policyValidator struct {
	summary, what string
	ok            func(string) bool
}

func (v policyValidator) Description(context.Context) string {
	return "must be valid: it " + v.what + " otherwise"
}

func (v policyValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v policyValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if s := req.ConfigValue.ValueString(); s != "" && !v.ok(s) {
		attrError(&resp.Diagnostics, req.Path, v.summary, "%q %s.", s, v.what)
	}
}
