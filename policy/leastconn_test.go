package policy

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

const lcPolicy = `
pool "p" {
  member "a" {
    address = "192.0.2.10"
  }
  member "b" {
    address = "192.0.2.11"
  }
  member "c" {
    address = "192.0.2.12"
    weight  = 2
  }
  check "http" {
    port     = 8080
    path     = "/healthz"
    interval = "1s"
    timeout  = "500ms"
  }
  load {
    metric = "active_connections"
    labels = { state = "open" }
  }
}

service "lc.glb.example.com" {
  policy = "least_connections"
  pools  = ["p"]
}
`

func TestLoadSignalDefaults(t *testing.T) {
	snap := load(t, lcPolicy)
	l := snap.Pools[0].Load
	want := LoadSignal{Type: "prometheus", Scheme: "http", Port: 8080, Path: "/metrics", Metric: "active_connections",
		Labels: map[string]string{"state": "open"}, Interval: time.Second, Timeout: 500 * time.Millisecond}
	if l == nil || l.Type != want.Type || l.Scheme != want.Scheme || l.Port != want.Port || l.Path != want.Path ||
		l.Metric != want.Metric || l.Labels["state"] != "open" || l.Interval != want.Interval || l.Timeout != want.Timeout {
		t.Fatalf("load = %+v, want %+v", l, want)
	}
	for _, m := range snap.Pools[0].Members {
		if m.Load != l {
			t.Errorf("member %s: load %p, want the pool's %p", m.Name, m.Load, l)
		}
	}
	if got := snap.Services[0].Method.String(); got != "least_connections" {
		t.Errorf("method %q", got)
	}
}

func TestLoadSignalErrors(t *testing.T) {
	pool := func(load string) string {
		return "pool \"p\" {\n  member \"a\" {\n    address = \"192.0.2.10\"\n  }\n" + load + "}\n"
	}
	for _, c := range []struct {
		name, src, want string
	}{
		{"no load signal", pool("") + "service \"lc.glb.example.com\" {\n  policy = \"least_connections\"\n  pools  = [\"p\"]\n}\n",
			`test.hcl:12,13-16: Pool without load signal`},
		{"pool method without load", pool("  method = \"least_connections\"\n") + "service \"f.glb.example.com\" {\n  policy = \"failover\"\n  pools  = [\"p\"]\n}\n",
			`test.hcl:13,13-16: Pool without load signal`},
		{"service method without load", pool("") + "service \"f.glb.example.com\" {\n  policy = \"failover\"\n  method = \"least_connections\"\n  pools  = [\"p\"]\n}\n",
			`test.hcl:13,13-16: Pool without load signal`},
		{"missing metric", pool("  load {\n    type = \"prometheus\"\n  }\n"), `test.hcl:9,3-7: Missing load metric`},
		{"missing field", pool("  load {\n    type = \"json\"\n  }\n"), `test.hcl:9,3-7: Missing load field`},
		{"field on number", pool("  load {\n    type  = \"number\"\n    field = \"a\"\n  }\n"), `test.hcl:11,5-10: Unsupported argument`},
		{"bad type", pool("  load {\n    type = \"xml\"\n  }\n"), `test.hcl:10,12-17: Invalid type`},
		{"bad metric", pool("  load {\n    metric = \"1x\"\n  }\n"), `test.hcl:10,14-18: Invalid metric`},
		{"bad field", pool("  load {\n    type  = \"json\"\n    field = \"a..b\"\n  }\n"), `test.hcl:11,13-19: Invalid field`},
		{"timeout", pool("  load {\n    metric   = \"x\"\n    interval = \"1s\"\n    timeout  = \"1s\"\n  }\n"), `test.hcl:12,16-20: Invalid timeout`},
		{"two blocks", pool("  load {\n    metric = \"x\"\n  }\n  load {\n    metric = \"y\"\n  }\n"), `test.hcl:12,3-7: Duplicate load block`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := Load([]File{{Name: "test.hcl", Data: []byte(testZone + c.src)}})
			if !diags.HasErrors() || !strings.HasPrefix(diags.Error(), c.want) {
				t.Fatalf("diags = %v, want %q", diags, c.want)
			}
		})
	}
}

