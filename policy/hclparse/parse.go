package hclparse

import (
	"runtime"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// DefaultChunkSize is the size a large file is cut into (at top-level block boundaries)
// before parsing. hclsyntax lexes a whole file into one token slice before parsing it;
// for a file of megabytes that slice is hundreds of megabytes, regrown and copied many
// times (a third of the load time of a 4 MB policy went to that). Chunks of 256 KiB keep
// each token slice around 6 MB, cache-friendly and quick to collect, and let the chunks
// of one file parse on every core.
const DefaultChunkSize = 256 << 10

// File is one source file to parse: its name, which every range of its AST carries, and
// its contents.
type File struct {
	Name string
	Data []byte
}

// Result is the outcome of parsing one file: its top-level bodies in file order (one per
// chunk; one for a file parsed whole) and the diagnostics of parsing them. Bodies is
// empty only when hclsyntax returned no file at all.
type Result struct {
	Bodies []*hclsyntax.Body
	Diags  hcl.Diagnostics
}

// ParseConfig is hclsyntax.ParseConfig's body and diagnostics for src, a file or a piece
// of one starting at start: built by the subset parser when src is written in the plain
// subset (see fastParse), else by hclsyntax itself.
func ParseConfig(src []byte, filename string, start hcl.Pos) (*hclsyntax.Body, hcl.Diagnostics) {
	if b, ok := fastParse(src, filename, start); ok {
		return b, nil
	}
	hf, diags := hclsyntax.ParseConfig(src, filename, start)
	if hf == nil {
		return nil, diags
	}
	return hf.Body.(*hclsyntax.Body), diags // hclsyntax's files always hold its own Body
}

// ParseFiles parses every file, concurrently (files, and the chunks of large files, on
// up to GOMAXPROCS goroutines). A file of at least 2*chunkSize bytes is cut into pieces
// of about chunkSize bytes at top-level blocks; tests pass 1 to cut at every block.
// Results are in the order of files, so diagnostics and block order do not depend on
// scheduling. As with hashicorp's hclparse.Parser, a second file of the same name gets
// the first one's parse and no diagnostics.
func ParseFiles(files []File, chunkSize int) []Result {
	chunks, first, dupOf := cut(files, chunkSize)
	parseChunks(files, chunks)
	out := make([]Result, len(files))
	for i, f := range files {
		if k := dupOf[i]; k != i {
			out[i] = Result{Bodies: out[k].Bodies}
			continue
		}
		out[i] = join(f, chunks[first[i]:first[i+1]])
	}
	return out
}

// chunk is a piece of a file to parse, and once parsed its body and diagnostics.
type chunk struct {
	file int // index in the files
	span
	body  *hclsyntax.Body
	diags hcl.Diagnostics
}

// cut cuts every file into chunks (see splitTopLevel): file i's are
// chunks[first[i]:first[i+1]]. A file of a name seen before has none, and dupOf[i] is
// that first file (i itself otherwise).
func cut(files []File, chunkSize int) (chunks []chunk, first, dupOf []int) {
	first = make([]int, len(files)+1)
	dupOf = make([]int, len(files))
	byName := make(map[string]int, len(files))
	for i, f := range files {
		first[i] = len(chunks)
		dupOf[i] = i
		if k, dup := byName[f.Name]; dup {
			dupOf[i] = k
			continue
		}
		byName[f.Name] = i
		for _, s := range splitTopLevel(f.Data, chunkSize) {
			chunks = append(chunks, chunk{file: i, span: s})
		}
	}
	first[len(files)] = len(chunks)
	return chunks, first, dupOf
}

// parseChunks parses the chunks on up to GOMAXPROCS goroutines.
func parseChunks(files []File, chunks []chunk) {
	next := make(chan int, len(chunks))
	for i := range chunks {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := &chunks[i]
				f := files[c.file]
				c.body, c.diags = ParseConfig(f.Data[c.start:c.end], f.Name, c.pos)
			}
		}()
	}
	wg.Wait()
}

// join is the result of a file from its parsed chunks.
//
// A file cut into chunks is used as such only when every chunk parsed cleanly and holds
// blocks alone. Then the chunks' ASTs are exactly the whole file's: each chunk starts at
// a line that begins a top-level block and ends after a newline with every construct
// closed, where the whole-file lexer is in its initial state too, and positions are the
// file's (each chunk is parsed from its own start position). Anything else (a syntax
// error, a cut that landed inside a heredoc, top-level attributes, whose redefinition
// only a whole-file parse detects) is parsed again as one piece, so diagnostics are
// exactly those of a plain parse.
func join(f File, chunks []chunk) Result {
	if len(chunks) > 1 && !clean(chunks) {
		body, diags := ParseConfig(f.Data, f.Name, hcl.InitialPos)
		chunks = []chunk{{body: body, diags: diags}}
	}
	var r Result
	for _, c := range chunks {
		if c.body != nil {
			r.Bodies = append(r.Bodies, c.body)
		}
		r.Diags = append(r.Diags, c.diags...)
	}
	return r
}

