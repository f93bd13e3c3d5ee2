package zones

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// MaxFileErrors is the number of errors an import reports; more are counted (FileErrors
// says how many were left out). A hundred is more than anyone reads, and bounds the
// memory and log volume of a file that is garbage from its first line.
const MaxFileErrors = 100

// MaxIncludeDepth bounds nested $INCLUDE: a file included by the zone file is at depth 1.
// Seven is miekg/dns's own bound for its parser; it stops include cycles long before they
// cost anything, and no real zone nests that deep.
const MaxIncludeDepth = 7

// ErrInclude: an $INCLUDE that is not allowed (no include root, a path outside it, too
// deep, a cycle) or cannot be read.
var ErrInclude = errors.New("include refused")

// FileError is one error of a zone file, at the record (or directive) that caused it.
// Line is the record's first line, Col the column the parser stopped at (0 when the
// error is about a whole record, as a refused insert is).
type FileError struct {
	File      string
	Line, Col int
	Err       error
}

func (e *FileError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// FileErrors is every error of an import, in file order (at most MaxFileErrors of them;
// Omitted counts the rest).
type FileErrors struct {
	Errs    []*FileError
	Omitted int
}

func (e *FileErrors) Error() string {
	var b strings.Builder
	for i, fe := range e.Errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "; and %d more errors", e.Omitted)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As every error of the file.
func (e *FileErrors) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		out[i] = fe
	}
	return out
}

// Pos is where a record was read from: a zone file and the record's first line.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// ImportOptions are the settings of Import.
type ImportOptions struct {
	// DefaultTTL is the TTL of records without one before the first $TTL or explicit TTL.
	DefaultTTL uint32
	// IncludeRoot allows $INCLUDE of files inside this directory (after cleaning and
	// resolving symlinks); "" refuses every $INCLUDE.
	IncludeRoot string
	// ReadFile reads an included file; nil means os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

// Included is a file read through $INCLUDE: the path as resolved (relative to the
// including file's directory, cleaned) and the contents that were imported.
type Included struct {
	Path string
	Data []byte
}

// ImportFile is Import of everything r holds, without $INCLUDE, with defaultTTL.
func (z *Zone) ImportFile(r io.Reader, filename string, defaultTTL uint32) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("import zone %s: %w", z.origin, err)
	}
	_, err = z.Import(data, filename, ImportOptions{DefaultTTL: defaultTTL})
	return err
}

// Import reads an RFC 1035 master file into the zone. Each record is parsed with miekg's
// ZoneParser on its own (the file is cut into records first: parentheses, quotes and
// comments respected), so that one bad record does not hide the next: every error of the
// file is returned, as *FileErrors, each at its file and line (and column for syntax
// errors). $ORIGIN starts as the zone origin, records without a TTL get
// opt.DefaultTTL until a $TTL or an explicit TTL (RFC 1035 section 5.1, as miekg does),
// a line starting with a blank repeats the previous owner, and $GENERATE is miekg's.
//
// $INCLUDE file [origin] (RFC 1035 section 5.1) reads a file relative to the directory
// of the including file, only when opt.IncludeRoot is set and the file, cleaned and with
// its symlinks resolved, lies inside that root; at most MaxIncludeDepth deep, and never a
// file that is including itself. The origin inside is the directive's, else the
// including file's; $ORIGIN and $TTL inside an included file end with it. The files
// included are returned (also on error), so that the caller can hash and watch them.
//
// Apex data in the file: an SOA replaces the zone's SOA (the file is then the source of
// truth for serial and negative TTL); NS records extend the apex NS set given to New
// (identical ones are dropped), so policy-declared name servers and the file's add up.
// Every record goes through Insert, so records outside the zone, CNAME conflicts and the
// other rules of Insert refuse the file. On any error the zone holds part of the file
// and must be discarded (the policy package builds a fresh zone on every load).
//
// The positions of CNAME and DS records are kept (RecordPos), for the checks that the
// policy makes once every zone is built (Set.CheckCNAMEs, Zone.CheckDS).
func (z *Zone) Import(data []byte, filename string, opt ImportOptions) ([]Included, error) {
	im := &importer{z: z, opt: opt, errs: &FileErrors{}}
	if im.opt.ReadFile == nil {
		im.opt.ReadFile = os.ReadFile
	}
	if opt.IncludeRoot != "" {
		root, err := filepath.EvalSymlinks(opt.IncludeRoot)
		if err == nil {
			root, err = filepath.Abs(root)
		}
		if err != nil {
			return nil, fmt.Errorf("import zone %s: include root: %w", z.origin, err)
		}
		im.root = root
		im.rootAsGiven, _ = filepath.Abs(filepath.Clean(opt.IncludeRoot))
	}
	if n := countLines(data); n > 1024 {
		// Size the name map for the file once, instead of regrowing it (and rehashing
		// every name) about twenty times on the way to a million names.
		nodes := make(map[string]*node, len(z.nodes)+n)
		for k, v := range z.nodes {
			nodes[k] = v
		}
		z.nodes = nodes
	}
	im.file(data, filename, z.origin, 0, []string{filepath.Clean(filename)})
	if len(im.errs.Errs) > 0 {
		return im.included, im.errs
	}
	return im.included, nil
}

