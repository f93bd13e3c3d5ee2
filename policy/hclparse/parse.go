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
	type job struct {
		file       int
		start, end int
		pos        hcl.Pos
		body       *hclsyntax.Body
		diags      hcl.Diagnostics
	}
	var jobs []job
	first := make([]int, len(files)+1) // jobs[first[i]:first[i+1]] are file i's chunks
	dupOf := make([]int, len(files))   // the first file of the same name
	byName := make(map[string]int, len(files))
	for i, f := range files {
		first[i] = len(jobs)
		dupOf[i] = i
		if k, dup := byName[f.Name]; dup {
			dupOf[i] = k
			continue
		}
		byName[f.Name] = i
		for _, s := range splitTopLevel(f.Data, chunkSize) {
			jobs = append(jobs, job{file: i, start: s.start, end: s.end, pos: s.pos})
		}
	}
	first[len(files)] = len(jobs)

	run := func(j *job) {
		f := files[j.file]
		j.body, j.diags = ParseConfig(f.Data[j.start:j.end], f.Name, j.pos)
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var wg sync.WaitGroup
	next := make(chan int, len(jobs))
	for i := range jobs {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				run(&jobs[i])
			}
		}()
	}
	wg.Wait()

	out := make([]Result, len(files))
	for i, f := range files {
		if k := dupOf[i]; k != i {
			out[i] = Result{Bodies: out[k].Bodies}
			continue
		}
		js := jobs[first[i]:first[i+1]]
		if len(js) == 1 {
			out[i] = Result{Diags: js[0].diags}
			if js[0].body != nil {
				out[i].Bodies = []*hclsyntax.Body{js[0].body}
			}
			continue
		}
		// A file cut into chunks is used as such only when every chunk parsed cleanly and
		// holds blocks alone. Then the chunks' ASTs are exactly the whole file's: each
		// chunk starts at a line that begins a top-level block and ends after a newline
		// with every construct closed, where the whole-file lexer is in its initial state
		// too, and positions are the file's (each chunk is parsed from its own start
		// position). Anything else (a syntax error, a cut that landed inside a heredoc,
		// top-level attributes, whose redefinition only a whole-file parse detects) is
		// parsed again as one piece, so diagnostics are exactly those of a plain parse.
		clean := true
		for _, j := range js {
			if j.body == nil || j.diags.HasErrors() || len(j.body.Attributes) > 0 {
				clean = false
				break
			}
		}
		if !clean {
			hf, diags := hclsyntax.ParseConfig(f.Data, f.Name, hcl.InitialPos)
			out[i] = Result{Diags: diags}
			if hf != nil {
				out[i].Bodies = []*hclsyntax.Body{hf.Body.(*hclsyntax.Body)}
			}
			continue
		}
		r := Result{Bodies: make([]*hclsyntax.Body, 0, len(js))}
		for _, j := range js {
			r.Bodies = append(r.Bodies, j.body)
			r.Diags = append(r.Diags, j.diags...)
		}
		out[i] = r
	}
	return out
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
	line := 1
	depth := 0
	var heredoc []byte // the closing marker while inside a heredoc
	for i := 0; i < len(src); {
		c := src[i]
		if heredoc != nil {
			// Inside a heredoc: only whole lines matter; the marker closes it (leading
			// spaces allowed for the <<- form).
			j := i
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
				j++
			}
			k := j
			for k < len(src) && src[k] != '\n' && src[k] != '\r' {
				k++
			}
			if string(src[j:k]) == string(heredoc) {
				heredoc = nil
			}
			if k < len(src) && src[k] == '\r' {
				k++
			}
			if k < len(src) {
				k++ // '\n'
				line++
			}
			i = k
			continue
		}
		switch {
		case c == '\n':
			line++
			i++
			if depth == 0 && i-cur.start >= size && len(src)-i >= size && i < len(src) && isIdentStart(src[i]) {
				cur.end = i
				out = append(out, cur)
				cur = span{start: i, pos: hcl.Pos{Line: line, Column: 1, Byte: i}}
			}
		case c == '{' || c == '[' || c == '(':
			depth++
			i++
		case c == '}' || c == ']' || c == ')':
			depth--
			i++
		case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			i += 2
			for i < len(src) && !(src[i] == '*' && i+1 < len(src) && src[i+1] == '/') {
				if src[i] == '\n' {
					line++
				}
				i++
			}
			i += 2
		case c == '"':
			// A quoted string, escapes included; it cannot span lines. Template
			// interpolations with nested quotes are not followed: a wrong guess only
			// costs a whole-file parse.
			i++
			for i < len(src) && src[i] != '"' && src[i] != '\n' {
				if src[i] == '\\' {
					i++
				}
				i++
			}
			if i < len(src) && src[i] == '"' {
				i++
			}
		case c == '<' && i+2 < len(src) && src[i+1] == '<':
			j := i + 2
			if src[j] == '-' {
				j++
			}
			k := j
			for k < len(src) && isIdentByte(src[k]) {
				k++
			}
			if k == j || k >= len(src) || (src[k] != '\n' && src[k] != '\r') {
				i = j // not a heredoc opener (a shift, or malformed)
				continue
			}
			heredoc = src[j:k]
			if src[k] == '\r' {
				k++
			}
			if k < len(src) {
				k++
				line++
			}
			i = k
		default:
			i++
		}
	}
	cur.end = len(src)
	return append(out, cur)
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }
