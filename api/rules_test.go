package api

import (
	"strings"
	"testing"
)

func TestStatusRules(t *testing.T) {
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{"200", true}, {"200-299", true}, {" 301 ", true}, {"100-599", true}, {"404-404", true},
		{"99", false}, {"600", false}, {"299-200", false}, {"2xx", false}, {"", false}, {"200-", false}, {"-200", false},
	} {
		lo, hi, err := ParseStatus(c.s)
		if got := err == nil && ValidStatusRange(lo, hi); got != c.ok {
			t.Errorf("%q: valid %v, want %v", c.s, got, c.ok)
		}
	}
}

func TestLoadRules(t *testing.T) {
	for s, ok := range map[string]bool{"active_connections": true, "ns:conns_1": true, "_x": true, "1conns": false, "a-b": false, "": false, "é": false} {
		if ValidMetricName(s) != ok {
			t.Errorf("ValidMetricName(%q) = %v, want %v", s, !ok, ok)
		}
	}
	for s, ok := range map[string]bool{"a": true, "a.b.c": true, "": false, ".a": false, "a.": false, "a..b": false} {
		if ValidLoadField(s) != ok {
			t.Errorf("ValidLoadField(%q) = %v, want %v", s, !ok, ok)
		}
	}
}

func TestCheckAttrAllowed(t *testing.T) {
	for _, c := range []struct {
		typ, name string
		ok        bool
	}{
		{"tcp", "port", true}, {"tcp", "send", true}, {"tcp", "path", false}, {"http", "server_name", false},
		{"https", "server_name", true}, {"dns", "qname", true}, {"http", "qname", false}, {"dns", "interval", true},
	} {
		if got := CheckAttrAllowed(c.typ, c.name); got != c.ok {
			t.Errorf("CheckAttrAllowed(%q, %q) = %v, want %v", c.typ, c.name, got, c.ok)
		}
	}
}

func TestNameProblem(t *testing.T) {
	for _, c := range []struct {
		kind, name, want string // want: a word of the reason, "" for none
	}{
		{"pool", "web-eu", ""},
		{"pool", "web eu", ""}, // the store carries any printable name; the policy decides the rest
		{"pool", "", "empty"},
		{"pool", "a/b", `"/"`},
		{"service", "a/b.example.com", ""},
		{"pool", "a\x00b", "printable"},
		{"pool", strings.Repeat("p", MaxDocName-len("pool-.hcl")), ""},
		{"pool", strings.Repeat("p", MaxDocName-len("pool-.hcl")+1), "too long"},
		{"service", strings.Repeat("s", MaxDocName-len("service-.hcl")), ""},
		{"service", strings.Repeat("s", MaxDocName-len("service-.hcl")+1), "too long"},
		{"pool", strings.Repeat("é", 64), "too long"}, // percent-encoded: 6 bytes each
	} {
		got := NameProblem(c.kind, c.name)
		if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
			t.Errorf("NameProblem(%q, %q) = %q, want %q", c.kind, c.name, got, c.want)
		}
	}
}
