package terraform

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
)

// This file holds the plan-time checks of values the server refuses that need no other
// object: the cross-field rules of a pool (its checks, load and cold_start together), of
// a service (its geo rules against its pools) and the single values that need api's or
// miekg/dns's own checks (the ones the server calls). Each diagnostic is at its attribute
// and names the path in its detail too: OpenTofu shows the resource and the line of the
// top-level attribute, not where inside a list of objects the value is.

// attrError adds an error at p whose detail starts with p, so that the path shows even
// where the CLI shows only the top-level attribute.
func attrError(diags *diag.Diagnostics, p path.Path, summary, format string, args ...any) {
	diags.AddAttributeError(p, summary, p.String()+": "+fmt.Sprintf(format, args...))
}

// objString is attribute n of o: its value, and whether it is set (not null) and known.
func objString(o map[string]attr.Value, n string) (v string, set, known bool) {
	a, ok := o[n]
	if !ok || a.IsNull() {
		return "", false, true
	}
	if a.IsUnknown() {
		return "", true, false
	}
	s, ok := a.(types.String)
	if !ok {
		return "", true, false
	}
	return s.ValueString(), true, true
}

// objDuration is the duration attribute n of o, else def; ok is false when it is
// unknown or not a positive duration (refused by its own validator).
func objDuration(o map[string]attr.Value, n string, def time.Duration) (d time.Duration, set, ok bool) {
	s, set, known := objString(o, n)
	if !known {
		return 0, set, false
	}
	if !set {
		return def, false, true
	}
	d, err := time.ParseDuration(s)
	return d, true, err == nil && d > 0
}

// knownObjects is the objects of a list attribute, nil when the list or one of its
// objects is not known yet (the checks that need the whole list wait for apply's plan).
func knownObjects(l types.List) []map[string]attr.Value {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []map[string]attr.Value
	for _, e := range l.Elements() {
		o, ok := e.(types.Object)
		if !ok || o.IsUnknown() || o.IsNull() {
			return nil
		}
		out = append(out, o.Attributes())
	}
	return out
}

// validatePool checks a pool as the policy package does, beyond what each attribute's
// validators can see: member and check names unique, each check's type (or a name that
// is one), the attributes its type allows, a tcp check's port, a dns check's qname, a
// timeout shorter than its interval (the defaults filled in), the load block's timing
// with the defaults it takes from the first http(s) check, and the cold_start block
// against the checks.
func validatePool(ctx context.Context, cfg getAttributer, diags *diag.Diagnostics) {
	var members, checks types.List
	var load, cold types.Object
	diags.Append(cfg.GetAttribute(ctx, path.Root("members"), &members)...)
	diags.Append(cfg.GetAttribute(ctx, path.Root("checks"), &checks)...)
	diags.Append(cfg.GetAttribute(ctx, path.Root("load"), &load)...)
	diags.Append(cfg.GetAttribute(ctx, path.Root("cold_start"), &cold)...)
	if diags.HasError() {
		return
	}
	seen := map[string]int{}
	for i, m := range knownObjects(members) {
		if n, set, known := objString(m, "name"); set && known {
			if prev, dup := seen[n]; dup {
				attrError(diags, path.Root("members").AtListIndex(i).AtName("name"), "Duplicate member",
					"The pool already has a member %q (members[%d]); member names are unique within a pool, since health and drains are keyed by them.", n, prev)
			}
			seen[n] = i
		}
	}
	cs := knownObjects(checks)
	allKnown := checks.IsNull() || cs != nil
	var maxTimeout, maxInterval time.Duration
	var first map[string]attr.Value // the first http(s) check, which a load block defaults from
	seen = map[string]int{}
	for i, c := range cs {
		ok := validateCheck(path.Root("checks").AtListIndex(i), c, seen, i, diags)
		typ, _, _ := objString(c, "type")
		if name, _, _ := objString(c, "name"); typ == "" {
			typ = name
		}
		iv, _, okI := objDuration(c, "interval", api.DefaultCheckInterval)
		tv, _, okT := objDuration(c, "timeout", api.DefaultCheckTimeout)
		if !okI || !okT {
			allKnown = false
			continue
		}
		if ok {
			maxTimeout, maxInterval = max(maxTimeout, tv), max(maxInterval, iv)
		}
		if first == nil && (typ == "http" || typ == "https") {
			first = c
		}
	}
	if !load.IsNull() && !load.IsUnknown() && allKnown {
		validateLoadTiming(load.Attributes(), first, diags)
	}
	if !cold.IsNull() && !cold.IsUnknown() && allKnown {
		validateColdStart(cold.Attributes(), maxTimeout, maxInterval, diags)
	}
}

