package terraform

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/glbdns/glbdns/api"
)

// This file is glbdns_pool's load attribute: how healthd reads the members' load for the
// least_connections method (docs/policy.md, "load"), validated at plan time as the policy
// package's loadSignal does, except what depends on the pool's checks (the default
// interval and timeout), which the server checks.

// loadTypes are the load signal types; the first is the default.
var loadTypes = []string{"prometheus", "json", "number"}

// loadSelectors are the attributes that pick the number out of a reading's body, by the
// load type they apply to.
var loadSelectors = map[string][]string{"prometheus": {"metric", "labels"}, "json": {"field"}, "number": nil}

// loadModel is the load attribute in state. The server stores it as written (as checks):
// unset attributes stay null and take the policy's defaults when the pool is compiled.
type loadModel struct {
	Type     types.String            `tfsdk:"type"`
	Metric   types.String            `tfsdk:"metric"`
	Labels   map[string]types.String `tfsdk:"labels"`
	Field    types.String            `tfsdk:"field"`
	Port     types.Int64             `tfsdk:"port"`
	Path     types.String            `tfsdk:"path"`
	Scheme   types.String            `tfsdk:"scheme"`
	Interval types.String            `tfsdk:"interval"`
	Timeout  types.String            `tfsdk:"timeout"`
}

// loadDescriptions are the load attributes' descriptions, shared by the resource and the
// data source.
var loadDescriptions = map[string]string{
	"type": "How a reading's body is read: `prometheus` (the Prometheus text format; the value is the sum of the samples " +
		"of `metric` whose labels include every `labels` pair), `json` (the number at the dotted path `field`) or `number` " +
		"(the whole body is one number). Unset, `prometheus`.",
	"metric": "The metric of a `prometheus` signal (required for it, refused for the others), e.g. `active_connections`.",
	"labels": "Label matchers (equality) of a `prometheus` signal: only samples carrying every pair are summed. Unset, all samples of the metric.",
	"field":  "The dotted path of the number in a `json` signal's body (required for it, refused for the others), e.g. `connections.active`.",
	"port":   "Port to read the load from, 1 to 65535. Unset, the port of the member's first `http`/`https` check, else 80.",
	"path":   "HTTP path to read, starting with `/`. Unset, `/metrics` for `prometheus`, else the path of the pool's first `http`/`https` check, else `/`.",
	"scheme": "`http` or `https`. Unset, the type of the pool's first `http`/`https` check, else `http`.",
	"interval": "Time between readings, a Go duration. Unset, the interval of the pool's first `http`/`https` check, else `" +
		api.DefaultCheckInterval.String() + "`.",
	"timeout": "Deadline of one reading, shorter than `interval`, a Go duration. Unset, the timeout of the pool's first " +
		"`http`/`https` check, else `" + api.DefaultCheckTimeout.String() + "`.",
}

const loadDescription = "How healthd reads each member's load (its active connections), which the `least_connections` " +
	"method balances on: every `interval`, an HTTP(S) GET beside the checks. A service that balances this pool by " +
	"`least_connections` (its `policy`, or the `method` of a steered service or of this pool) needs it. Unset attributes " +
	"stay null in the state: the server stores the block as written and fills in the defaults when it compiles the pool."

func loadSchema() schema.Attribute {
	d := loadDescriptions
	str := func(n string, vs ...validator.String) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: d[n], Optional: true, Validators: vs}
	}
	return schema.SingleNestedAttribute{
		MarkdownDescription: loadDescription,
		Optional:            true,
		Validators:          []validator.Object{loadValidator{}},
		Attributes: map[string]schema.Attribute{
			"type":   str("type", stringvalidator.OneOf(loadTypes...)),
			"metric": str("metric", policyValidator{"Invalid metric", "is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", api.ValidMetricName}),
			"labels": schema.MapAttribute{MarkdownDescription: d["labels"], Optional: true, ElementType: types.StringType},
			"field":  str("field", policyValidator{"Invalid field", `is not a dotted path such as "a.b", with no empty element`, api.ValidLoadField}),
			"port": schema.Int64Attribute{MarkdownDescription: d["port"], Optional: true,
				Validators: []validator.Int64{int64validator.Between(1, 65535)}},
			"path":     str("path", stringvalidator.RegexMatches(regexp.MustCompile(`^/`), `must start with "/"`)),
			"scheme":   str("scheme", stringvalidator.OneOf("http", "https")),
			"interval": str("interval", durationValidator{}),
			"timeout":  str("timeout", durationValidator{}),
		},
	}
}

