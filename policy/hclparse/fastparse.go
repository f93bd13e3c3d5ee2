package hclparse

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// fastParse parses src, a file or a piece of one starting at start, when it is written in
// the plain subset of HCL that generated and hand-written policies mostly use, and
// returns the same hclsyntax AST that hclsyntax.ParseConfig builds for it (same nodes,
// values and ranges, the top-level body's included). It reports false, and the caller
// uses hclsyntax.ParseConfig, for anything else.
//
// Why: hclsyntax lexes a file into a slice of 96-byte tokens before parsing, regrowing
// it as it goes; for a policy of 50,000 members that is about 600 MB allocated and
// two-thirds of the load time. The subset needs no token slice at all.
//
// The subset: ASCII only, LF line ends; blocks with quoted labels whose "{" ends its line
// and whose "}" stands on a line of its own; attributes (one a line, no duplicates)
// whose value is a quoted string without escapes or template sequences, a whole number,
// true, false, or a one-line list of those; whole-line # and // comments between items.
// TestFastParseSame and FuzzFastParseSame check the ASTs against hclsyntax's.
func fastParse(src []byte, filename string, start hcl.Pos) (*hclsyntax.Body, bool) {
	p := &fastParser{src: src, name: filename, line: start.Line, col: start.Column, base: start.Byte}
	for _, c := range src {
		if c >= 0x80 || c == '\r' {
			return nil, false // grapheme columns and CRLF are hclsyntax's business
		}
	}
	p.spaces() // hclsyntax's top-level body starts at its first token, after any blanks
	startPos := p.pos()
	b := p.body(true)
	if b == nil {
		return nil, false
	}
	end := p.pos()
	b.SrcRange = hcl.Range{Filename: filename, Start: startPos, End: end}
	b.EndRange = hcl.Range{Filename: filename, Start: end, End: end}
	return b, true
}

type fastParser struct {
	src  []byte
	name string
	i    int // offset in src
	line int // position of src[i]
	col  int
	base int // file offset of src[0]

	// Slabs: nodes are handed out of slices allocated a batch at a time, so that a large
	// policy costs a few hundred allocations instead of millions.
	blocks slab[hclsyntax.Block]
	bodies slab[hclsyntax.Body]
	attrs  slab[hclsyntax.Attribute]
	tmpls  slab[hclsyntax.TemplateExpr]
	lits   slab[hclsyntax.LiteralValueExpr]

	// names interns identifiers ("member", "address": a handful of distinct strings
	// repeated for every block) and nums the values of number literals ("1", "30"):
	// cty values are immutable, so equal literals can share one.
	names map[string]string
	nums  map[string]cty.Value
}

// slab hands out values of T from arrays allocated a batch at a time. The first batch
// is minSlab values and each next one twice the last, up to maxSlab: a document of a few
// blocks (one managed pool or service) then costs some 3 KiB of nodes, where batches of
// 256 from the start cost 217 KiB (4 GB for the 20,000 documents of 10,000 managed pools
// and services, all of it live as long as any node of the document is), and a large
// file still costs one allocation per 256 nodes.
type slab[T any] struct {
	free []T
	next int // the size of the next batch
}

const (
	minSlab = 4
	maxSlab = 256
)

func (s *slab[T]) take() *T {
	if len(s.free) == 0 {
		s.next = min(max(2*s.next, minSlab), maxSlab)
		s.free = make([]T, s.next)
	}
	t := &s.free[0]
	s.free = s.free[1:]
	return t
}

func (p *fastParser) pos() hcl.Pos {
	return hcl.Pos{Line: p.line, Column: p.col, Byte: p.base + p.i}
}

// rng returns the range of the next n bytes (on the current line) and moves past them.
func (p *fastParser) rng(n int) hcl.Range {
	s := p.pos()
	p.i += n
	p.col += n
	return hcl.Range{Filename: p.name, Start: s, End: p.pos()}
}

func (p *fastParser) spaces() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
		p.col++
	}
}

// newline consumes the "\n" that must end an item; at the top level EOF does too.
func (p *fastParser) newline(top bool) bool {
	p.spaces()
	if p.i == len(p.src) {
		return top
	}
	if p.src[p.i] != '\n' {
		return false
	}
	p.i++
	p.line++
	p.col = 1
	return true
}