// getAttributer is a configuration (tfsdk.Config), as ValidateConfig gets it.
type getAttributer interface {
	GetAttribute(ctx context.Context, p path.Path, target any) diag.Diagnostics
}

// validateCheck checks check c at p, the i-th; seen holds the names before it. It
// returns whether the check is one the server compiles (its checks count for cold_start).
func validateCheck(p path.Path, c map[string]attr.Value, seen map[string]int, i int, diags *diag.Diagnostics) bool {
	n0 := diags.ErrorsCount()
	name, nameSet, nameKnown := objString(c, "name")
	if nameSet && nameKnown {
		if prev, dup := seen[name]; dup {
			attrError(diags, p.AtName("name"), "Duplicate check", "The pool already has a check %q (checks[%d]).", name, prev)
		}
		seen[name] = i
	}
	typ, typSet, typKnown := objString(c, "type")
	switch {
	case !typKnown || (!typSet && !nameKnown):
		return false
	case !typSet && slices.Contains(api.CheckTypes, name):
		typ = name
	case !typSet:
		attrError(diags, p.AtName("type"), "Missing check type",
			"Check %q needs a type (%s); it defaults to the check's name only when that is one of these.", name, strings.Join(api.CheckTypes, ", "))
		return false
	case !slices.Contains(api.CheckTypes, typ):
		return false // refused by the attribute's validator
	}
	for _, n := range sortedKeys(c) {
		if n == "name" || c[n].IsNull() || api.CheckAttrAllowed(typ, n) {
			continue
		}
		attrError(diags, p.AtName(n), "Unsupported argument", "The %q argument does not apply to a %s check; remove it or change the check's type.", n, typ)
	}
	if a := c["port"]; typ == "tcp" && (a == nil || a.IsNull()) {
		attrError(diags, p.AtName("port"), "Missing check port", "A tcp check needs a port (1 to 65535).")
	}
	if _, set, known := objString(c, "qname"); typ == "dns" && !set && known {
		attrError(diags, p.AtName("qname"), "Missing check qname", "A dns check needs a qname to ask, such as \"example.com\".")
	}
	iv, iSet, okI := objDuration(c, "interval", api.DefaultCheckInterval)
	tv, tSet, okT := objDuration(c, "timeout", api.DefaultCheckTimeout)
	if okI && okT && tv >= iv {
		at := "timeout"
		if !tSet && iSet {
			at = "interval"
		}
		attrError(diags, p.AtName(at), "Invalid timeout",
			"The timeout (%s) must be shorter than the interval (%s), or probes would overlap; unset, they are %s and %s.",
			tv, iv, api.DefaultCheckTimeout, api.DefaultCheckInterval)
	}
	return diags.ErrorsCount() == n0
}

func sortedKeys(m map[string]attr.Value) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// validateLoadTiming checks the load block's timeout against its interval when one of
// them comes from the pool's first http(s) check (first, may be nil) or the defaults; the
// load attribute's validator checks them when both are set.
func validateLoadTiming(l, first map[string]attr.Value, diags *diag.Diagnostics) {
	defI, defT := api.DefaultCheckInterval, api.DefaultCheckTimeout
	from := "the defaults"
	if first != nil {
		var ok1, ok2 bool
		defI, _, ok1 = objDuration(first, "interval", api.DefaultCheckInterval)
		defT, _, ok2 = objDuration(first, "timeout", api.DefaultCheckTimeout)
		if !ok1 || !ok2 {
			return
		}
		name, _, _ := objString(first, "name")
		from = fmt.Sprintf("check %q", name)
	}
	iv, iSet, okI := objDuration(l, "interval", defI)
	tv, tSet, okT := objDuration(l, "timeout", defT)
	if !okI || !okT || iSet == tSet || tv < iv {
		return
	}
	at := "timeout"
	if !tSet {
		at = "interval"
	}
	attrError(diags, path.Root("load").AtName(at), "Invalid timeout",
		"The load timeout (%s) must be shorter than its interval (%s), or readings would overlap; the unset one is %s's.", tv, iv, from)
}

// validateColdStart checks the cold_start block against the pool's checks (the longest
// timeout and interval among them, 0 without checks): a cold probe is no quicker than a
// check, an idle pool probed no more often.
func validateColdStart(cs map[string]attr.Value, maxTimeout, maxInterval time.Duration, diags *diag.Diagnostics) {
	if t, set, ok := objDuration(cs, "timeout", api.DefaultColdStartTimeout); ok && t <= api.MaxColdStartTimeout && t < maxTimeout {
		what := t.String()
		if !set {
			what = "unset, the default " + what
		}
		attrError(diags, path.Root("cold_start").AtName("timeout"), "Invalid cold_start timeout",
			"The cold start timeout (%s) must not be shorter than the timeout of the pool's checks (%s).", what, maxTimeout)
	}
	if iv, set, ok := objDuration(cs, "idle_interval", 0); ok && set && iv < maxInterval {
		attrError(diags, path.Root("cold_start").AtName("idle_interval"), "Invalid cold_start idle_interval",
			"The idle interval (%s) must not be shorter than the interval of the pool's checks (%s): an idle pool is probed less often, not more.", iv, maxInterval)
	}
}

// serviceRulesValidator checks a service beyond its attributes' validators: a steering policy
// steers between at most api.MaxSteerPools pools, and a geo rule's pools and the
// default_pools are pools of the service, each network, ASN, country and continent in
// one rule only.
type serviceRulesValidator struct{}

func (serviceRulesValidator) Description(context.Context) string {
	return "a steering service has at most 64 pools; geo rules name pools of the service and match each value once"
}

func (v serviceRulesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (serviceRulesValidator) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var policy types.String
	var pools types.List
	var geo types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("policy"), &policy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("pools"), &pools)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("geo"), &geo)...)
	if resp.Diagnostics.HasError() || pools.IsNull() || pools.IsUnknown() {
		return
	}
	if slices.Contains(steeringPolicies, policy.ValueString()) && len(pools.Elements()) > api.MaxSteerPools {
		attrError(&resp.Diagnostics, path.Root("pools"), "Too many pools",
			"A %s service steers between at most %d pools; this one lists %d.", policy.ValueString(), api.MaxSteerPools, len(pools.Elements()))
	}
	if geo.IsNull() || geo.IsUnknown() {
		return
	}
	inService := map[string]bool{}
	for _, e := range pools.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsUnknown() {
			return // a pool known only at apply: the server checks the orders
		}
		inService[s.ValueString()] = true
	}
	order := func(p path.Path, l attr.Value) {
		ll, ok := l.(types.List)
		if !ok || ll.IsNull() || ll.IsUnknown() {
			return
		}
		for i, e := range ll.Elements() {
			if s, ok := e.(types.String); ok && !s.IsNull() && !s.IsUnknown() && !inService[s.ValueString()] {
				attrError(&resp.Diagnostics, p.AtListIndex(i), "Pool not in service",
					"Pool %q is not one of the service's pools; add it to pools.", s.ValueString())
			}
		}
	}
	ga := geo.Attributes()
	order(path.Root("geo").AtName("default_pools"), ga["default_pools"])
	rules, ok := ga["rules"].(types.List)
	if !ok {
		return
	}
	rs := knownObjects(rules)
	firstAt := map[string]map[string]int{} // match list -> value -> rule index
	for i, r := range rs {
		rp := path.Root("geo").AtName("rules").AtListIndex(i)
		order(rp.AtName("pools"), r["pools"])
		for _, n := range geoMatchAttrs {
			l, ok := r[n].(types.List)
			if !ok || l.IsNull() || l.IsUnknown() {
				continue
			}
			if firstAt[n] == nil {
				firstAt[n] = map[string]int{}
			}
			for j, e := range l.Elements() {
				if e.IsNull() || e.IsUnknown() {
					continue
				}
				key := matchKey(e)
				if prev, dup := firstAt[n][key]; dup {
					attrError(&resp.Diagnostics, rp.AtName(n).AtListIndex(j), "Duplicate "+geoMatchOne[n],
						"%s is already matched by geo.rules[%d]; a value may appear in one rule only, once.", key, prev)
					continue
				}
				firstAt[n][key] = i
			}
		}
	}
}

