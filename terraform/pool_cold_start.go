package terraform

import (
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
)

// This file is glbdns_pool's cold_start attribute: its members may scale to zero, and
// healthd probes them accordingly (docs/policy.md, "cold_start"). Each duration is checked
// at plan time, and how they compare with the pool's checks too (validatePool).

// coldStartModel is the cold_start attribute in state, stored as written: unset
// attributes stay null and take the policy's defaults when the pool is compiled.
type coldStartModel struct {
	Timeout      types.String `tfsdk:"timeout"`
	IdleAfter    types.String `tfsdk:"idle_after"`
	IdleInterval types.String `tfsdk:"idle_interval"`
}

var coldStartDescriptions = map[string]string{
	"timeout": "The timeout of a cold probe (a check's first, every probe while the pool is idle, the first after it is " +
		"answered again), a Go duration up to 5m and no shorter than any check's timeout. Unset, `10s`.",
	"idle_after": "How long without a glbdns node answering the pool makes it idle, a Go duration. Unset, `1h`.",
	"idle_interval": "The probe interval while the pool is idle, a Go duration no shorter than any check's interval. " +
		"Unset, `10m` (or the longest check interval, when longer).",
}

const coldStartDescription = "Says that the pool's members may scale to zero (serverless endpoints): healthd probes an " +
	"idle pool (unanswered for `idle_after`) every `idle_interval`, so that its probes do not keep it warm, and gives a " +
	"cold probe `timeout`, so that a cold start is not taken for a failure. Unset attributes stay null in the state."

func coldStartSchema() schema.Attribute {
	attrs := map[string]schema.Attribute{}
	for n, d := range coldStartDescriptions {
		v := durationValidator{}
		if n == "timeout" {
			v.max = api.MaxColdStartTimeout
		}
		attrs[n] = schema.StringAttribute{MarkdownDescription: d, Optional: true, Validators: []validator.String{v}}
	}
	return schema.SingleNestedAttribute{MarkdownDescription: coldStartDescription, Optional: true, Attributes: attrs}
}

func coldStartDataSchema() dschema.Attribute {
	attrs := map[string]dschema.Attribute{}
	for n, d := range coldStartDescriptions {
		attrs[n] = dschema.StringAttribute{MarkdownDescription: d, Computed: true}
	}
	return dschema.SingleNestedAttribute{
		MarkdownDescription: "The pool's cold_start block, null when it has none. Pools from the operator's files are shown " +
			"with the defaults filled in; pools written through the API as written.",
		Computed: true, Attributes: attrs}
}

// toAPI is the cold_start block for the API; nil without one.
func (c *coldStartModel) toAPI() *api.ColdStart {
	if c == nil {
		return nil
	}
	return &api.ColdStart{Timeout: c.Timeout.ValueString(), IdleAfter: c.IdleAfter.ValueString(), IdleInterval: c.IdleInterval.ValueString()}
}

// coldStartFromAPI is the server's cold_start block in state; prior (may be nil) keeps a
// duration spelled differently ("60s" against "1m0s").
func coldStartFromAPI(c *api.ColdStart, prior *coldStartModel) *coldStartModel {
	if c == nil {
		return nil
	}
	m := &coldStartModel{Timeout: strOrNull(c.Timeout), IdleAfter: strOrNull(c.IdleAfter), IdleInterval: strOrNull(c.IdleInterval)}
	if prior != nil {
		m.Timeout = sameDuration(m.Timeout, prior.Timeout)
		m.IdleAfter = sameDuration(m.IdleAfter, prior.IdleAfter)
		m.IdleInterval = sameDuration(m.IdleInterval, prior.IdleInterval)
	}
	return m
}