// clean reports whether every chunk parsed without errors into blocks alone.
func clean(chunks []chunk) bool {
	for _, c := range chunks {
		if c.body == nil || c.diags.HasErrors() || len(c.body.Attributes) > 0 {
			return false
		}
	}
	return true
}

// span is a piece of a file to parse on its own, and the position of its first byte.
type span struct {
	start, end int
	pos        hcl.Pos
}

// splitTopLevel cuts src into pieces of about size bytes, each ending just before a line
// that starts (in column 1) with an identifier at brace, bracket and parenthesis depth 0,
// outside strings, comments and heredocs: the start of a top-level block. The scan is an
// approximation of the HCL lexer, not a copy of it; a wrong cut is caught because the
// piece before it fails to parse (see ParseFiles), so it only has to be right for
// well-formed files. A file smaller than 2*size is one piece.
func splitTopLevel(src []byte, size int) []span {
	if len(src) < 2*size {
		return []span{{start: 0, end: len(src), pos: hcl.InitialPos}}
	}
	var out []span
	cur := span{pos: hcl.InitialPos}
	sc := &scanner{src: src, line: 1}
	for sc.i < len(src) {
		if !sc.next() {
			continue
		}
		if i := sc.i; sc.depth == 0 && i-cur.start >= size && len(src)-i >= size && i < len(src) && isIdentStart(src[i]) {
			cur.end = i
			out = append(out, cur)
			cur = span{start: i, pos: hcl.Pos{Line: sc.line, Column: 1, Byte: i}}
		}
	}
	cur.end = len(src)
	return append(out, cur)
}

// scanner is splitTopLevel's walk through src: its offset and line, the bracket depth,
// and the closing marker while inside a heredoc.
type scanner struct {
	src     []byte
	i, line int
	depth   int
	heredoc []byte
}

// next moves past one token, or one line of a heredoc, and reports whether that was a
// newline outside heredocs and comments, after which a top-level block may start.
func (sc *scanner) next() bool {
	if sc.heredoc != nil {
		sc.heredocLine()
		return false
	}
	src, i := sc.src, sc.i
	switch c := src[i]; {
	case c == '\n':
		sc.line++
		sc.i++
		return true
	case c == '{' || c == '[' || c == '(':
		sc.depth++
		sc.i++
	case c == '}' || c == ']' || c == ')':
		sc.depth--
		sc.i++
	case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
		for sc.i < len(src) && src[sc.i] != '\n' {
			sc.i++
		}
	case c == '/' && i+1 < len(src) && src[i+1] == '*':
		sc.blockComment()
	case c == '"':
		sc.quoted()
	case c == '<' && i+2 < len(src) && src[i+1] == '<':
		sc.heredocOpener()
	default:
		sc.i++
	}
	return false
}

// blockComment moves past a /* */ comment (to the end of src when unclosed).
func (sc *scanner) blockComment() {
	src := sc.src
	sc.i += 2
	for sc.i < len(src) && !(src[sc.i] == '*' && sc.i+1 < len(src) && src[sc.i+1] == '/') {
		if src[sc.i] == '\n' {
			sc.line++
		}
		sc.i++
	}
	sc.i += 2
}

// quoted moves past a quoted string, escapes included; it cannot span lines. Template
// interpolations with nested quotes are not followed: a wrong guess only costs a
// whole-file parse.
func (sc *scanner) quoted() {
	src := sc.src
	sc.i++
	for sc.i < len(src) && src[sc.i] != '"' && src[sc.i] != '\n' {
		if src[sc.i] == '\\' {
			sc.i++
		}
		sc.i++
	}
	if sc.i < len(src) && src[sc.i] == '"' {
		sc.i++
	}
}

// heredocOpener moves past "<<MARKER" or "<<-MARKER" and its line end, entering the
// heredoc, or past the "<<" alone when it opens none (a shift, or malformed).
func (sc *scanner) heredocOpener() {
	src := sc.src
	j := sc.i + 2
	if src[j] == '-' {
		j++
	}
	k := j
	for k < len(src) && isIdentByte(src[k]) {
		k++
	}
	if k == j || k >= len(src) || (src[k] != '\n' && src[k] != '\r') {
		sc.i = j
		return
	}
	sc.heredoc = src[j:k]
	if src[k] == '\r' {
		k++
	}
	if k < len(src) {
		k++
		sc.line++
	}
	sc.i = k
}

// heredocLine moves past one line inside a heredoc: only whole lines matter, and the
// marker closes it (leading spaces allowed, for the <<- form).
func (sc *scanner) heredocLine() {
	src := sc.src
	j := sc.i
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	k := j
	for k < len(src) && src[k] != '\n' && src[k] != '\r' {
		k++
	}
	if string(src[j:k]) == string(sc.heredoc) {
		sc.heredoc = nil
	}
	if k < len(src) && src[k] == '\r' {
		k++
	}
	if k < len(src) {
		k++ // '\n'
		sc.line++
	}
	sc.i = k
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }
