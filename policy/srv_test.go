package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

const srvPools = `
pool "a" {
  port        = 8080
  min_healthy = 2
  member "a1" {
    address = "192.0.2.1"
  }
  member "a2" {
    address = "192.0.2.2"
    weight  = 3
  }
  member "a3" {
    address = "2001:db8::3"
    port    = 9090
  }
}
pool "b" {
  port = 8081
  member "b1" {
    address = "192.0.2.11"
  }
}
`

// srvLines is "priority weight port target" for each record of sel, sorted (the order
// within a priority is the method's, a round-robin turn for instance, and means nothing
// to an SRV client).
func srvLines(svc *Service, sel SRVSelection) []string {
	var out []string
	for _, r := range sel.Records {
		w, port, target, ok := svc.SRV(r.Member)
		if !ok {
			out = append(out, "not a member: "+r.Member.ID())
			continue
		}
		out = append(out, fmt.Sprintf("%d %d %d %s", r.Priority, w, port, target))
	}
	slices.Sort(out)
	return out
}

func TestSelectSRV(t *testing.T) {
	snap := load(t, srvPools+`
service "fo.glb.example.com" {
  policy  = "failover"
  pools   = ["a", "b"]
  answers = 0
}
service "rr.glb.example.com" {
  pools   = ["a", "b"]
  answers = 2
}
`)
	fo := service(t, snap, "fo.glb.example.com.")
	rr := service(t, snap, "rr.glb.example.com.")
	c := client4("198.51.100.1")
	down := func(ids ...int) Health {
		d := make(downSet, len(snap.Members))
		for _, i := range ids {
			d[i] = true
		}
		return d
	}
	cases := []struct {
		name string
		svc  *Service
		h    Health
		want []string
	}{
		{"failover: pools by priority", fo, AllUp{}, []string{
			"0 1 8080 a1.a.fo.glb.example.com.", "0 1 9090 a3.a.fo.glb.example.com.", "0 3 8080 a2.a.fo.glb.example.com.",
			"1 1 8081 b1.b.fo.glb.example.com."}},
		// min_healthy 2 counts per family, as for A: a1 down leaves a2 alone among the
		// IPv4 members (below 2) but a3 is all of the IPv6 ones, so the pool is still up.
		{"a pool up by one family", fo, down(0), []string{
			"0 1 9090 a3.a.fo.glb.example.com.", "0 3 8080 a2.a.fo.glb.example.com.", "1 1 8081 b1.b.fo.glb.example.com."}},
		{"a pool below min_healthy in every family leaves", fo, down(0, 2), []string{"0 1 8081 b1.b.fo.glb.example.com."}},
		{"all down: fail open at priority 0", fo, down(0, 1, 2, 3), []string{
			"0 1 8080 a1.a.fo.glb.example.com.", "0 1 9090 a3.a.fo.glb.example.com.", "0 3 8080 a2.a.fo.glb.example.com."}},
		{"plain: one priority, answers of them", rr, AllUp{}, []string{
			"0 1 8080 a1.a.rr.glb.example.com.", "0 3 8080 a2.a.rr.glb.example.com."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := srvLines(tc.svc, tc.svc.SelectSRV(&c, tc.h, nil, nil))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestSRVLeavesWithA: a member the health view marks down leaves the SRV answer in the
// same view that takes it out of A answers; there is no SRV state of its own.
func TestSRVLeavesWithA(t *testing.T) {
	snap := load(t, srvPools+`
service "w.glb.example.com" {
  policy  = "weighted"
  pools   = ["a"]
  answers = 0
}`)
	svc := service(t, snap, "w.glb.example.com.")
	c := client4("198.51.100.1")
	h := make(downSet, len(snap.Members))
	h[1] = true // a2
	a := svc.Select(c, dns.TypeA, h, nil)
	srv := svc.SelectSRV(&c, h, nil, nil)
	if len(a.Members) != 1 || a.Members[0].Name != "a1" {
		t.Errorf("A: %v, want a1 alone", names(a.Members))
	}
	for _, r := range srv.Records {
		if r.Member.Name == "a2" {
			t.Errorf("SRV still lists a2, which is down")
		}
	}
	if len(srv.Records) != 2 {
		t.Errorf("SRV: %d records, want a1 and a3", len(srv.Records))
	}
}

func TestSelectSRVDoesNotAllocate(t *testing.T) {
	snap := load(t, srvPools+`
service "fo.glb.example.com" {
  policy  = "failover"
  pools   = ["a", "b"]
  answers = 0
}
service "h.glb.example.com" {
  policy  = "client_subnet_hash"
  pools   = ["a", "b"]
  answers = 2
}`)
	c := Client{Addr: netip.MustParseAddr("192.0.2.0"), SourcePrefix: 24, ECS: true}
	var h Health = downSet{false, true}
	for _, svc := range snap.Services {
		t.Run(svc.Name, func(t *testing.T) {
			members, dst := make([]*Member, 0, 8), make([]SRVRecord, 0, 8)
			if n := testing.AllocsPerRun(100, func() { dst = svc.SelectSRV(&c, h, members, dst).Records }); n != 0 {
				t.Errorf("%v allocations per SelectSRV, want 0", n)
			}
		})
	}
}

// TestWeightedClientSubnetHash is weighted rendezvous hashing through Select: over 10,000
// /24s each member's share is its weight's within 3 points, and a member going down moves
// only the subnets it held.
func TestWeightedClientSubnetHash(t *testing.T) {
	snap := load(t, `
pool "p" {
  member "m1" {
    address = "192.0.2.1"
    weight  = 1
  }
  member "m2" {
    address = "192.0.2.2"
    weight  = 2
  }
  member "m3" {
    address = "192.0.2.3"
    weight  = 3
  }
  member "m4" {
    address = "192.0.2.4"
    weight  = 4
  }
}
service "h.glb.example.com" {
  policy = "client_subnet_hash"
  pools  = ["p"]
}`)
	svc := service(t, snap, "h.glb.example.com.")
	const subnets = 10000
	subnet := func(i int) Client { return client4(fmt.Sprintf("10.%d.%d.7", i/256, i%256)) }
	before := make([]*Member, subnets)
	count := map[string]int{}
	for i := range subnets {
		before[i] = svc.Select(subnet(i), dns.TypeA, AllUp{}, nil).Members[0]
		count[before[i].Name]++
	}
	for _, m := range snap.Members {
		share, want := float64(count[m.Name])/subnets, float64(m.Weight)/10
		t.Logf("%s weight %d: %.2f%% of %d subnets (want %.0f%%)", m.Name, m.Weight, 100*share, subnets, 100*want)
		if share < want-0.03 || share > want+0.03 {
			t.Errorf("%s: share %.4f, want %.2f ± 0.03", m.Name, share, want)
		}
	}
	for gone := range snap.Members {
		h := make(downSet, len(snap.Members))
		h[gone] = true
		moved := 0
		for i := range subnets {
			after := svc.Select(subnet(i), dns.TypeA, h, nil).Members[0]
			if before[i].Index != gone && after != before[i] {
				moved++
			}
		}
		t.Logf("%s down (held %d subnets): %d other subnets moved", snap.Members[gone].Name, count[snap.Members[gone].Name], moved)
		if moved != 0 {
			t.Errorf("%s down: %d subnets it did not hold moved", snap.Members[gone].Name, moved)
		}
	}
}
