package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/glbdns/glbdns/api"
)

// This file turns API objects into HCL documents (one multi-line pool or service block,
// written with hclwrite so that every string is escaped, "${" included) and back, and maps
// source ranges of a generated document to JSON field paths ("members[1].address") so that
// a policy diagnostic can name the field at fault.

// header is the first line of every managed document.
const header = "# Managed by the glbdns admin API: edits here are kept, but the API overwrites them.\n"

func str(b *hclwrite.Body, name, v string) {
	if v != "" {
		b.SetAttributeValue(name, cty.StringVal(v))
	}
}

func num(b *hclwrite.Body, name string, v *int) {
	if v != nil {
		b.SetAttributeValue(name, cty.NumberIntVal(int64(*v)))
	}
}

func boolean(b *hclwrite.Body, name string, v *bool) {
	if v != nil {
		b.SetAttributeValue(name, cty.BoolVal(*v))
	}
}

func strList(vs []string) cty.Value {
	if len(vs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	out := make([]cty.Value, len(vs))
	for i, v := range vs {
		out[i] = cty.StringVal(v)
	}
	return cty.TupleVal(out)
}

func numList(vs []int64) cty.Value {
	if len(vs) == 0 {
		return cty.ListValEmpty(cty.Number)
	}
	out := make([]cty.Value, len(vs))
	for i, v := range vs {
		out[i] = cty.NumberIntVal(v)
	}
	return cty.TupleVal(out)
}

// encodePool writes p (normalised) as one pool block.
func encodePool(p api.Pool) []byte {
	f := hclwrite.NewEmptyFile()
	b := f.Body().AppendNewBlock("pool", []string{p.Name}).Body()
	str(b, "region", p.Region)
	if p.Location != nil {
		ls := make([]cty.Value, len(p.Location))
		for i, l := range p.Location {
			ls[i] = cty.NumberFloatVal(l)
		}
		if len(ls) == 0 {
			b.SetAttributeValue("location", cty.EmptyTupleVal)
		} else {
			b.SetAttributeValue("location", cty.TupleVal(ls))
		}
	}
	if p.Bias != nil {
		b.SetAttributeValue("bias", cty.NumberFloatVal(*p.Bias))
	}
	str(b, "method", p.Method)
	if p.MinHealthy != "" {
		if n, ok := p.MinHealthy.Count(); ok {
			b.SetAttributeValue("min_healthy", cty.NumberIntVal(int64(n)))
		} else {
			b.SetAttributeValue("min_healthy", cty.StringVal(string(p.MinHealthy)))
		}
	}
	str(b, "unknown_is", p.UnknownIs)
	num(b, "port", p.Port)
	for _, m := range p.Members {
		mb := b.AppendNewBlock("member", []string{m.Name}).Body()
		str(mb, "address", m.Address)
		str(mb, "host", m.Host)
		num(mb, "weight", m.Weight)
		num(mb, "port", m.Port)
	}
	for _, c := range p.Checks {
		cb := b.AppendNewBlock("check", []string{c.Name}).Body()
		str(cb, "type", c.Type)
		num(cb, "port", c.Port)
		str(cb, "interval", c.Interval)
		str(cb, "timeout", c.Timeout)
		num(cb, "rise", c.Rise)
		num(cb, "fall", c.Fall)
		str(cb, "method", c.Method)
		str(cb, "path", c.Path)
		str(cb, "host", c.Host)
		if len(c.Headers) > 0 {
			hs := make(map[string]cty.Value, len(c.Headers))
			for k, v := range c.Headers {
				hs[k] = cty.StringVal(v)
			}
			cb.SetAttributeValue("headers", cty.MapVal(hs))
		}
		if c.ExpectStatus != nil {
			cb.SetAttributeValue("expect_status", strList(c.ExpectStatus))
		}
		str(cb, "expect_body", c.ExpectBody)
		str(cb, "expect_body_regexp", c.ExpectBodyRegexp)
		str(cb, "server_name", c.ServerName)
		boolean(cb, "insecure", c.Insecure)
		boolean(cb, "follow_redirects", c.FollowRedirects)
		str(cb, "send", c.Send)
		str(cb, "expect", c.Expect)
		str(cb, "qname", c.QName)
		str(cb, "qtype", c.QType)
		str(cb, "expect_rcode", c.ExpectRcode)
		str(cb, "expect_answer", c.ExpectAnswer)
	}
	if l := p.Load; l != nil {
		lb := b.AppendNewBlock("load", nil).Body()
		str(lb, "type", l.Type)
		str(lb, "metric", l.Metric)
		if len(l.Labels) > 0 {
			ls := make(map[string]cty.Value, len(l.Labels))
			for k, v := range l.Labels {
				ls[k] = cty.StringVal(v)
			}
			lb.SetAttributeValue("labels", cty.MapVal(ls))
		}
		str(lb, "field", l.Field)
		num(lb, "port", l.Port)
		str(lb, "path", l.Path)
		str(lb, "scheme", l.Scheme)
		str(lb, "interval", l.Interval)
		str(lb, "timeout", l.Timeout)
	}
	if cs := p.ColdStart; cs != nil {
		cb := b.AppendNewBlock("cold_start", nil).Body()
		str(cb, "timeout", cs.Timeout)
		str(cb, "idle_after", cs.IdleAfter)
		str(cb, "idle_interval", cs.IdleInterval)
	}
	return append([]byte(header), f.Bytes()...)
}

// encodeService writes s (normalised) as one service block.
func encodeService(s api.Service) []byte {
	f := hclwrite.NewEmptyFile()
	b := f.Body().AppendNewBlock("service", []string{s.Name}).Body()
	str(b, "policy", s.Policy)
	str(b, "method", s.Method)
	b.SetAttributeValue("pools", strList(s.Pools))
	num(b, "ttl", s.TTL)
	num(b, "answers", s.Answers)
	str(b, "when_all_down", s.WhenAllDown)
	str(b, "fallback", s.Fallback)
	num(b, "hash_prefix_v4", s.HashPrefixV4)
	num(b, "hash_prefix_v6", s.HashPrefixV6)
	if s.Geo != nil {
		gb := b.AppendNewBlock("geo", nil).Body()
		if s.Geo.DefaultPools != nil {
			gb.SetAttributeValue("default_pools", strList(s.Geo.DefaultPools))
		}
		for _, r := range s.Geo.Rules {
			rb := gb.AppendNewBlock("rule", nil).Body()
			if r.Networks != nil {
				rb.SetAttributeValue("networks", strList(r.Networks))
			}
			if r.ASNs != nil {
				rb.SetAttributeValue("asns", numList(r.ASNs))
			}
			if r.Countries != nil {
				rb.SetAttributeValue("countries", strList(r.Countries))
			}
			if r.Continents != nil {
				rb.SetAttributeValue("continents", strList(r.Continents))
			}
			rb.SetAttributeValue("pools", strList(r.Pools))
		}
	}
	return append([]byte(header), f.Bytes()...)
}

// decodeDoc reads a managed document back into its JSON form: exactly one pool or service
// block, attributes as JSON values, member and check blocks as arrays of objects with the
// label as "name", a pool's load block and a service's geo block as objects. It returns
// the block type ("pool" or "service").
func decodeDoc(name string, src []byte) (kind string, obj json.RawMessage, err error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return "", nil, diags
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) != 1 || len(body.Attributes) != 0 {
		return "", nil, fmt.Errorf("%s: a managed document holds exactly one pool or service block", name)
	}
	blk := body.Blocks[0]
	if (blk.Type != "pool" && blk.Type != "service") || len(blk.Labels) != 1 {
		return "", nil, fmt.Errorf("%s: a managed document holds exactly one pool or service block", name)
	}
	m, err := blockJSON(blk)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	if blk.Type == "pool" {
		m["members"] = []any{}
		m["checks"] = []any{}
	}
	for _, sub := range blk.Body.Blocks {
		if blk.Type == "service" && sub.Type == "geo" {
			if _, dup := m["geo"]; dup || len(sub.Labels) != 0 {
				return "", nil, fmt.Errorf("%s: unexpected geo block", name)
			}
			g, err := geoJSON(sub)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %w", name, err)
			}
			m["geo"] = g
			continue
		}
		if blk.Type == "pool" && (sub.Type == "load" || sub.Type == "cold_start") {
			if _, dup := m[sub.Type]; dup || len(sub.Labels) != 0 || len(sub.Body.Blocks) != 0 {
				return "", nil, fmt.Errorf("%s: unexpected %s block", name, sub.Type)
			}
			l, err := attrsJSON(sub.Body)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %w", name, err)
			}
			m[sub.Type] = l
			continue
		}
		key := map[string]string{"member": "members", "check": "checks"}[sub.Type]
		if blk.Type != "pool" || key == "" || len(sub.Labels) != 1 {
			return "", nil, fmt.Errorf("%s: unexpected %s block", name, sub.Type)
		}
		if len(sub.Body.Blocks) > 0 {
			return "", nil, fmt.Errorf("%s: nested blocks in %s %q are not supported in managed documents", name, sub.Type, sub.Labels[0])
		}
		sm, err := blockJSON(sub)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", name, err)
		}
		m[key] = append(m[key].([]any), sm)
	}
	raw, err := json.Marshal(m)
	return blk.Type, raw, err
}