// RecordPos returns where the zone's CNAME or DS record at the lower-case, fully
// qualified name was read from, when it came from a zone file.
func (z *Zone) RecordPos(name string, typ uint16) (Pos, bool) {
	p, ok := z.pos[posKey{name, typ}]
	return p, ok
}

type posKey struct {
	name string
	typ  uint16
}

// importer is one Import: the options, the files included so far and the errors.
type importer struct {
	z    *Zone
	opt  ImportOptions
	root string // the include root, absolute with its symlinks resolved
	// rootAsGiven is the root, absolute and clean: a path below it is inside, lexically,
	// before its symlinks are resolved (and compared with root).
	rootAsGiven string
	included    []Included
	errs        *FileErrors
}

func (im *importer) errorf(file string, line, col int, err error) {
	if len(im.errs.Errs) >= MaxFileErrors {
		im.errs.Omitted++
		return
	}
	im.errs.Errs = append(im.errs.Errs, &FileError{File: file, Line: line, Col: col, Err: err})
}

// file imports one file's data: origin is its starting $ORIGIN, depth its include
// depth, stack the files including it (cleaned paths), itself last.
//
// Records are parsed in runs: the records between two directives go to one ZoneParser,
// its k-th record being the run's k-th entry (so its line is known); after a syntax
// error a new parser starts at the next entry, with the owner, TTL and origin in force
// there. A clean file is parsed as miekg parses it, one parser per run.
func (im *importer) file(data []byte, filename, origin string, depth int, stack []string) {
	st := parseState{origin: origin, ttl: im.opt.DefaultTTL}
	var run []entry
	flush := func() {
		if len(run) > 0 {
			im.run(data, filename, run, &st)
			run = run[:0]
		}
	}
	for e := range entries(data) {
		if data[e.start] != '$' {
			run = append(run, e)
			continue
		}
		flush()
		text := string(data[e.start:e.end])
		if strings.HasPrefix(strings.ToUpper(text), "$GENERATE") {
			run = append(run, e)
			flush() // alone: it yields many records
			continue
		}
		im.directive(text, e.line, filename, &st, depth, stack)
	}
	flush()
}

// parseState is what a file's directives and records have set so far.
type parseState struct {
	origin string
	ttl    uint32
	ttlSet bool   // by $TTL, which explicit TTLs do not change
	prev   string // the previous owner, for lines starting with a blank
}

