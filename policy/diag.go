package policy

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder collects every diagnostic found while decoding and compiling, so that one load
// reports all problems at once instead of the first one (as hclsimple does).
type decoder struct {
	diags hcl.Diagnostics
}

// errf is the one place diagnostics are built: every policy error carries the source range
// of the attribute or block at fault, so it renders as file:line:col.
func (d *decoder) errf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  &r,
	})
}

// add appends diagnostics from hcl itself (parse errors, schema errors).
func (d *decoder) add(diags hcl.Diagnostics) { d.diags = append(d.diags, diags...) }

// finish sorts the diagnostics by position and drops exact duplicates (a pool check that
// is wrong is otherwise reported once more for every member that overrides it).
func finish(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := make(map[string]bool, len(diags))
	out := diags[:0]
	for _, d := range diags {
		key := d.Summary + "\x00" + d.Detail
		if d.Subject != nil {
			key += "\x00" + d.Subject.String()
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		if a == nil || b == nil {
			return a == nil && b != nil
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out
}

// value evaluates a static expression (the policy language has no variables or functions).
func (d *decoder) value(a *hcl.Attribute) (cty.Value, bool) {
	if v, ok := literalString(a.Expr); ok {
		return v, true
	}
	v, diags := a.Expr.Value(nil)
	d.add(diags)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.errf(a.Expr.Range(), "Missing value", "Attribute %q must not be null.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

func (d *decoder) convert(a *hcl.Attribute, v cty.Value, ty cty.Type) (cty.Value, bool) {
	c, err := convert.Convert(v, ty)
	if err != nil {
		d.errf(a.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", a.Name, err)
		return cty.NilVal, false
	}
	return c, true
}

func (d *decoder) str(a *hcl.Attribute) (string, bool) {
	v, ok := d.value(a)
	if !ok {
		return "", false
	}
	if v, ok = d.convert(a, v, cty.String); !ok {
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := d.value(a)
	if !ok {
		return false, false
	}
	if v, ok = d.convert(a, v, cty.Bool); !ok {
		return false, false
	}
	return v.True(), true
}

// integer decodes a whole number in [lo, hi]; what names it in the error ("weight").
func (d *decoder) integer(a *hcl.Attribute, lo, hi int64) (int64, bool) {
	v, ok := d.value(a)
	if !ok {
		return 0, false
	}
	if v, ok = d.convert(a, v, cty.Number); !ok {
		return 0, false
	}
	return d.wholeIn(a.Expr.Range(), a.Name, v.AsBigFloat(), lo, hi)
}

func (d *decoder) wholeIn(rng hcl.Range, name string, f *big.Float, lo, hi int64) (int64, bool) {
	if !f.IsInt() {
		d.errf(rng, "Invalid "+name, "The %s must be a whole number, not %s.", name, f.Text('f', -1))
		return 0, false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i < lo || i > hi {
		d.errf(rng, "Invalid "+name, "The %s must be between %d and %d, not %s.", name, lo, hi, f.Text('f', -1))
		return 0, false
	}
	return i, true
}

// maxTTL is the largest TTL: RFC 2181 section 8 limits TTLs to 2^31-1 seconds.
const maxTTL = 1<<31 - 1

func (d *decoder) ttl(a *hcl.Attribute) (uint32, bool) {
	i, ok := d.integer(a, 0, maxTTL)
	return uint32(i), ok
}

func (d *decoder) duration(a *hcl.Attribute) (time.Duration, bool) {
	s, ok := d.str(a)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		d.errf(a.Expr.Range(), "Invalid duration",
			"The %s must be a positive duration such as \"2s\" or \"500ms\", not %q.", a.Name, s)
		return 0, false
	}
	return dur, true
}

// listItem is one element of a list attribute with its own source range, so that an error
// points at the element ("values[2]"), not at the whole list.
type listItem struct {
	v   cty.Value
	rng hcl.Range
}

func (d *decoder) list(a *hcl.Attribute) ([]listItem, bool) {
	v, ok := d.value(a)
	if !ok {
		return nil, false
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() && !v.Type().IsSetType() {
		d.errf(a.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: a list is required.", a.Name)
		return nil, false
	}
	var exprs []hclsyntax.Expression
	if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
		exprs = t.Exprs
	}
	items := make([]listItem, 0, v.LengthInt())
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		rng := a.Expr.Range()
		if i < len(exprs) {
			rng = exprs[i].Range()
		}
		items = append(items, listItem{v: ev, rng: rng})
	}
	return items, true
}

func (d *decoder) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	if out, rngs, ok := literalStrings(a.Expr); ok {
		return out, rngs, true
	}
	items, ok := d.list(a)
	if !ok {
		return nil, nil, false
	}
	out := make([]string, 0, len(items))
	rngs := make([]hcl.Range, 0, len(items))
	good := true
	for _, it := range items {
		s, err := convert.Convert(it.v, cty.String)
		if err != nil || s.IsNull() {
			d.errf(it.rng, "Incorrect attribute value type", "Every element of %q must be a string.", a.Name)
			good = false
			continue
		}
		out = append(out, s.AsString())
		rngs = append(rngs, it.rng)
	}
	return out, rngs, good
}

func (d *decoder) strMap(a *hcl.Attribute) (map[string]string, bool) {
	v, ok := d.value(a)
	if !ok {
		return nil, false
	}
	if v, ok = d.convert(a, v, cty.Map(cty.String)); !ok {
		return nil, false
	}
	out := make(map[string]string, v.LengthInt())
	for k, e := range v.AsValueMap() {
		if e.IsNull() {
			d.errf(a.Expr.Range(), "Missing value", "Entry %q of %q must not be null.", k, a.Name)
			return nil, false
		}
		out[k] = e.AsString()
	}
	return out, true
}

// oneOf reports a value outside a fixed set, listing the allowed values.
func (d *decoder) oneOf(a *hcl.Attribute, got string, allowed ...string) bool {
	for _, s := range allowed {
		if got == s {
			return true
		}
	}
	d.errf(a.Expr.Range(), "Invalid "+a.Name, "The %s must be one of %s, not %q.", a.Name, strings.Join(quoteAll(allowed), ", "), got)
	return false
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// posString is "file:line:col" of a range, for "previously declared at" details.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
