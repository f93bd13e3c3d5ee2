package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const corePolicy = `
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  soa {
    minimum = 60
  }
  record "ns1" {
    type = "A"
    values = ["192.0.2.53"]
  }
  record "www" {
    type = "A"
    values = ["192.0.2.1"]
  }
  record "alias" {
    type = "CNAME"
    values = ["pool.glb.test."]
  }
  record "*.wild" {
    type = "A"
    values = ["192.0.2.77"]
  }
}

pool "p31" {
  member "a" {
    address = "192.0.2.11"
    weight  = 3
  }
  member "b" {
    address = "192.0.2.12"
    weight  = 1
  }
}

pool "four" {
  member "m1" { address = "192.0.2.21" }
  member "m2" { address = "192.0.2.22" }
  member "m3" { address = "192.0.2.23" }
  member "m4" { address = "192.0.2.24" }
}

service "pool.glb.test" {
  policy = "weighted"
  pools  = ["p31"]
  ttl    = 20
}

service "rr.glb.test" {
  policy = "round_robin"
  pools  = ["four"]
}

service "hash.glb.test" {
  policy = "client_subnet_hash"
  pools  = ["four"]
}
`

// TestCoreAnswers checks the authoritative basics over UDP and TCP against the real binary.
func TestCoreAnswers(t *testing.T) {
	_, addr, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	for _, netw := range []string{"udp", "tcp"} {
		t.Run(netw, func(t *testing.T) {
			t.Run("static A", func(t *testing.T) {
				r := query(t, netw, addr, "www.glb.test", dns.TypeA)
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.RecursionAvailable {
					t.Fatalf("rcode %s aa %v ra %v", dns.RcodeToString[r.Rcode], r.Authoritative, r.RecursionAvailable)
				}
				if got := answerAddrs(r); len(got) != 1 || got[0] != "192.0.2.1" {
					t.Fatalf("answer %v", got)
				}
			})
			t.Run("case echoed", func(t *testing.T) {
				r := query(t, netw, addr, "WwW.GlB.TeSt", dns.TypeA)
				if r.Question[0].Name != "WwW.GlB.TeSt." || len(r.Answer) != 1 {
					t.Fatalf("question %q answers %d", r.Question[0].Name, len(r.Answer))
				}
			})
			t.Run("NODATA", func(t *testing.T) {
				r := query(t, netw, addr, "www.glb.test", dns.TypeAAAA)
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Fatalf("want NODATA with SOA, got\n%v", r)
				}
				if ttl := r.Ns[0].Header().Ttl; ttl != 60 {
					t.Fatalf("SOA TTL in authority %d, want the SOA minimum 60 (RFC 2308)", ttl)
				}
			})
			t.Run("NXDOMAIN", func(t *testing.T) {
				r := query(t, netw, addr, "nx.glb.test", dns.TypeA)
				if r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Ns) != 1 {
					t.Fatalf("want NXDOMAIN with SOA, got\n%v", r)
				}
			})
			t.Run("REFUSED outside zones", func(t *testing.T) {
				r := query(t, netw, addr, "example.org", dns.TypeA)
				if r.Rcode != dns.RcodeRefused || r.RecursionAvailable {
					t.Fatalf("want REFUSED, got %s", dns.RcodeToString[r.Rcode])
				}
			})
			t.Run("wildcard", func(t *testing.T) {
				r := query(t, netw, addr, "x.wild.glb.test", dns.TypeA)
				if got := answerAddrs(r); len(got) != 1 || got[0] != "192.0.2.77" || r.Answer[0].Header().Name != "x.wild.glb.test." {
					t.Fatalf("wildcard answer %v", r.Answer)
				}
			})
			t.Run("CNAME into a service", func(t *testing.T) {
				r := query(t, netw, addr, "alias.glb.test", dns.TypeA)
				if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[1].Header().Rrtype != dns.TypeA {
					t.Fatalf("want CNAME then A, got %v", r.Answer)
				}
			})
			t.Run("service TTL and AA", func(t *testing.T) {
				r := query(t, netw, addr, "pool.glb.test", dns.TypeA)
				if !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 20 {
					t.Fatalf("service answer %v", r)
				}
			})
			t.Run("AXFR refused", func(t *testing.T) {
				if netw != "tcp" {
					t.Skip("AXFR is asked over TCP")
				}
				r := query(t, netw, addr, "glb.test", dns.TypeAXFR)
				if r.Rcode != dns.RcodeRefused {
					t.Fatalf("AXFR: %s", dns.RcodeToString[r.Rcode])
				}
			})
		})
	}
}

// TestWeightedDistribution: weighted 3:1 over 10,000 queries lands within 75% ± 3%.
func TestWeightedDistribution(t *testing.T) {
	_, addr, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	counts := countAnswers(t, addr, "pool.glb.test", 10000, nil)
	share := float64(counts["192.0.2.11"]) / 10000
	t.Logf("weighted 3:1 over 10000 queries: %v (share of a: %.4f)", counts, share)
	if share < 0.72 || share > 0.78 {
		t.Fatalf("share of the weight-3 member %.4f, want 0.75 ± 0.03", share)
	}
}