// geoMatchOne names one element of each match list, as the server's summaries do.
var geoMatchOne = map[string]string{"networks": "network", "asns": "ASN", "countries": "country", "continents": "continent"}

// matchKey is a match list element as the server compares them: a network by its prefix
// (so "2001:DB8::/32" and "2001:db8::/32" are one), a number by its value.
func matchKey(e attr.Value) string {
	switch v := e.(type) {
	case types.String:
		if p, err := netip.ParsePrefix(v.ValueString()); err == nil {
			return fmt.Sprintf("%q", p)
		}
		return fmt.Sprintf("%q", v.ValueString())
	case types.Int64:
		return fmt.Sprintf("AS%d", v.ValueInt64())
	}
	return e.String()
}

// expectStatusValidator checks an expect_status element with the policy's own check: an
// HTTP status (100 to 599) or a range "lo-hi".
type expectStatusValidator struct{}

func (expectStatusValidator) Description(context.Context) string {
	return `must be an HTTP status from 100 to 599 ("404") or a range ("200-299")`
}

func (v expectStatusValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v expectStatusValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if lo, hi, err := api.ParseStatus(s); err != nil || !api.ValidStatusRange(lo, hi) {
		attrError(&resp.Diagnostics, req.Path, "Invalid expect_status", "%q %s.", s, v.Description(ctx))
	}
}

// regexpValidator checks that a string is a regular expression Go (RE2) compiles, as
// healthd does.
type regexpValidator struct{}

func (regexpValidator) Description(context.Context) string {
	return "must be a regular expression in Go's (RE2) syntax"
}

func (v regexpValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (regexpValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := regexp.Compile(req.ConfigValue.ValueString()); err != nil {
		attrError(&resp.Diagnostics, req.Path, "Invalid regular expression", "%v.", err)
	}
}

// validDomainName is a DNS name as the policy package checks service names and a dns
// check's qname (miekg/dns's IsDomainName, on the name made fully qualified).
func validDomainName(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	_, ok := dns.IsDomainName(s)
	return ok && s != "."
}

// validServiceName is a service name the server stores: a domain name whose managed
// document name fits (api.NameProblem).
func validServiceName(s string) bool {
	return validDomainName(s) && api.NameProblem("service", api.ServiceName(s)) == ""
}

func validQType(s string) bool { _, ok := dns.StringToType[strings.ToUpper(s)]; return ok }

func validRcode(s string) bool { _, ok := dns.StringToRcode[strings.ToUpper(s)]; return ok }

// validPoolName is a pool name the provider accepts (nameRE) whose managed document name
// fits (api.NameProblem).
func validPoolName(s string) bool { return api.NameProblem("pool", s) == "" }
