package dnsserver

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/glbdns/glbdns/policy"
)

// gather reads every sample of reg into a map keyed `name{label="value",...}` (labels
// sorted); histograms appear as name_count and name_sum.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			key := func(suffix string) string {
				return mf.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// TestMetricsExactCounts sends known traffic through Handle and reads the registry.
func TestMetricsExactCounts(t *testing.T) {
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(loadSnapshot(t))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())

	src := netip.MustParseAddrPort("198.51.100.7:5353")
	send := func(m *dns.Msg, tcp bool) []byte {
		return s.Handle(packed(t, m), src, tcp, make([]byte, 0, 512))
	}
	for i := 0; i < 3; i++ {
		send(newQuery("rr.glb.example.com.", dns.TypeA), false)
	}
	send(newQuery("static.glb.example.com.", dns.TypeA), true)
	send(newQuery("nothere.glb.example.com.", dns.TypeA), false)
	send(newQuery("www.example.org.", dns.TypeA), false)
	send(newQuery("static.glb.example.com.", dns.TypeNAPTR), false)
	send(withECS(newQuery("hash.glb.example.com.", dns.TypeA), "203.0.113.0/24"), false)
	if r := send(newQuery("big.glb.example.com.", dns.TypeTXT), false); r == nil {
		t.Fatal("no reply for big TXT")
	}
	if r := s.Handle([]byte{1, 2, 3}, src, false, nil); r != nil {
		t.Fatal("a 3-byte message got a reply")
	}

	got := gather(t, reg)
	const z = `zone="glb.example.com."`
	want := map[string]float64{
		`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NOERROR",` + z + `}`:        4,
		`glbdns_dns_requests_total{proto="tcp",qtype="A",rcode="NOERROR",` + z + `}`:        1,
		`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NXDOMAIN",` + z + `}`:       1,
		`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="REFUSED",zone="none"}`:      1,
		`glbdns_dns_requests_total{proto="udp",qtype="other",rcode="NOERROR",` + z + `}`:    1,
		`glbdns_dns_requests_total{proto="udp",qtype="TXT",rcode="NOERROR",` + z + `}`:      1,
		`glbdns_dns_response_size_bytes_count{proto="udp"}`:                                 8,
		`glbdns_dns_response_size_bytes_count{proto="tcp"}`:                                 1,
		`glbdns_dns_truncated_responses_total{}`:                                            1,
		`glbdns_dns_ecs_requests_total{}`:                                                   1,
		`glbdns_dns_dropped_requests_total{}`:                                               1,
		`glbdns_dns_panics_total{}`:                                                         0,
		`glbdns_policy_answers_total{member="r1",pool="rr",service="rr.glb.example.com."}`:  1,
		`glbdns_policy_answers_total{member="r2",pool="rr",service="rr.glb.example.com."}`:  1,
		`glbdns_policy_answers_total{member="r3",pool="rr",service="rr.glb.example.com."}`:  1,
		`glbdns_policy_answers_total{member="a",pool="web",service="www.glb.example.com."}`: 0,
		`glbdns_policy_members{pool="rr"}`:                                                  3,
		`glbdns_policy_members_usable{pool="rr"}`:                                           3,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	var hash float64
	for k, v := range got {
		if strings.HasPrefix(k, "glbdns_policy_answers_total{") && strings.Contains(k, `service="hash.glb.example.com."`) {
			hash += v
		}
	}
	if hash != 1 {
		t.Errorf("answers of hash.glb.example.com. = %v, want 1", hash)
	}

	t.Run("counts carry across a reload", func(t *testing.T) {
		s.SetSnapshot(loadSnapshot(t)) // a new snapshot with the same members
		send(newQuery("rr.glb.example.com.", dns.TypeA), false)
		got := gather(t, reg)
		var sum float64
		for _, m := range []string{"r1", "r2", "r3"} {
			sum += got[`glbdns_policy_answers_total{member="`+m+`",pool="rr",service="rr.glb.example.com."}`]
		}
		if sum != 4 {
			t.Errorf("rr answers after reload = %v, want 4", sum)
		}
		if g := got[`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NOERROR",`+z+`}`]; g != 5 {
			t.Errorf("udp A NOERROR after reload = %v, want 5", g)
		}
		a := s.AnswerCounts()
		if n, ok := a.Get("rr.glb.example.com.", "rr", "r1"); !ok || n < 1 {
			t.Errorf("AnswerCounts r1 = %d, %v", n, ok)
		}
	})
}

// TestMetricsLint lints the gathered names with promlint (CoreDNS's metric naming test).
func TestMetricsLint(t *testing.T) {
	s := New(Config{Logger: testLogger()})
	s.SetSnapshot(loadSnapshot(t))
	s.Handle(packed(t, newQuery("rr.glb.example.com.", dns.TypeA)), netip.MustParseAddrPort("192.0.2.1:53"), false, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestQtypeRcodeBuckets checks that label values stay within their fixed sets.
func TestQtypeRcodeBuckets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"A", dns.TypeA, "A"}, {"CAA above 255", dns.TypeCAA, "CAA"}, {"HTTPS", dns.TypeHTTPS, "HTTPS"},
		{"ANY", dns.TypeANY, "ANY"}, {"NAPTR is rare", dns.TypeNAPTR, "other"}, {"zero", 0, "other"},
		{"private use", 65280, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := qtypeNames[qtypeIndex(tc.qtype)]; got != tc.want {
				t.Errorf("qtype %d → %s, want %s", tc.qtype, got, tc.want)
			}
		})
	}
	for rc, want := range map[int]string{0: "NOERROR", 3: "NXDOMAIN", 5: "REFUSED", 16: "BADVERS", 9: "other", -1: "other"} {
		if got := rcodeNames[rcodeIndex(rc)]; got != want {
			t.Errorf("rcode %d → %s, want %s", rc, got, want)
		}
	}
}

// BenchmarkMetricsPerQuery is what the metrics add to one load-balanced query: one
// observe and one answered. Run with -cpu 1,2: "own-shard" is how the server records (each
// UDP worker into its own shard), "shared-shard" is what it costs when two cores write the
// same counters, which the per-worker shards exist to avoid.
func BenchmarkMetricsPerQuery(b *testing.B) {
	for _, bc := range []struct {
		name   string
		shared bool
	}{{"own-shard", false}, {"shared-shard", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{Logger: testLogger()})
			snap := loadSnapshot(b)
			s.SetSnapshot(snap)
			st := s.state.Load()
			svc := snap.Services[0]
			mem := svc.Pools[0].Members[0]
			zi := st.zoneIndex(snap.Zones.Zones()[0])
			var workers atomic.Int32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				sh := 0
				if !bc.shared {
					sh = int(workers.Add(1)) // as the server numbers its UDP workers
				}
				for pb.Next() {
					s.metrics.observe(sh, zi, dns.TypeA, dns.RcodeSuccess, protoUDP, 80, false, false)
					s.metrics.answered(sh, st.answers, svc, mem)
				}
			})
		})
	}
}

// TestMetricsOff checks the benchmarks' switch (metrics.off): replies are unchanged and
// nothing is recorded, on the fast and the general path alike.
func TestMetricsOff(t *testing.T) {
	on, off := fastServer(t), noMetrics(fastServer(t))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(off.Collector())
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	for _, m := range []*dns.Msg{
		newQuery("rr.glb.example.com.", dns.TypeA),                                // fast
		newQuery("static.glb.example.com.", dns.TypeMX),                           // general
		withECS(newQuery("hash.glb.example.com.", dns.TypeA), "203.0.113.0/24"),   // fast, ECS
		withECS(newQuery("x.wild.glb.example.com.", dns.TypeA), "203.0.113.0/24"), // general, ECS
		newQuery("big.glb.example.com.", dns.TypeTXT),                             // truncated
	} {
		req := packed(t, m)
		a, b := on.Handle(req, src, false, nil), off.Handle(req, src, false, nil)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: replies differ with metrics off:\non  %x\noff %x", m.Question[0].Name, a, b)
		}
	}
	if r := off.Handle([]byte{1, 2, 3}, src, false, nil); r != nil {
		t.Fatal("a 3-byte message got a reply")
	}
	for k, v := range gather(t, reg) {
		if v != 0 && (strings.HasPrefix(k, "glbdns_dns_") || strings.HasPrefix(k, "glbdns_policy_answers_total")) {
			t.Errorf("%s = %v with metrics off, want 0", k, v)
		}
	}
}

