package health

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// loadReport is a report of up members with load readings: "pool/member" → value, each
// aged age, of a 1s interval.
func loadReport(id string, age time.Duration, loads map[string]float64) *api.Report {
	rep := &api.Report{Reporter: id, Index: 1}
	for m, v := range loads {
		pool, member, _ := strings.Cut(m, "/")
		rep.Members = append(rep.Members, api.MemberReport{Pool: pool, Member: member, Status: api.StatusUp,
			Load: &api.LoadReport{Value: v, At: time.Unix(0, 0), AgeSeconds: age.Seconds(), IntervalSeconds: 1}})
	}
	return rep
}

func TestLoadMerge(t *testing.T) {
	c := newClock()
	snap := snapOf(t, "p:a,b,c")
	h := newHealth(t, c, Config{Reporters: []string{"r1", "r2", "r3"}})
	view := func() string {
		h.step(c.now())
		v := h.For(snap).(*View)
		var b []string
		for _, m := range snap.Members {
			if l, ok := v.Load(m); ok {
				b = append(b, fmt.Sprint(l))
			} else {
				b = append(b, "-")
			}
		}
		return strings.Join(b, " ")
	}
	if got := view(); got != "- - -" {
		t.Fatalf("no report: %s", got)
	}
	h.Report("r1", loadReport("h1", 0, map[string]float64{"p/a": 10, "p/b": 1}), c.now())
	h.Report("r2", loadReport("h2", 0, map[string]float64{"p/a": 30, "p/b": 2}), c.now())
	h.Report("r3", loadReport("h3", 0, map[string]float64{"p/a": 11}), c.now())
	if got := view(); got != "11 1.5 -" {
		t.Errorf("median of fresh readings: %s, want 11 1.5 -", got)
	}
	// A reading 3 intervals + 1s old is stale, dated by its age, not by its timestamp.
	h.Report("r3", loadReport("h3", 4*time.Second, map[string]float64{"p/a": 11}), c.now())
	if got := view(); got != "20 1.5 -" {
		t.Errorf("stale reading of r3 counted: %s, want 20 1.5 -", got)
	}
	c.add(3500 * time.Millisecond)
	if got := view(); got != "20 1.5 -" {
		t.Errorf("3.5s later: %s, want 20 1.5 -", got)
	}
	c.add(time.Second)
	if got := view(); got != "- - -" {
		t.Errorf("4.5s later every reading is stale: %s", got)
	}
	// A reporter that goes stale takes its readings with it.
	h.Report("r1", loadReport("h1", 0, map[string]float64{"p/c": 5}), c.now())
	c.add(DefaultStaleAfter - time.Second)
	h.Report("r2", loadReport("h2", 0, map[string]float64{"p/c": 7}), c.now())
	c.add(2 * time.Second)
	h.Report("r3", loadReport("h3", 0, map[string]float64{"p/c": 9}), c.now())
	if got := view(); got != "- - 8" {
		t.Errorf("r1 stale: %s, want - - 8 (median of 7 and 9)", got)
	}
}

// TestLoadChangeRebuilds: a new reading alone is a change (OnChange), so the DNS server
// rebuilds its view; the same reading again is not.
func TestLoadChangeRebuilds(t *testing.T) {
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1"}})
	h.Report("r1", loadReport("h1", 0, map[string]float64{"p/a": 1}), c.now())
	h.step(c.now())
	h.Report("r1", loadReport("h1", 0, map[string]float64{"p/a": 2}), c.now())
	if changed, _ := h.step(c.now()); !changed {
		t.Error("a new load reading is no change")
	}
	h.Report("r1", loadReport("h1", 0, map[string]float64{"p/a": 2}), c.now())
	if changed, _ := h.step(c.now()); changed {
		t.Error("the same load reading is a change")
	}
}