// run parses and inserts a run of record entries of data (see file).
func (im *importer) run(data []byte, filename string, run []entry, st *parseState) {
	end := run[len(run)-1].end
	for pos := 0; pos < len(run); {
		e := run[pos]
		var prefix strings.Builder
		prefixLines, shift := 0, 0
		if st.ttlSet {
			fmt.Fprintf(&prefix, "$TTL %d\n", st.ttl)
			prefixLines = 1
		}
		if c := data[e.start]; c == ' ' || c == '\t' {
			if st.prev == "" {
				im.errorf(filename, e.line, 1, errors.New("no previous owner name for a line that starts with a blank"))
				pos++
				continue
			}
			prefix.WriteString(st.prev)
			shift = len(st.prev)
		}
		var r io.Reader = bytes.NewReader(data[e.start:end])
		if prefix.Len() > 0 {
			r = io.MultiReader(strings.NewReader(prefix.String()), r)
		}
		zp := dns.NewZoneParser(r, st.origin, "")
		zp.SetDefaultTTL(st.ttl)
		zp.SetIncludeAllowed(false)
		k := pos
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			line := run[min(k, len(run)-1)].line
			k++
			h := rr.Header()
			if !st.ttlSet {
				st.ttl = h.Ttl // RFC 1035 section 5.1: an omitted TTL is the last one given
			}
			st.prev = h.Name
			name := lower(dns.Fqdn(h.Name))
			rrtype := h.Rrtype
			if err := im.z.insert(rr, true); err != nil {
				im.errorf(filename, line, 0, err)
				continue
			}
			if rrtype == dns.TypeCNAME || rrtype == dns.TypeDS {
				if im.z.pos == nil {
					im.z.pos = map[posKey]Pos{}
				}
				im.z.pos[posKey{name, rrtype}] = Pos{File: filename, Line: line}
			}
		}
		err := zp.Err()
		if err == nil {
			return
		}
		l, col, msg := parsePos(err)
		l -= prefixLines
		if l == 1 {
			col -= shift
		}
		line := e.line + max(l, 1) - 1
		im.errorf(filename, line, max(col, 1), errors.New(msg))
		// Resume after the entry holding the error: the last one starting at or before it.
		// Its owner is the previous one for the next entry, as if it had parsed.
		j := max(k, pos)
		for j+1 < len(run) && run[j+1].line <= line {
			j++
		}
		if j < len(run) {
			if owner := ownerOf(data[run[j].start:run[j].end], st.origin); owner != "" {
				st.prev = owner
			}
		}
		pos = j + 1
	}
}

// directive handles $ORIGIN, $TTL and $INCLUDE; others ($GENERATE, unknown ones) are left
// to the record parser.
func (im *importer) directive(text string, line int, filename string, st *parseState, depth int, stack []string) {
	f := fieldsOf(text)
	bad := func(format string, args ...any) { im.errorf(filename, line, 1, fmt.Errorf(format, args...)) }
	switch strings.ToUpper(f[0]) {
	case "$ORIGIN":
		if len(f) != 2 {
			bad("$ORIGIN needs one domain name")
			return
		}
		o, ok := absName(f[1], st.origin)
		if !ok {
			bad("$ORIGIN %q is not a valid domain name", f[1])
			return
		}
		st.origin = o
	case "$TTL":
		if len(f) != 2 {
			bad("$TTL needs one TTL")
			return
		}
		v, ok := parseTTL(f[1])
		if !ok {
			bad("$TTL %q is not a valid TTL", f[1])
			return
		}
		st.ttl, st.ttlSet = v, true
	case "$INCLUDE":
		if len(f) < 2 || len(f) > 3 {
			bad("$INCLUDE needs a file name and optionally an origin")
			return
		}
		inner := st.origin
		if len(f) == 3 {
			o, ok := absName(f[2], st.origin)
			if !ok {
				bad("$INCLUDE origin %q is not a valid domain name", f[2])
				return
			}
			inner = o
		}
		path, err := im.includePath(f[1], filename, depth, stack)
		if err != nil {
			im.errorf(filename, line, 1, err)
			return
		}
		data, err := im.opt.ReadFile(path)
		if err != nil {
			im.errorf(filename, line, 1, fmt.Errorf("$INCLUDE %q: %w: %w", f[1], ErrInclude, err))
			return
		}
		im.included = append(im.included, Included{Path: path, Data: data})
		im.file(data, path, inner, depth+1, append(stack[:len(stack):len(stack)], path))
	}
}

// includePath resolves an $INCLUDE target against the including file's directory and
// checks it against the include root, the depth bound and the include stack.
func (im *importer) includePath(target, filename string, depth int, stack []string) (string, error) {
	if im.root == "" {
		return "", fmt.Errorf("$INCLUDE %q: %w: zone files may include only files of the policy folder, and this import has none", target, ErrInclude)
	}
	if depth+1 > MaxIncludeDepth {
		return "", fmt.Errorf("$INCLUDE %q: %w: more than %d levels of $INCLUDE", target, ErrInclude, MaxIncludeDepth)
	}
	path := target
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(filename), path)
	}
	path = filepath.Clean(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("$INCLUDE %q: %w: %w", target, ErrInclude, err)
	}
	if !inside(im.root, abs) && !inside(im.rootAsGiven, abs) {
		return "", fmt.Errorf("$INCLUDE %q: %w: the file is outside the policy folder", target, ErrInclude)
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("$INCLUDE %q: %w: %w", target, ErrInclude, err)
	}
	if !inside(im.root, real) {
		return "", fmt.Errorf("$INCLUDE %q: %w: a symlink leads outside the policy folder", target, ErrInclude)
	}
	for _, s := range stack {
		if s == path {
			return "", fmt.Errorf("$INCLUDE %q: %w: the file includes itself", target, ErrInclude)
		}
	}
	return path, nil
}

