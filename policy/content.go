package policy

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// bodyContent is body.Content(schema) with a fast path for the common case of an hclsyntax
// body that matches its schema exactly (every attribute and block type known, labels
// counted right, nothing required missing): it then builds the same BodyContent with
// one map and two slabs, where hclsyntax's PartialContent makes four maps, a copy of
// the body and an allocation per attribute and block (a quarter of the load time of
// 50,000 members). Anything else goes to hclsyntax, so every diagnostic is its own.
func bodyContent(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	b, ok := body.(*hclsyntax.Body)
	if !ok || !matches(b, schema) {
		return body.Content(schema)
	}
	c := &hcl.BodyContent{MissingItemRange: b.MissingItemRange()}
	if len(b.Attributes) > 0 {
		c.Attributes = make(hcl.Attributes, len(b.Attributes))
		slab := make([]hcl.Attribute, 0, len(b.Attributes))
		for _, as := range schema.Attributes { // AsHCLAttribute, without an allocation each
			if a := b.Attributes[as.Name]; a != nil {
				slab = append(slab, hcl.Attribute{Name: a.Name, Expr: a.Expr, Range: a.SrcRange, NameRange: a.NameRange})
				c.Attributes[as.Name] = &slab[len(slab)-1]
			}
		}
	} else {
		c.Attributes = hcl.Attributes{}
	}
	if len(b.Blocks) > 0 {
		c.Blocks = make(hcl.Blocks, len(b.Blocks))
		slab := make([]hcl.Block, len(b.Blocks))
		for i, blk := range b.Blocks { // AsHCLBlock
			slab[i] = hcl.Block{Type: blk.Type, Labels: blk.Labels, Body: blk.Body, DefRange: blk.DefRange(),
				TypeRange: blk.TypeRange, LabelRanges: blk.LabelRanges}
			c.Blocks[i] = &slab[i]
		}
	}
	return c, nil
}

// reusableContent is bodyContent into storage that the next call reuses: its map of
// attributes, its slabs of attributes and blocks. A draft worker decodes one service block
// at a time and keeps nothing of its content past it (the Service holds values, never the
// attributes), so it makes no map and no slab per block.
type reusableContent struct {
	c      hcl.BodyContent
	attrs  []hcl.Attribute
	blocks []hcl.Block
	ptrs   hcl.Blocks
}

func (rc *reusableContent) content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	b, ok := body.(*hclsyntax.Body)
	if !ok || !matches(b, schema) {
		return body.Content(schema)
	}
	if rc.c.Attributes == nil {
		rc.c.Attributes = make(hcl.Attributes, len(schema.Attributes))
	}
	clear(rc.c.Attributes)
	rc.c.MissingItemRange = b.MissingItemRange()
	rc.attrs = rc.attrs[:0]
	for _, as := range schema.Attributes {
		if a := b.Attributes[as.Name]; a != nil {
			rc.attrs = append(rc.attrs, hcl.Attribute{Name: a.Name, Expr: a.Expr, Range: a.SrcRange, NameRange: a.NameRange})
		}
	}
	for i := range rc.attrs { // after the appends: the slab no longer moves
		rc.c.Attributes[rc.attrs[i].Name] = &rc.attrs[i]
	}
	rc.blocks, rc.ptrs = rc.blocks[:0], rc.ptrs[:0]
	for _, blk := range b.Blocks {
		rc.blocks = append(rc.blocks, hcl.Block{Type: blk.Type, Labels: blk.Labels, Body: blk.Body, DefRange: blk.DefRange(),
			TypeRange: blk.TypeRange, LabelRanges: blk.LabelRanges})
	}
	for i := range rc.blocks {
		rc.ptrs = append(rc.ptrs, &rc.blocks[i])
	}
	rc.c.Blocks = rc.ptrs
	return &rc.c, nil
}

// matches reports whether Content would find nothing to complain about.
func matches(b *hclsyntax.Body, schema *hcl.BodySchema) bool {
	known := 0
	for _, as := range schema.Attributes {
		if _, ok := b.Attributes[as.Name]; ok {
			known++
		} else if as.Required {
			return false
		}
	}
	if known != len(b.Attributes) {
		return false
	}
	for _, blk := range b.Blocks {
		ok := false
		for _, bs := range schema.Blocks {
			if bs.Type == blk.Type {
				ok = len(blk.Labels) == len(bs.LabelNames)
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// literalString returns the value of a quoted string without template sequences ("eu"),
// which is exactly what evaluating the template would return, without building it.
func literalString(e hcl.Expression) (cty.Value, bool) {
	t, ok := e.(*hclsyntax.TemplateExpr)
	if !ok || len(t.Parts) != 1 {
		return cty.NilVal, false
	}
	l, ok := t.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok || l.Val.Type() != cty.String || !l.Val.IsKnown() || l.Val.IsNull() || l.Val.IsMarked() {
		return cty.NilVal, false
	}
	return l.Val, true
}

// literalStrings returns the elements of a non-empty list of literal strings
// (["a", "b"]) and their ranges, as strList would, without building the cty tuple.
func literalStrings(e hcl.Expression) ([]string, []hcl.Range, bool) {
	t, ok := e.(*hclsyntax.TupleConsExpr)
	if !ok || len(t.Exprs) == 0 {
		return nil, nil, false
	}
	out := make([]string, len(t.Exprs))
	rngs := make([]hcl.Range, len(t.Exprs))
	for i, x := range t.Exprs {
		v, ok := literalString(x)
		if !ok {
			return nil, nil, false
		}
		out[i], rngs[i] = v.AsString(), x.Range()
	}
	return out, rngs, true
}