// TestLeastConnShares checks the rule: shares of answers in proportion to spare capacity,
// a stale member at its weight, all-idle or no readings as weighted.
func TestLeastConnShares(t *testing.T) {
	snap := load(t, lcPolicy)
	s := service(t, snap, "lc.glb.example.com.")
	nan := math.NaN()
	for _, c := range []struct {
		name  string
		loads loadView
		want  [3]float64 // expected share of a, b, c
	}{
		// Per unit of weight plus the slack of 5: a 5, b 15, c 15, mean 12.5; a gets
		// 1 × (1.5 − 0.4) / 0.5 = 2.2, b 0.6, c 2 × 0.6.
		{"spare capacity", loadView{0, 10, 20}, [3]float64{0.55, 0.15, 0.30}},
		// a at 45 against a mean of 20.75: beyond the headroom, no share.
		{"beyond headroom", loadView{40, 5, 20}, [3]float64{0, 0.3933, 0.6067}},
		// b stale: its weight; a and c are both at the mean of the fresh ones.
		{"stale", loadView{10, nan, 20}, [3]float64{0.25, 0.25, 0.5}},
		{"idle", loadView{0, 0, 0}, [3]float64{0.25, 0.25, 0.5}},
		{"no readings", loadView{nan, nan, nan}, [3]float64{0.25, 0.25, 0.5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 40000
			var got [3]int
			var buf []*Member
			for range n {
				sel := s.Select(client4("198.51.100.1"), 1, c.loads, buf[:0])
				buf = sel.Members[:0]
				got[sel.Members[0].Index]++
			}
			for i := range got {
				if share := float64(got[i]) / n; math.Abs(share-c.want[i]) > 0.015 {
					t.Errorf("member %d: share %.3f, want %.3f", i, share, c.want[i])
				}
			}
		})
	}
}

func TestLeastConnAllocs(t *testing.T) {
	snap := load(t, lcPolicy+`
service "lc2.glb.example.com" {
  policy  = "least_connections"
  pools   = ["p"]
  answers = 2
}
`)
	for _, name := range []string{"lc.glb.example.com.", "lc2.glb.example.com."} {
		s := service(t, snap, name)
		var loads Health = loadView{3, 5, 7} // boxed once, as the server's view is
		buf := make([]*Member, 0, 8)
		if a := testing.AllocsPerRun(1000, func() {
			c := client4("198.51.100.1")
			sel := s.SelectFor(&c, 1, loads, buf[:0])
			if len(sel.Members) == 0 {
				t.Fatal("no answer")
			}
		}); a != 0 {
			t.Errorf("%s: %v allocs per Select, want 0", name, a)
		}
	}
}

// TestLoadSignalMemberPort: a load block that sets no port reads each member on its own
// check's port, which the member may override; one that sets a port reads every member
// on it.
func TestLoadSignalMemberPort(t *testing.T) {
	snap := load(t, `
pool "p" {
  member "a" {
    address = "192.0.2.10"
  }
  member "b" {
    address = "192.0.2.11"
    check "http" {
      port = 9090
    }
  }
  check "http" {
    port = 8080
  }
  load {
    type = "number"
  }
}

pool "q" {
  member "c" {
    address = "192.0.2.12"
    check "http" {
      port = 9090
    }
  }
  check "http" {
    port = 8080
  }
  load {
    type = "number"
    port = 7070
  }
}
`)
	got := map[string]int{}
	for _, m := range snap.Members {
		got[m.Name] = m.Load.Port
	}
	if got["a"] != 8080 || got["b"] != 9090 || got["c"] != 7070 {
		t.Errorf("load ports %v, want a 8080, b 9090, c 7070", got)
	}
	if snap.Members[0].Load != snap.Pools[0].Load {
		t.Error("member a does not share its pool's load signal")
	}
}

// TestLeastConnLargePool: past the 32 shares kept on the stack the shares are recomputed
// per draw, to the same effect.
func TestLeastConnLargePool(t *testing.T) {
	var b strings.Builder
	b.WriteString("pool \"p\" {\n  load {\n    type = \"number\"\n  }\n")
	for i := range 40 {
		b.WriteString("  member \"m" + string(rune('A'+i/26)) + string(rune('a'+i%26)) + "\" {\n    address = \"192.0.2." + strconv.Itoa(i+1) + "\"\n  }\n")
	}
	b.WriteString("}\nservice \"lc.glb.example.com\" {\n  policy  = \"least_connections\"\n  pools   = [\"p\"]\n  answers = 3\n}\n")
	snap := load(t, b.String())
	s := service(t, snap, "lc.glb.example.com.")
	loads := make(loadView, 40)
	loads[0] = 1000 // far beyond the headroom: never answered while others have room
	var h Health = loads
	buf := make([]*Member, 0, 40)
	counts := make([]int, 40)
	for range 4000 {
		c := client4("198.51.100.1")
		sel := s.SelectFor(&c, 1, h, buf[:0])
		if len(sel.Members) != 3 {
			t.Fatalf("%d answers", len(sel.Members))
		}
		for _, m := range sel.Members {
			counts[m.Index]++
		}
	}
	if counts[0] != 0 {
		t.Errorf("the loaded member was answered %d times", counts[0])
	}
	for i := 1; i < 40; i++ {
		if counts[i] < 200 || counts[i] > 420 { // 12000 answers over 39 members: about 308 each
			t.Errorf("member %d: %d answers, want about 308", i, counts[i])
		}
	}
	if a := testing.AllocsPerRun(100, func() {
		c := client4("198.51.100.1")
		s.SelectFor(&c, 1, h, buf[:0])
	}); a != 0 {
		t.Errorf("%v allocs per Select", a)
	}
}