// TestRoundRobinDistribution: round robin over 4 members spreads 4,000 queries 1,000 ± 50.
func TestRoundRobinDistribution(t *testing.T) {
	_, addr, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	counts := countAnswers(t, addr, "rr.glb.test", 4000, nil)
	t.Logf("round robin over 4000 queries: %v", counts)
	if len(counts) != 4 {
		t.Fatalf("want 4 members answered, got %v", counts)
	}
	for a, n := range counts {
		if n < 950 || n > 1050 {
			t.Fatalf("member %s got %d answers, want 1000 ± 50", a, n)
		}
	}
}

// countAnswers sends n queries over one UDP socket and counts the first answer address.
func countAnswers(t *testing.T, addr, name string, n int, opt func(*dns.Msg)) map[string]int {
	t.Helper()
	conn, err := dns.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		if opt != nil {
			opt(m)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		got := answerAddrs(r)
		if len(got) == 0 {
			t.Fatalf("query %d: empty answer %v", i, r)
		}
		counts[got[0]]++
	}
	return counts
}

// TestClientSubnetHashConsistency: the same /24 gets the same answer every time, the ECS
// scope is the hashing prefix, and removing one of 4 members (a reload) moves at most 30%
// of 1,000 subnets — only those that were on it.
func TestClientSubnetHashConsistency(t *testing.T) {
	p, addr, dir := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	subnet := func(i int) string { return fmt.Sprintf("10.%d.%d.0/24", i/256, i%256) }
	before := make([]string, 1000)
	for i := range before {
		r := query(t, "udp", addr, "hash.glb.test", dns.TypeA, withECS(subnet(i)))
		before[i] = answerAddrs(r)[0]
		if s := ecsScope(r); s != 24 {
			t.Fatalf("ECS scope %d, want 24", s)
		}
		if i < 50 { // two hosts of the same /24, sent as /32: same answer, scope 24
			for _, host := range []int{5, 9} {
				ecs := fmt.Sprintf("10.%d.%d.%d/32", i/256, i%256, host)
				r2 := query(t, "udp", addr, "hash.glb.test", dns.TypeA, withECS(ecs))
				if got := answerAddrs(r2)[0]; got != before[i] || ecsScope(r2) != 24 {
					t.Fatalf("%s: %s (scope %d), but %s got %s", ecs, got, ecsScope(r2), subnet(i), before[i])
				}
			}
		}
	}
	// Remove m4 and reload with SIGHUP.
	edited := strings.Replace(corePolicy, `  member "m4" { address = "192.0.2.24" }`+"\n", "", 1)
	if edited == corePolicy {
		t.Fatal("test bug: member m4 not found in the policy text")
	}
	if err := os.WriteFile(filepath.Join(dir, "glb.hcl"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog(t, "policy reloaded", 5*time.Second)
	moved, movedFromOthers := 0, 0
	for i := range before {
		got := answerAddrs(query(t, "udp", addr, "hash.glb.test", dns.TypeA, withECS(subnet(i))))[0]
		if got != before[i] {
			moved++
			if before[i] != "192.0.2.24" {
				movedFromOthers++
			}
		}
	}
	t.Logf("removing 1 of 4 members moved %d of 1000 subnets (%d not from the removed member)", moved, movedFromOthers)
	if moved > 300 || movedFromOthers != 0 {
		t.Fatalf("moved %d (%d from surviving members); want <= 300 and 0", moved, movedFromOthers)
	}
}

// TestMalformedThenAnswer sends broken messages over raw UDP and checks the server still
// answers a normal query afterwards.
func TestMalformedThenAnswer(t *testing.T) {
	p, addr, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range [][]byte{
		{0x12},                               // shorter than a header
		{0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0}, // five questions announced, none present
		{0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1},                  // compression pointer to itself
		append([]byte{0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64}, make([]byte, 70)...), // label of 64
	} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	r := query(t, "udp", addr, "www.glb.test", dns.TypeA)
	if len(answerAddrs(r)) != 1 {
		t.Fatalf("after malformed input: %v", r)
	}
	if strings.Contains(p.Logs(), "panic") {
		t.Fatalf("server logged a panic:\n%s", p.Logs())
	}
}

// TestSignalsStopCleanly: SIGINT stops glbdns with exit status 0.
func TestSignalsStopCleanly(t *testing.T) {
	p, _, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy})
	p.signal(syscall.SIGINT)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v\n%s", p.err, p.Logs())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("glbdns did not stop within 5s of SIGINT")
	}
}

// TestBadPolicyRefusedAtStart: glbdns refuses to start on a broken policy, exit status 3,
// and names the file:line:col.
func TestBadPolicyRefusedAtStart(t *testing.T) {
	dir := writePolicy(t, map[string]string{"bad.hcl": "service \"x.glb.test\" {\n  pools = [\"nope\"]\n}\n"})
	out, err := execBin(t, "glbdns", "-listen", "127.0.0.1:0", "-policy", dir)
	ee, ok := err.(interface{ ExitCode() int })
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want status 3\n%s", err, out)
	}
	if !strings.Contains(out, "bad.hcl:") {
		t.Fatalf("no file position in output:\n%s", out)
	}
}

// TestVersion: both daemons print their name and version with -version, and exit 0.
func TestVersion(t *testing.T) {
	for _, bin := range []string{"glbdns", "healthd"} {
		out, err := execBin(t, bin, "-version")
		if err != nil || !strings.HasPrefix(out, bin+" ") {
			t.Errorf("%s -version: %q, %v", bin, out, err)
		}
	}
}