// loadDataSchema is the load attribute of the glbdns_pool data source.
func loadDataSchema() dschema.Attribute {
	attrs := map[string]dschema.Attribute{}
	for n, desc := range loadDescriptions {
		switch n {
		case "labels":
			attrs[n] = dschema.MapAttribute{MarkdownDescription: desc, Computed: true, ElementType: types.StringType}
		case "port":
			attrs[n] = dschema.Int64Attribute{MarkdownDescription: desc, Computed: true}
		default:
			attrs[n] = dschema.StringAttribute{MarkdownDescription: desc, Computed: true}
		}
	}
	return dschema.SingleNestedAttribute{
		MarkdownDescription: "The pool's load block, null when it has none. Pools from the operator's files are shown with the " +
			"defaults filled in; pools written through the API as written (unset attributes are null).",
		Computed:   true,
		Attributes: attrs,
	}
}

// loadValidator checks what depends on the load type, as the policy package does: the
// selector the type needs (metric, field), none of another type's, and a timeout shorter
// than the interval when both are set.
type loadValidator struct{}

func (loadValidator) Description(context.Context) string {
	return "prometheus needs metric (labels optional), json needs field, number neither; timeout shorter than interval"
}

func (v loadValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (loadValidator) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	known := func(n string) (attr.Value, bool) {
		a, ok := attrs[n]
		return a, ok && !a.IsNull() && !a.IsUnknown()
	}
	set := func(n string) bool { a, ok := attrs[n]; return ok && !a.IsNull() }
	typ := loadTypes[0]
	if a, ok := attrs["type"]; ok && a.IsUnknown() {
		typ = ""
	} else if s, ok := known("type"); ok {
		typ = s.(types.String).ValueString()
	}
	if allowed, ok := loadSelectors[typ]; ok {
		for _, n := range []string{"metric", "labels", "field"} {
			if set(n) && !slices.Contains(allowed, n) {
				resp.Diagnostics.AddAttributeError(req.Path.AtName(n), "Unsupported argument",
					fmt.Sprintf("The %q argument does not apply to a %s load signal.", n, typ))
			}
		}
		switch {
		case typ == "prometheus" && !set("metric"):
			resp.Diagnostics.AddAttributeError(req.Path.AtName("metric"), "Missing load metric",
				`A prometheus load signal needs the metric to read (metric = "active_connections").`)
		case typ == "json" && !set("field"):
			resp.Diagnostics.AddAttributeError(req.Path.AtName("field"), "Missing load field",
				`A json load signal needs the dotted path of the number to read (field = "connections.active").`)
		}
	}
	iv, okI := known("interval")
	tv, okT := known("timeout")
	if okI && okT {
		i, errI := time.ParseDuration(iv.(types.String).ValueString())
		t, errT := time.ParseDuration(tv.(types.String).ValueString())
		if errI == nil && errT == nil && i > 0 && t >= i {
			resp.Diagnostics.AddAttributeError(req.Path.AtName("timeout"), "Invalid timeout",
				fmt.Sprintf("The load timeout (%s) must be shorter than its interval (%s), or readings would overlap.", t, i))
		}
	}
}

// toAPI is the load block for the API; nil without one.
func (l *loadModel) toAPI() *api.Load {
	if l == nil {
		return nil
	}
	out := &api.Load{Type: l.Type.ValueString(), Metric: l.Metric.ValueString(), Field: l.Field.ValueString(),
		Port: intPtr(l.Port), Path: l.Path.ValueString(), Scheme: l.Scheme.ValueString(),
		Interval: l.Interval.ValueString(), Timeout: l.Timeout.ValueString()}
	if l.Labels != nil {
		out.Labels = map[string]string{}
		for k, v := range l.Labels {
			out.Labels[k] = v.ValueString()
		}
	}
	return out
}

// loadFromAPI is the server's load block in state. prior (may be nil) decides between
// null and an empty labels map, which the API does not tell apart, and keeps a duration
// spelled differently.
func loadFromAPI(l *api.Load, prior *loadModel) *loadModel {
	if l == nil {
		return nil
	}
	m := &loadModel{Type: strOrNull(l.Type), Metric: strOrNull(l.Metric), Field: strOrNull(l.Field), Port: intOrNull(l.Port),
		Path: strOrNull(l.Path), Scheme: strOrNull(l.Scheme), Interval: strOrNull(l.Interval), Timeout: strOrNull(l.Timeout)}
	if prior != nil {
		m.Interval = sameDuration(m.Interval, prior.Interval)
		m.Timeout = sameDuration(m.Timeout, prior.Timeout)
	}
	if len(l.Labels) > 0 || (prior != nil && prior.Labels != nil) {
		m.Labels = map[string]types.String{}
		for k, v := range l.Labels {
			m.Labels[k] = types.StringValue(v)
		}
	}
	return m
}
