package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file holds the rules on single values that the server enforces on what the API
// writes and that need no other object: the policy package and the store apply them, and
// the Terraform provider checks the same values at plan time with them, so that both
// refuse the same.

// Limits of the objects written through the API.
const (
	// MaxSteerPools bounds the pools of a failover, geo or nearest service, so that a
	// pool order fits a fixed array on the answer path.
	MaxSteerPools = 64
	// MaxColdStartTimeout bounds a cold probe's timeout: healthd's probe slots are shared.
	MaxColdStartTimeout = 5 * time.Minute
	// MaxDrain bounds a drain: a member out for longer than a year should be removed or
	// given weight 0 instead, where the policy shows it.
	MaxDrain = 366 * 24 * time.Hour
	// MaxDocName keeps the names of managed documents (DocName), and the temporary names
	// derived from them, under the 255-byte file name limit of common file systems.
	MaxDocName = 200
	// DefaultColdStartTimeout is the timeout of a cold probe when a cold_start block sets
	// none: a function platform's cold start takes seconds, not the milliseconds a check's
	// timeout is tuned for.
	DefaultColdStartTimeout = 10 * time.Second
)

// CheckTypes are healthd's probers; a check's type defaults to its name when the name is
// one of them.
var CheckTypes = []string{"http", "https", "tcp", "dns"}

// CheckAttrs lists the attributes of a check by the type they apply to: those under ""
// apply to every type, the others to their type only (a path on a tcp check is refused,
// not ignored).
var CheckAttrs = map[string][]string{
	"":      {"type", "port", "interval", "timeout", "rise", "fall"},
	"http":  {"method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regexp", "follow_redirects"},
	"https": {"method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regexp", "follow_redirects", "server_name", "insecure"},
	"tcp":   {"send", "expect"},
	"dns":   {"qname", "qtype", "expect_rcode", "expect_answer"},
}

// CheckAttrAllowed says that a check of type typ may set attribute name.
func CheckAttrAllowed(typ, name string) bool {
	for _, t := range []string{"", typ} {
		for _, n := range CheckAttrs[t] {
			if n == name {
				return true
			}
		}
	}
	return false
}

// ParseStatus reads an expect_status string: a status ("301") or a range ("200-299"),
// whole numbers; it does not check their range (ValidStatusRange does).
func ParseStatus(s string) (lo, hi int64, err error) {
	l, h, isRange := strings.Cut(s, "-")
	lo, err = strconv.ParseInt(strings.TrimSpace(l), 10, 32)
	hi = lo
	if err == nil && isRange {
		hi, err = strconv.ParseInt(strings.TrimSpace(h), 10, 32)
	}
	return lo, hi, err
}

// ValidStatusRange says that lo-hi is a range of HTTP statuses an expect_status may
// accept: from 100 to 599, lo not above hi.
func ValidStatusRange(lo, hi int64) bool { return lo >= 100 && hi <= 599 && lo <= hi }

// ValidMetricName says that s is a Prometheus metric name, [a-zA-Z_:][a-zA-Z0-9_:]*: the
// metric of a prometheus load signal.
func ValidMetricName(s string) bool {
	for i, r := range s {
		letter := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

// ValidLoadField says that s is the dotted path of a json load signal ("a.b"): no empty
// element.
func ValidLoadField(s string) bool {
	return s != "" && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, ".") && !strings.Contains(s, "..")
}

// DocName is the managed document of an object: KIND-NAME.hcl with every byte outside
// [A-Za-z0-9._-] percent-encoded, so that any name is one safe file name.
func DocName(kind, name string) string {
	var b strings.Builder
	b.WriteString(kind + "-")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	b.WriteString(".hcl")
	return b.String()
}

// NameProblem says why no managed document could carry an object of kind ("pool" or
// "service") called name, or "" when one can: the name must be printable UTF-8, a pool's
// without "/", and its DocName at most MaxDocName bytes. A service name is checked in
// its ServiceName form.
func NameProblem(kind, name string) string {
	switch {
	case name == "":
		return fmt.Sprintf("a %s name must not be empty", kind)
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Sprintf("a %s name must be printable UTF-8", kind)
	case strings.Contains(name, "/") && kind == "pool":
		return "a pool name must not contain \"/\""
	case len(DocName(kind, name)) > MaxDocName:
		return fmt.Sprintf("the %s name is too long: its document name %s-….hcl would exceed %d bytes", kind, kind, MaxDocName)
	}
	return ""
}
