package e2e

import (
	"testing"

	"github.com/miekg/dns"
)

// TestExamplePolicyGeo serves examples/policy as `make run` does (without healthd: every
// member up) and checks what the README shows of its geo service: over the GeoIP2 City
// test database in testdata/geoip, a GB client (by ECS) gets the EU pool and a US client
// the US pool, with the database network as the ECS scope.
func TestExamplePolicyGeo(t *testing.T) {
	_, dnsAddr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", "../examples/policy",
		"-managed-dir", t.TempDir())
	eu := map[string]bool{"127.0.0.11": true, "127.0.0.12": true}
	for _, c := range []struct {
		name, ecs string
		in        func(string) bool
		scope     int
	}{
		{"GB", "81.2.69.142/32", func(a string) bool { return eu[a] }, 31},
		{"US", "216.160.83.56/32", func(a string) bool { return a == "127.0.0.13" }, 29},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 20 {
				r := query(t, "udp", dnsAddr, "geo.glb.example.com", dns.TypeA, withECS(c.ecs))
				a := answerAddrs(r)
				if len(a) != 1 || !c.in(a[0]) {
					t.Fatalf("client %s: answers %v", c.ecs, a)
				}
				if s := ecsScope(r); s != c.scope {
					t.Fatalf("client %s: ECS scope %d, want %d", c.ecs, s, c.scope)
				}
			}
		})
	}
	if a := answerAddrs(query(t, "udp", dnsAddr, "lc.glb.example.com", dns.TypeA)); len(a) != 1 {
		t.Errorf("lc.glb.example.com: answers %v, want one", a)
	}
}