// geoJSON turns a service's geo block into its JSON object: default_pools and rules.
func geoJSON(blk *hclsyntax.Block) (map[string]any, error) {
	m, err := attrsJSON(blk.Body)
	if err != nil {
		return nil, err
	}
	rules := []any{}
	for _, rb := range blk.Body.Blocks {
		if rb.Type != "rule" || len(rb.Labels) != 0 || len(rb.Body.Blocks) != 0 {
			return nil, fmt.Errorf("unexpected %s block in the geo block", rb.Type)
		}
		r, err := attrsJSON(rb.Body)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	m["rules"] = rules
	return m, nil
}

// blockJSON turns a block's label and attributes into a JSON object.
func blockJSON(blk *hclsyntax.Block) (map[string]any, error) {
	m, err := attrsJSON(blk.Body)
	if err != nil {
		return nil, err
	}
	m["name"] = blk.Labels[0]
	return m, nil
}

// attrsJSON turns a body's attributes into a JSON object.
func attrsJSON(body *hclsyntax.Body) (map[string]any, error) {
	m := map[string]any{}
	for n, a := range body.Attributes {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", n, err)
		}
		m[n] = json.RawMessage(b)
	}
	return m, nil
}

// decodePool decodes a managed pool document; unknown attributes are refused.
func decodePool(raw json.RawMessage) (api.Pool, error) {
	var p api.Pool
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return api.Pool{}, err
	}
	return p, nil
}

// decodeService decodes a managed service document; unknown attributes are refused.
func decodeService(raw json.RawMessage) (api.Service, error) {
	var s api.Service
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return api.Service{}, err
	}
	return s, nil
}

// span is a source range of a generated document and the JSON path it came from.
type span struct {
	rng  hcl.Range
	path string
}

// fieldSpans parses a generated document and lists the range of every block, label,
// attribute and list element with its JSON path.
func fieldSpans(name string, src []byte) []span {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil
	}
	var out []span
	attrs := func(prefix string, b *hclsyntax.Body) {
		for n, a := range b.Attributes {
			p := prefix + n
			out = append(out, span{a.SrcRange, p})
			if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
				for i, e := range t.Exprs {
					out = append(out, span{e.Range(), p + "[" + strconv.Itoa(i) + "]"})
				}
			}
		}
	}
	for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
		if len(blk.LabelRanges) > 0 {
			out = append(out, span{blk.LabelRanges[0], "name"})
		}
		attrs("", blk.Body)
		idx := map[string]int{}
		for _, sub := range blk.Body.Blocks {
			if sub.Type == "geo" {
				out = append(out, span{sub.Range(), "geo"})
				attrs("geo.", sub.Body)
				for i, rb := range sub.Body.Blocks {
					p := "geo.rules[" + strconv.Itoa(i) + "]"
					out = append(out, span{rb.Range(), p})
					attrs(p+".", rb.Body)
				}
				continue
			}
			if sub.Type == "load" || sub.Type == "cold_start" {
				out = append(out, span{sub.Range(), sub.Type})
				attrs(sub.Type+".", sub.Body)
				continue
			}
			key := map[string]string{"member": "members", "check": "checks"}[sub.Type]
			p := key + "[" + strconv.Itoa(idx[sub.Type]) + "]"
			idx[sub.Type]++
			out = append(out, span{sub.Range(), p})
			if len(sub.LabelRanges) > 0 {
				out = append(out, span{sub.LabelRanges[0], p + ".name"})
			}
			attrs(p+".", sub.Body)
		}
	}
	return out
}

// fieldOf returns the JSON path of the smallest span holding the subject ("" if none).
func fieldOf(spans []span, subj *hcl.Range) string {
	if subj == nil {
		return ""
	}
	best, size := "", -1
	for _, s := range spans {
		if s.rng.Start.Byte <= subj.Start.Byte && subj.End.Byte <= s.rng.End.Byte {
			if n := s.rng.End.Byte - s.rng.Start.Byte; size < 0 || n < size {
				best, size = s.path, n
			}
		}
	}
	return best
}
