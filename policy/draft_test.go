package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// draftPolicy is a policy of n services over a few pools, of every kind a draft decodes:
// plain, weighted, failover, nearest and geo (with and without a geoip block: bad
// adds errors at some of the services), SRV, CNAME and least_connections ones.
func draftPolicy(n int, bad bool) []File {
	var sb strings.Builder
	sb.WriteString(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
geoip {
  database = "/nonexistent/city.mmdb"
}
pool "a" {
  location = [50.1, 8.7]
  member "a1" {
    address = "192.0.2.1"
    port    = 80
  }
  member "a2" {
    address = "2001:db8::1"
    port    = 80
    weight  = 3
  }
}
pool "b" {
  location = [40.7, -74.0]
  member "b1" {
    address = "198.51.100.1"
    port    = 80
  }
}
pool "h" {
  member "h1" {
    host = "fn.example.net"
  }
}
pool "lc" {
  load {
    metric = "active_connections"
  }
  member "l1" {
    address = "192.0.2.9"
  }
}
`)
	for i := range n {
		name := fmt.Sprintf("s%d.glb.test", i)
		body := `  pools = ["a", "b"]
`
		switch i % 7 {
		case 1:
			body = "  policy = \"weighted\"\n  pools = [\"a\"]\n  ttl = 30\n"
		case 2:
			body = "  policy = \"failover\"\n  pools = [\"a\", \"b\"]\n  method = \"weighted\"\n"
		case 3:
			body = "  policy = \"nearest\"\n  pools = [\"a\", \"b\"]\n"
		case 4:
			body = "  policy = \"geo\"\n  pools = [\"a\", \"b\"]\n  geo {\n    rule {\n      countries = [\"DE\"]\n      pools = [\"a\"]\n    }\n    default_pools = [\"b\"]\n  }\n"
		case 5:
			body = "  pools = [\"h\"]\n  answers = 1\n"
		case 6:
			body = "  policy = \"least_connections\"\n  pools = [\"lc\"]\n"
		}
		if bad {
			switch i % 97 {
			case 3:
				name = fmt.Sprintf("s%d.glb.test", i-1) // a duplicate
			case 11:
				body = "  pools = [\"nope\"]\n"
			case 17:
				body += "  unknown_attr = 1\n"
			case 29:
				name = fmt.Sprintf("s%d.elsewhere.test", i)
			case 41:
				body += "  hash_prefix_v4 = 40\n"
			case 53:
				name = "bad..name"
			case 67:
				body = "  policy = \"geo\"\n  pools = [\"a\"]\n"
			}
		}
		fmt.Fprintf(&sb, "service %q {\n%s}\n", name, body)
	}
	return []File{{Name: "p.hcl", Data: []byte(sb.String())}}
}

// TestDraftsCompileAsOneByOne: a policy with enough services for draftServices to decode
// them on every CPU compiles to the snapshot, or the diagnostics, that decoding them one
// by one gives, with and without a Compiler's records. The race detector checks that the
// drafts only read what they share.
func TestDraftsCompileAsOneByOne(t *testing.T) {
	for _, bad := range []bool{false, true} {
		t.Run(fmt.Sprintf("errors=%v", bad), func(t *testing.T) {
			files := draftPolicy(3000, bad)
			drafted, dd := Load(files)
			var cc Compiler
			compiled, cd := cc.Load(files)
			if cc.stats.drafted != 3000 && runtime.GOMAXPROCS(0) > 1 {
				t.Fatalf("%d services drafted ahead, want all 3,000", cc.stats.drafted)
			}
			saved := minDrafts
			minDrafts = 1 << 30
			defer func() { minDrafts = saved }()
			serial, sd := Load(files)
			if got, want := dd.Error(), sd.Error(); got != want {
				t.Fatalf("diagnostics differ:\ndrafted: %s\none by one: %s", got, want)
			}
			if got := cd.Error(); got != sd.Error() {
				t.Fatalf("a Compiler's diagnostics differ:\n%s\none by one: %s", got, sd.Error())
			}
			if len(dd) != len(sd) {
				t.Fatalf("%d diagnostics drafted, %d one by one", len(dd), len(sd))
			}
			if bad {
				if !dd.HasErrors() || len(dd.Errs()) < 7*3000/97 {
					t.Fatalf("the bad policy gave %d errors: %s", len(dd.Errs()), dd.Error())
				}
				return
			}
			if dd.HasErrors() {
				for _, d := range dd.Errs()[:min(5, len(dd.Errs()))] {
					t.Error(d)
				}
				t.FailNow()
			}
			if len(serial.Services) != 3000 {
				t.Fatalf("%d services, want 3,000", len(serial.Services))
			}
			if !equalSnaps(drafted, serial) || !equalSnaps(compiled, serial) {
				t.Fatalf("snapshots differ:\ndrafted:\n%s\none by one:\n%s", dump(drafted), dump(serial))
			}
		})
	}
}
