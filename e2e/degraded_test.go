package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
)

// degradedPolicy has two checked pools: "open" counts its members up while their health is
// unknown (the default), "closed" counts them down (unknown_is = "down"). Service
// web.glb.test balances both, closed.glb.test only the closed pool and answers SERVFAIL
// when none of its members is usable.
func degradedPolicy(open, closed []*backend) string {
	var sb strings.Builder
	sb.WriteString(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
`)
	pool := func(name, extra string, bs []*backend) {
		fmt.Fprintf(&sb, "pool %q {\n%s  check \"http\" {\n    path     = \"/healthz\"\n    interval = \"1s\"\n    timeout  = \"500ms\"\n    rise     = 2\n    fall     = 2\n  }\n", name, extra)
		for i, b := range bs {
			fmt.Fprintf(&sb, "  member \"%s%d\" {\n    address = %q\n    check \"http\" {\n      port = %s\n    }\n  }\n", name[:1], i, b.ip(), b.port())
		}
		sb.WriteString("}\n")
	}
	pool("open", "", open)
	pool("closed", "  unknown_is = \"down\"\n", closed)
	sb.WriteString(`service "web.glb.test" {
  policy  = "round_robin"
  pools   = ["open", "closed"]
  answers = 0
  ttl     = 5
}
service "closed.glb.test" {
  policy        = "round_robin"
  pools         = ["closed"]
  answers       = 0
  ttl           = 5
  when_all_down = "servfail"
}
`)
	return sb.String()
}

// memberStates is every member of /v1/state by id ("pool/member"), once each.
func memberStates(t *testing.T, admin string) map[string]api.MemberState {
	t.Helper()
	var st api.State
	getJSON(t, admin+"/v1/state", &st)
	out := map[string]api.MemberState{}
	for _, s := range st.Services {
		for _, p := range s.Pools {
			for _, m := range p.Members {
				out[m.ID] = m
			}
		}
	}
	return out
}

// TestDegradedFallback: glbdns on one healthd with -health-stale-after 500ms and
// -health-grace 1s. Once healthd is stopped and the grace has passed, /v1/state shows every
// member degraded, with the reason naming its pool's unknown_is, and
// glbdns_health_grace_expired is 1. The answers follow unknown_is: the open pool's members
// stay in them, the closed pool's leave (closed.glb.test, with none usable, answers
// SERVFAIL). healthd started again on the same address ends the fall-back: the gauge is 0,
// every member is up again and answered.
func TestDegradedFallback(t *testing.T) {
	open := []*backend{newBackend(t, "127.0.0.61"), newBackend(t, "127.0.0.62")}
	closed := []*backend{newBackend(t, "127.0.0.63"), newBackend(t, "127.0.0.64")}
	pol := degradedPolicy(open, closed)
	dir := writePolicy(t, map[string]string{"p.hcl": pol})
	hd, hdAddr := start(t, "healthd", "addr", "-policy", dir, "-listen", "127.0.0.1:0", "-id", "hd1")
	hurl := "http://" + hdAddr
	g, dnsAddr, _ := startGLBDNS(t, map[string]string{"p.hcl": pol}, "-admin", "127.0.0.1:0",
		"-health", hurl, "-health-stale-after", "500ms", "-health-grace", "1s")
	admin := adminURL(t, g)

	all, openIPs, closedIPs := ips(append(append([]*backend{}, open...), closed...)...), ips(open...), ips(closed...)
	allUp := func() bool {
		ms := memberStates(t, admin)
		for _, m := range ms {
			if m.State != api.MemberUp {
				return false
			}
		}
		return len(ms) == 4 && answerSet(t, dnsAddr, "web.glb.test") == all && answerSet(t, dnsAddr, "closed.glb.test") == closedIPs
	}
	eventually(t, 15*time.Second, "every member up and answered", allUp)
	if g := scrape(t, admin)["glbdns_health_grace_expired{}"]; g != 0 {
		t.Errorf("glbdns_health_grace_expired %v with healthd fresh, want 0", g)
	}

	stopped := time.Now()
	if err := hd.stop(); err != nil {
		t.Logf("healthd exit: %v", err)
	}
	took := eventually(t, 10*time.Second, "glbdns_health_grace_expired 1 after healthd stopped", func() bool {
		return scrape(t, admin)["glbdns_health_grace_expired{}"] == 1
	})
	t.Logf("MEASURE healthd stopped -> grace expired: %v (stale after 500ms, grace 1s)", took.Round(time.Millisecond))
	if since := time.Since(stopped); since < time.Second {
		t.Errorf("grace expired %v after healthd stopped, before the 1s grace", since)
	}
	if n := scrape(t, admin)["glbdns_health_grace_expired_total{}"]; n != 1 {
		t.Errorf("glbdns_health_grace_expired_total %v, want 1", n)
	}
	ms := memberStates(t, admin)
	if len(ms) != 4 {
		t.Fatalf("/v1/state lists %d members, want 4: %v", len(ms), ms)
	}
	for id, m := range ms {
		status, unknownIs := "up", "up"
		if strings.HasPrefix(id, "closed/") {
			status, unknownIs = "down", "down"
		}
		if m.State != api.MemberDegraded || m.Health != "unknown" || m.Status != status ||
			m.Reason != "no fresh healthd reporter for the grace period: counted as unknown_is "+unknownIs {
			t.Errorf("%s after the grace: state %q health %q status %q reason %q; want degraded, unknown, %s, counted as unknown_is %s",
				id, m.State, m.Health, m.Status, m.Reason, status, unknownIs)
		}
	}
	for i := 0; i < 10; i++ { // and the answers hold while degraded
		if got := answerSet(t, dnsAddr, "web.glb.test"); got != openIPs {
			t.Fatalf("web.glb.test degraded: %s, want only the open pool's %s", got, openIPs)
		}
		if r := query(t, "udp", dnsAddr, "closed.glb.test", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("closed.glb.test degraded: rcode %d with answers %v, want SERVFAIL", r.Rcode, answerAddrs(r))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The same address: healthd closed its listener when it exited.
	start(t, "healthd", "addr", "-policy", dir, "-listen", hdAddr, "-id", "hd1")
	restarted := time.Now()
	eventually(t, 10*time.Second, "glbdns_health_grace_expired 0 with healthd back", func() bool {
		return scrape(t, admin)["glbdns_health_grace_expired{}"] == 0
	})
	for id, m := range memberStates(t, admin) {
		if m.State == api.MemberDegraded {
			t.Errorf("%s still degraded with a fresh healthd", id)
		}
	}
	fresh := time.Since(restarted)
	eventually(t, 15*time.Second, "every member up and answered again", allUp)
	t.Logf("MEASURE healthd restarted -> grace over: %v, every member up and answered: %v (rise 2 at 1s)",
		fresh.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if n := scrape(t, admin)["glbdns_health_grace_expired_total{}"]; n != 1 {
		t.Errorf("glbdns_health_grace_expired_total %v after the recovery, want still 1", n)
	}
}