// ownerOf returns the absolute owner name an entry starts with, "" when it starts with
// a blank or its first field is not a name.
func ownerOf(text []byte, origin string) string {
	if len(text) == 0 || text[0] == ' ' || text[0] == '\t' {
		return ""
	}
	f := strings.Fields(string(text[:min(len(text), 300)]))
	if len(f) == 0 {
		return ""
	}
	if f[0] == "@" {
		return origin
	}
	n, _ := absName(f[0], origin)
	return n
}

// inside reports whether the absolute, clean path is root or below it.
func inside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// absName makes a directive's name absolute against origin.
func absName(s, origin string) (string, bool) {
	if !dns.IsFqdn(s) {
		if origin == "." {
			s += "."
		} else {
			s += "." + origin
		}
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return "", false
	}
	return s, true
}

// parseTTL reads a TTL as miekg does: seconds, or BIND's units (1h30m, 2d, 1W).
func parseTTL(s string) (uint32, bool) {
	var total, cur uint64
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			cur = cur*10 + uint64(c-'0')
			digits = true
			if cur > 1<<32 {
				return 0, false
			}
			continue
		}
		if !digits {
			return 0, false
		}
		var unit uint64
		switch c | 0x20 {
		case 's':
			unit = 1
		case 'm':
			unit = 60
		case 'h':
			unit = 3600
		case 'd':
			unit = 86400
		case 'w':
			unit = 604800
		default:
			return 0, false
		}
		total += cur * unit
		cur, digits = 0, false
	}
	total += cur
	if total > 1<<32-1 || len(s) == 0 {
		return 0, false
	}
	return uint32(total), true
}

// parsePos splits a ZoneParser error ("dns: msg: \"tok\" at line: L:C") into the position
// and the message.
func parsePos(err error) (line, col int, msg string) {
	s := err.Error()
	i := strings.LastIndex(s, " at line: ")
	if i < 0 {
		return 0, 0, strings.TrimPrefix(s, "dns: ")
	}
	msg, pos := strings.TrimPrefix(s[:i], "dns: "), s[i+len(" at line: "):]
	l, c, _ := strings.Cut(pos, ":")
	line, _ = strconv.Atoi(l)
	col, _ = strconv.Atoi(c)
	return line, col, msg
}

// entry is one record or directive of a master file: its text, from its first byte to
// the end of its last line (comments included, the final newline not), and its first
// line.
type entry struct {
	start, end int // offsets in the file's data
	line       int
}

// entries cuts data into records (RFC 1035 section 5.1): a newline ends one unless it is
// inside parentheses or quotes; ';' starts a comment to the end of the line; a backslash
// escapes the next byte. Lines holding only blanks and comments are skipped.
func entries(data []byte) func(yield func(entry) bool) {
	return func(yield func(entry) bool) {
		line := 1
		start, startLine := 0, 1
		depth := 0
		quoted, content := false, false
		for i := 0; i < len(data); i++ {
			c := data[i]
			switch {
			case c == '\\':
				i++
				content = true
				if i < len(data) && data[i] == '\n' {
					line++
				}
				continue
			case quoted:
				if c == '"' {
					quoted = false
				} else if c == '\n' {
					line++
				}
				continue
			case c == ';':
				for i < len(data) && data[i] != '\n' {
					i++
				}
				i--
				continue
			case c == '"':
				quoted, content = true, true
			case c == '(':
				depth++
				content = true
			case c == ')':
				depth--
				content = true
			case c == '\n':
				line++
				if depth > 0 {
					continue
				}
				if content {
					if !yield(entry{start: start, end: i, line: startLine}) {
						return
					}
				}
				start, startLine, content, depth = i+1, line, false, 0
			case c == '\r' || c == ' ' || c == '\t':
			default:
				content = true
			}
		}
		if content {
			yield(entry{start: start, end: len(data), line: startLine})
		}
	}
}

// fieldsOf splits a directive into its fields, without its comment.
func fieldsOf(s string) []string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.Fields(s)
}

func countLines(data []byte) int {
	n := 0
	for _, c := range data {
		if c == '\n' {
			n++
		}
	}
	return n
}
