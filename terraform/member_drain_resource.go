package terraform

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
)

var (
	_ resource.Resource                = &memberDrainResource{}
	_ resource.ResourceWithConfigure   = &memberDrainResource{}
	_ resource.ResourceWithImportState = &memberDrainResource{}
)

// NewMemberDrainResource is the glbdns_member_drain resource's factory.
func NewMemberDrainResource() resource.Resource { return &memberDrainResource{} }

// memberDrainResource manages one drain through /v1/pools/{pool}/members/{member}/drain.
// The API has no PUT for drains: an update drains the member again with the new duration
// and reason, which replaces the drain (a new until counted from now).
type memberDrainResource struct {
	client *client.Client
}

type memberDrainModel struct {
	ID       types.String `tfsdk:"id"`
	Pool     types.String `tfsdk:"pool"`
	Member   types.String `tfsdk:"member"`
	Duration types.String `tfsdk:"duration"`
	Reason   types.String `tfsdk:"reason"`
	Until    types.String `tfsdk:"until"`
}

func (r *memberDrainResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_member_drain"
}

func (r *memberDrainResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Drains a pool member: it leaves the answers (as if down) until `until`, then comes back by itself. " +
			"Once the drain has expired the resource is gone from the server, and the next plan drains the member again; " +
			"remove the resource when the maintenance is over. Destroying it ends the drain early.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`POOL/MEMBER`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Name of the member's pool. Changing it drains another member.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'")},
			},
			"member": schema.StringAttribute{
				MarkdownDescription: "Name of the member to drain. Changing it drains another member.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(nameRE, "must be letters, digits, '.', '-' or '_'")},
			},
			"duration": schema.StringAttribute{
				MarkdownDescription: "How long the drain lasts from when it is applied, a Go duration such as `30m` or `2h`, at most 366 days. " +
					"Changing it drains the member again for the new duration, counted from the apply.",
				Required:   true,
				Validators: []validator.String{durationValidator{max: api.MaxDrain}},
			},
			"reason": schema.StringAttribute{
				MarkdownDescription: "Why the member is drained, shown on the status page and in `/v1/drains`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"until": schema.StringAttribute{
				MarkdownDescription: "When the drain ends (RFC 3339), as the server computed it.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{untilModifier{}},
			},
		},
	}
}

func (r *memberDrainResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *memberDrainResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan memberDrainModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, err := r.client.Drain(ctx, plan.Pool.ValueString(), plan.Member.ValueString(),
		api.DrainRequest{Duration: plan.Duration.ValueString(), Reason: plan.Reason.ValueString()})
	if err != nil {
		addAPIError(&resp.Diagnostics, "drain member "+plan.Member.ValueString()+" of pool "+plan.Pool.ValueString(), err)
		return
	}
	plan.ID = types.StringValue(plan.Pool.ValueString() + "/" + plan.Member.ValueString())
	plan.Until = untilValue(d.Until)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *memberDrainResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state memberDrainModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, err := r.client.GetDrain(ctx, state.Pool.ValueString(), state.Member.ValueString())
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx) // expired or ended elsewhere
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read the drain of "+state.ID.ValueString(), err)
		return
	}
	state.ID = types.StringValue(d.Pool + "/" + d.Member)
	state.Pool, state.Member = types.StringValue(d.Pool), types.StringValue(d.Member)
	state.Reason, state.Until = strOrNull(d.Reason), untilValue(d.Until)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *memberDrainResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan memberDrainModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pool, member := plan.Pool.ValueString(), plan.Member.ValueString()
	body := api.DrainRequest{Duration: plan.Duration.ValueString(), Reason: plan.Reason.ValueString()}
	d, err := r.client.Drain(ctx, pool, member, body)
	if errors.Is(err, client.ErrConflict) {
		// A server that refuses to replace a drain in place: end it and drain again. The
		// member stays out of the answers in between but for one snapshot swap.
		if err = r.client.Undrain(ctx, pool, member); err == nil || errors.Is(err, client.ErrNotFound) {
			d, err = r.client.Drain(ctx, pool, member, body)
		}
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "drain member "+member+" of pool "+pool+" again", err)
		return
	}
	plan.ID = types.StringValue(pool + "/" + member)
	plan.Until = untilValue(d.Until)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *memberDrainResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state memberDrainModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.Undrain(ctx, state.Pool.ValueString(), state.Member.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addAPIError(&resp.Diagnostics, "end the drain of "+state.ID.ValueString(), err)
	}
}

// ImportState imports a drain by "POOL/MEMBER". The duration it was created with is not
// kept by the server, so it stays null until the configuration sets it (which, being a
// change, drains the member again for that duration).
func (r *memberDrainResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	pool, member, ok := strings.Cut(req.ID, "/")
	if !ok || pool == "" || member == "" || strings.Contains(member, "/") {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("A drain is imported by \"POOL/MEMBER\", e.g. \"web-eu/fra-1\"; got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("pool"), pool)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("member"), member)...)
}

// durationValidator checks at plan time that a string is a positive Go duration, at most
// max when max is set.
type durationValidator struct{ max time.Duration }

func (v durationValidator) Description(context.Context) string {
	if v.max > 0 {
		return fmt.Sprintf("must be a positive Go duration such as \"30m\" or \"2h\", at most %s", v.max)
	}
	return "must be a positive Go duration such as \"30m\" or \"2h\""
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v durationValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if d, err := time.ParseDuration(req.ConfigValue.ValueString()); err != nil || d <= 0 || (v.max > 0 && d > v.max) {
		attrError(&resp.Diagnostics, req.Path, "Invalid duration", "The value %q %s.", req.ConfigValue.ValueString(), v.Description(ctx))
	}
}

// untilModifier keeps until from the state while duration and reason are unchanged (nothing
// will be posted, so it cannot change), and leaves it unknown when the member will be
// drained again.
type untilModifier struct{}

func (untilModifier) Description(context.Context) string {
	return "until changes only when the member is drained again"
}

func (m untilModifier) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (untilModifier) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.StateValue.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var plan, state memberDrainModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Duration.Equal(state.Duration) && plan.Reason.Equal(state.Reason) {
		resp.PlanValue = req.StateValue
	}
}

// untilValue is a drain's end as the API writes it (RFC 3339, as encoding/json writes a
// time.Time), so that the state holds the server's own text.
func untilValue(t time.Time) types.String { return types.StringValue(t.Format(time.RFC3339Nano)) }