func (p *fastParser) peek() byte {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return 0
}

// body parses items up to EOF (top) or up to and including the closing "}".
func (p *fastParser) body(top bool) *hclsyntax.Body {
	b := p.bodies.take()
	b.Attributes = hclsyntax.Attributes{}
	b.Blocks = hclsyntax.Blocks{}
	for {
		p.spaces()
		if p.i == len(p.src) {
			if top {
				return b
			}
			return nil
		}
		switch c := p.src[p.i]; {
		case c == '\n':
			p.newline(top)
		case c == '#' || c == '/' && p.i+1 < len(p.src) && p.src[p.i+1] == '/':
			// A whole-line comment: hclsyntax's peeker skips it, newline included.
			for p.i < len(p.src) && p.src[p.i] != '\n' {
				p.i++
			}
			if p.i == len(p.src) {
				return nil
			}
			p.col = 0 // the newline below sets it to 1
			p.newline(top)
		case c == '}' && !top:
			return b
		case isIdentStart(c):
			if !p.item(b) {
				return nil
			}
		default:
			return nil
		}
	}
}

func (p *fastParser) ident() (string, hcl.Range) {
	j := p.i
	for j < len(p.src) && isIdentByte(p.src[j]) {
		j++
	}
	s, ok := p.names[string(p.src[p.i:j])]
	if !ok {
		if p.names == nil {
			p.names = map[string]string{}
		}
		s = string(p.src[p.i:j])
		p.names[s] = s
	}
	return s, p.rng(j - p.i)
}

// item parses one attribute or block of b, with the newline after it.
func (p *fastParser) item(b *hclsyntax.Body) bool {
	name, nameRng := p.ident()
	p.spaces()
	switch p.peek() {
	case '=':
		if _, dup := b.Attributes[name]; dup {
			return false // "Attribute redefined" is hclsyntax's to report
		}
		eq := p.rng(1)
		p.spaces()
		expr, exprRng, ok := p.expr(true)
		if !ok || !p.newline(true) {
			return false
		}
		a := p.attrs.take()
		*a = hclsyntax.Attribute{Name: name, Expr: expr, SrcRange: hcl.RangeBetween(nameRng, exprRng),
			NameRange: nameRng, EqualsRange: eq}
		b.Attributes[name] = a
		return true
	case '"', '{':
		blk := p.blocks.take()
		blk.Type, blk.TypeRange = name, nameRng
		for p.peek() == '"' {
			s, open, _, cl, ok := p.quoted()
			if !ok {
				return false
			}
			blk.Labels = append(blk.Labels, s)
			blk.LabelRanges = append(blk.LabelRanges, hcl.RangeBetween(open, cl))
			p.spaces()
		}
		if p.peek() != '{' {
			return false
		}
		blk.OpenBraceRange = p.rng(1)
		if !p.newline(false) {
			return false // one-line blocks: hclsyntax's
		}
		body := p.body(false)
		if body == nil {
			return false
		}
		blk.CloseBraceRange = p.rng(1)
		body.SrcRange = hcl.RangeBetween(blk.OpenBraceRange, blk.CloseBraceRange)
		end := blk.CloseBraceRange.End
		body.EndRange = hcl.Range{Filename: p.name, Start: end, End: end}
		blk.Body = body
		if !p.newline(true) {
			return false
		}
		b.Blocks = append(b.Blocks, blk)
		return true
	}
	return false
}

// quoted parses a quoted string without escapes or template sequences, returning its
// value and the ranges of the opening quote, the literal and the closing quote.
func (p *fastParser) quoted() (s string, open, lit, cl hcl.Range, ok bool) {
	j := p.i + 1
	for j < len(p.src) {
		c := p.src[j]
		if c == '"' {
			break
		}
		if c < 0x20 || c == 0x7f || c == '\\' || c == '$' || c == '%' {
			return "", open, lit, cl, false
		}
		j++
	}
	if j == len(p.src) || j == p.i+1 {
		return "", open, lit, cl, false // unterminated, or "" (a template of no parts)
	}
	s = string(p.src[p.i+1 : j])
	open = p.rng(1)
	lit = p.rng(j - p.i)
	cl = p.rng(1)
	return s, open, lit, cl, true
}

// expr parses a value of the subset; a list only when list is true (lists do not nest).
// After it only spaces and then a newline, "," or "]" may follow.
func (p *fastParser) expr(list bool) (hclsyntax.Expression, hcl.Range, bool) {
	var e hclsyntax.Expression
	var r hcl.Range
	var ok bool
	switch c := p.peek(); {
	case c == '"':
		e, r, ok = p.stringExpr()
	case c >= '0' && c <= '9':
		e, r, ok = p.numberExpr()
	case c == 't' || c == 'f':
		e, r, ok = p.boolExpr()
	case c == '[' && list:
		e, r, ok = p.listExpr()
	}
	if !ok {
		return nil, r, false
	}
	// Anything but the end of the value (an operator, a traversal, a comment) is left to
	// hclsyntax.
	j := p.i
	for j < len(p.src) && (p.src[j] == ' ' || p.src[j] == '\t') {
		j++
	}
	if j < len(p.src) {
		switch p.src[j] {
		case '\n', ',', ']':
		default:
			return nil, r, false
		}
	}
	return e, r, true
}

// stringExpr parses a quoted string into the template of one literal hclsyntax makes.
func (p *fastParser) stringExpr() (hclsyntax.Expression, hcl.Range, bool) {
	s, open, lit, cl, ok := p.quoted()
	if !ok {
		return nil, hcl.Range{}, false
	}
	l := p.lits.take()
	*l = hclsyntax.LiteralValueExpr{Val: cty.StringVal(s), SrcRange: lit}
	t := p.tmpls.take()
	r := hcl.RangeBetween(open, cl)
	*t = hclsyntax.TemplateExpr{Parts: []hclsyntax.Expression{l}, SrcRange: r}
	return t, r, true
}

// numberExpr parses a whole number; fractions and exponents are hclsyntax's.
func (p *fastParser) numberExpr() (hclsyntax.Expression, hcl.Range, bool) {
	j := p.i
	for j < len(p.src) && p.src[j] >= '0' && p.src[j] <= '9' {
		j++
	}
	if j < len(p.src) && (isIdentByte(p.src[j]) || p.src[j] == '.') {
		return nil, hcl.Range{}, false
	}
	v, ok := p.nums[string(p.src[p.i:j])]
	if !ok {
		var err error
		if v, err = cty.ParseNumberVal(string(p.src[p.i:j])); err != nil {
			return nil, hcl.Range{}, false
		}
		if p.nums == nil {
			p.nums = map[string]cty.Value{}
		}
		p.nums[string(p.src[p.i:j])] = v
	}
	l := p.lits.take()
	r := p.rng(j - p.i)
	*l = hclsyntax.LiteralValueExpr{Val: v, SrcRange: r}
	return l, r, true
}

// boolExpr parses true or false; any other identifier is a variable reference, an
// error hclsyntax words.
func (p *fastParser) boolExpr() (hclsyntax.Expression, hcl.Range, bool) {
	name, r := p.ident()
	var v cty.Value
	switch name {
	case "true":
		v = cty.True
	case "false":
		v = cty.False
	default:
		return nil, r, false
	}
	l := p.lits.take()
	*l = hclsyntax.LiteralValueExpr{Val: v, SrcRange: r}
	return l, r, true
}

// listExpr parses a non-empty one-line list of values, a trailing comma allowed.
func (p *fastParser) listExpr() (hclsyntax.Expression, hcl.Range, bool) {
	open := p.rng(1)
	var exprs []hclsyntax.Expression
	for {
		p.spaces()
		if p.peek() == ']' {
			break
		}
		x, _, ok := p.expr(false)
		if !ok {
			return nil, hcl.Range{}, false
		}
		exprs = append(exprs, x)
		p.spaces()
		if p.peek() == ',' {
			p.rng(1)
			continue
		}
		if p.peek() != ']' {
			return nil, hcl.Range{}, false
		}
	}
	if len(exprs) == 0 {
		return nil, hcl.Range{}, false
	}
	r := hcl.RangeBetween(open, p.rng(1))
	return &hclsyntax.TupleConsExpr{Exprs: exprs, SrcRange: r, OpenRange: open}, r, true
}
