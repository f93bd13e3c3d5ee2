package policy

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestExplainPath covers every way the walk can answer, for a plain service (one entry:
// all its members) and a failover service (one entry per pool): the Path wording, the
// pool Explain names as the one that answered, and which members it lists.
func TestExplainPath(t *testing.T) {
	snap := load(t, `
pool "p" {
  member "a" {
    address = "192.0.2.1"
  }
  member "b" {
    address = "192.0.2.2"
  }
}
pool "quorum" {
  min_healthy = 2
  member "q1" {
    address = "192.0.2.11"
  }
  member "q2" {
    address = "192.0.2.12"
  }
  member "q3" {
    address = "192.0.2.13"
  }
}
pool "sorry" {
  member "s1" {
    address = "192.0.2.100"
  }
  member "s2" {
    address = "192.0.2.101"
  }
}
service "all.glb.example.com" {
  pools = ["p"]
}
service "sf.glb.example.com" {
  pools         = ["p"]
  when_all_down = "servfail"
}
service "fb.glb.example.com" {
  pools         = ["p"]
  when_all_down = "fallback"
  fallback      = "sorry"
}
service "fo.glb.example.com" {
  policy = "failover"
  pools  = ["quorum", "p"]
}
service "fosf.glb.example.com" {
  policy        = "failover"
  pools         = ["quorum", "p"]
  when_all_down = "servfail"
}
service "fofb.glb.example.com" {
  policy        = "failover"
  pools         = ["quorum", "p"]
  when_all_down = "fallback"
  fallback      = "sorry"
}`)
	pDown := downIDs{"p/a": true, "p/b": true}
	allDown := downIDs{"p/a": true, "p/b": true, "quorum/q1": true, "quorum/q2": true, "quorum/q3": true, "sorry/s1": true, "sorry/s2": true}
	for _, tc := range []struct {
		name, svc  string
		qtype      uint16
		h          Health
		path       string
		chosenPool string
		candidates string // "pool/member" IDs, in order
	}{
		{"plain: up", "all", dns.TypeA, AllUp{}, "usable members", "", "p/a p/b"},
		{"plain: NODATA", "all", dns.TypeAAAA, AllUp{}, "no member of the asked family: NODATA", "", ""},
		{"plain: fail open", "all", dns.TypeA, pDown, "all down: when_all_down = all, answering as if every member were up", "", "p/a p/b"},
		{"plain: servfail", "sf", dns.TypeA, pDown, "all down: when_all_down = servfail", "", "p/a p/b"},
		{"plain: fallback", "fb", dns.TypeA, pDown, "all down: when_all_down = fallback, pool sorry (usable members)", "sorry", "sorry/s1 sorry/s2"},
		{"plain: fallback, none usable", "fb", dns.TypeA, allDown, "all down: when_all_down = fallback, pool sorry (none usable either: all its members)", "sorry", "sorry/s1 sorry/s2"},
		{"failover: up", "fo", dns.TypeA, AllUp{}, "pool quorum is up", "quorum", "quorum/q1 quorum/q2 quorum/q3"},
		{"failover: spills", "fo", dns.TypeA, downIDs{"quorum/q1": true, "quorum/q2": true}, "pool p is up", "p", "p/a p/b"},
		{"failover: degraded", "fo", dns.TypeA, downIDs{"quorum/q1": true, "quorum/q2": true, "p/a": true, "p/b": true},
			"every pool below min_healthy: when_all_down = all, pool quorum with its usable members", "quorum", "quorum/q1 quorum/q2 quorum/q3"},
		{"failover: fail open", "fo", dns.TypeA, allDown,
			"every pool below min_healthy, none usable: when_all_down = all, pool quorum as if every member were up", "quorum", "quorum/q1 quorum/q2 quorum/q3"},
		{"failover: servfail", "fosf", dns.TypeA, allDown, "every pool below min_healthy: when_all_down = servfail", "", "quorum/q1 quorum/q2 quorum/q3 p/a p/b"},
		{"failover: fallback", "fofb", dns.TypeA, downIDs{"quorum/q1": true, "quorum/q2": true, "p/a": true, "p/b": true},
			"every pool below min_healthy: when_all_down = fallback, pool sorry (usable members)", "sorry", "sorry/s1 sorry/s2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := service(t, snap, tc.svc+".glb.example.com.")
			ex := svc.Explain(client4("198.51.100.1"), tc.qtype, tc.h)
			var cands []string
			for _, c := range ex.Candidates {
				cands = append(cands, c.Member.ID())
			}
			if ex.Path != tc.path || ex.ChosenPool != tc.chosenPool || strings.Join(cands, " ") != tc.candidates {
				t.Errorf("path %q, pool %q, candidates %q\nwant %q, pool %q, candidates %q",
					ex.Path, ex.ChosenPool, cands, tc.path, tc.chosenPool, tc.candidates)
			}
			if !strings.Contains(ex.String(), "path      "+tc.path+"\n") {
				t.Errorf("rendering lacks the path:\n%s", ex)
			}
		})
	}
}