// TestMetricsSumShards records from more callers than there are shards (shard numbers wrap)
// and checks that a scrape and AnswerCounts add every shard up, each counter once.
func TestMetricsSumShards(t *testing.T) {
	for workers, want := range map[int]int{0: minShards, 1: minShards, 8: 8, 9: 16, 20: 32, 100000: maxShards} {
		if got := shardsFor(workers); got != want {
			t.Errorf("shardsFor(%d) = %d, want %d", workers, got, want)
		}
	}
	s := New(Config{Logger: testLogger(), UDPWorkers: 20})
	snap := loadSnapshot(t)
	s.SetSnapshot(snap)
	st := s.state.Load()
	svc := snap.Services[0]
	mem := svc.Pools[0].Members[0]
	z := snap.Zones.Zones()[0]
	const calls = 3*32 + 5 // every one of the 32 shards, some of them four times
	for sh := 0; sh < calls; sh++ {
		s.metrics.observe(sh, st.zoneIndex(z), dns.TypeA, dns.RcodeSuccess, protoUDP, 80, false, true)
		s.metrics.answered(sh, st.answers, svc, mem)
		s.metrics.dropped(sh)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	got := gather(t, reg)
	for k, want := range map[string]float64{
		fmt.Sprintf(`glbdns_dns_requests_total{proto="udp",qtype="A",rcode="NOERROR",zone=%q}`, z.Origin()): calls,
		`glbdns_dns_response_size_bytes_count{proto="udp"}`:                                                 calls,
		`glbdns_dns_response_size_bytes_sum{proto="udp"}`:                                                   80 * calls,
		`glbdns_dns_ecs_requests_total{}`:                                                                   calls,
		`glbdns_dns_dropped_requests_total{}`:                                                               calls,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if n, ok := s.AnswerCounts().Get(svc.Name, svc.Pools[0].Name, mem.Name); !ok || n != calls {
		t.Errorf("answer count = %d, %v, want %d", n, ok, calls)
	}
}

// TestAnswerCountsCarryThroughCompiler: answer counters carry across snapshots that a
// policy.Compiler built, whether it reused a service (same object: its range is copied)
// or compiled it anew (by key), and a service that leaves and comes back resumes its count.
func TestAnswerCountsCarryThroughCompiler(t *testing.T) {
	const zone = "zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\npool \"p\" {\n  member \"a\" {\n    address = \"192.0.2.1\"\n  }\n}\n"
	svc := func(name, ttl string) policy.File {
		return policy.File{Name: "svc-" + name + ".hcl", Data: []byte("service \"" + name + ".glb.test\" {\n  pools = [\"p\"]\n  ttl = " + ttl + "\n}\n")}
	}
	var cc policy.Compiler
	load := func(files ...policy.File) *policy.Snapshot {
		t.Helper()
		snap, diags := cc.Load(append([]policy.File{{Name: "zone.hcl", Data: []byte(zone)}}, files...))
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return snap
	}
	s := New(Config{Logger: testLogger()})
	ask := func(name string, n int) {
		req, _ := newQuery(name, dns.TypeA).Pack()
		for range n {
			if s.Handle(req, netip.MustParseAddrPort("192.0.2.99:1000"), false, nil) == nil {
				t.Fatal("no reply")
			}
		}
	}
	count := func(service string) uint64 {
		n, _ := s.AnswerCounts().Get(service+".glb.test.", "p", "a")
		return n
	}
	first := load(svc("s1", "30"), svc("s2", "30"))
	s.SetSnapshot(first)
	ask("s1.glb.test.", 3)
	ask("s2.glb.test.", 5)

	// s1 unchanged (the compiler reuses it), s2 changed (compiled anew), s3 new.
	second := load(svc("s1", "30"), svc("s2", "60"), svc("s3", "30"))
	if first.Services[0] != second.Services[0] {
		t.Fatal("the compiler did not reuse s1: the test would not cover the copied range")
	}
	s.SetSnapshot(second)
	ask("s1.glb.test.", 1)
	if got := count("s1"); got != 4 {
		t.Errorf("s1 (reused) = %d, want 4", got)
	}
	if got := count("s2"); got != 5 {
		t.Errorf("s2 (compiled anew) = %d, want 5", got)
	}
	if got := count("s3"); got != 0 {
		t.Errorf("s3 (new) = %d, want 0", got)
	}
	// s2 leaves, then comes back: its count resumes.
	s.SetSnapshot(load(svc("s1", "30"), svc("s3", "30")))
	s.SetSnapshot(load(svc("s1", "30"), svc("s2", "60"), svc("s3", "30")))
	if got := count("s2"); got != 5 {
		t.Errorf("s2 back after leaving = %d, want 5", got)
	}
	if got := count("s1"); got != 4 {
		t.Errorf("s1 after two more reloads = %d, want 4", got)
	}
}
