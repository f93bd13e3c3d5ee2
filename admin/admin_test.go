package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/policy"
)

// newAdmin serves testdata/state.hcl (no sockets: queries go through Handle) with
// web/b down, behind a real HTTP server.
func newAdmin(t *testing.T) (*Admin, *dnsserver.Server, *httptest.Server) {
	t.Helper()
	snap, diags := policy.LoadPath("testdata/state.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := dnsserver.New(dnsserver.Config{Logger: log})
	h := health.New(health.Config{Reporters: []string{"r1"}, Logger: log, OnChange: srv.HealthChanged})
	h.Report("r1", &api.Report{Reporter: "r1", Index: 2, Members: []api.MemberReport{
		{Pool: "web", Member: "a", Status: api.StatusUp}, {Pool: "web", Member: "b", Status: api.StatusDown, Reason: "http status 503"}}}, time.Now())
	srv.SetHealthSource(h)
	srv.SetSnapshot(snap)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); h.View().Up(snap.PoolByName["web"].Members[1]); {
		if time.Now().After(deadline) {
			t.Fatal("web/b's report did not take it down within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	a := New(Config{Server: srv, Health: h, Logger: log,
		Policy: func() api.PolicyStatus {
			return api.PolicyStatus{Hash: snap.Hash, Generation: 1, LastResult: "success"}
		}})
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	return a, srv, hs
}

func ask(t *testing.T, srv *dnsserver.Server, name string, n int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	req, _ := m.Pack()
	for i := 0; i < n; i++ {
		if srv.Handle(req, netip.MustParseAddrPort("192.0.2.99:1000"), false, nil) == nil {
			t.Fatal("no reply")
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestStateShares(t *testing.T) {
	a, srv, hs := newAdmin(t)
	a.Sample() // window starts here
	ask(t, srv, "rr.glb.example.com.", 30)
	ask(t, srv, "v4only.glb.example.com.", 10) // web/b is down: all to web/a

	code, body := get(t, hs.URL+"/v1/state")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var st api.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	type row struct {
		status  string
		answers uint64
		share   float64
	}
	got := map[string]row{}
	for _, s := range st.Services {
		for _, p := range s.Pools {
			for _, m := range p.Members {
				got[s.Name+" "+m.ID] = row{m.Status, m.Answers, m.Share}
			}
		}
	}
	for key, want := range map[string]row{
		"rr.glb.example.com. rr/r1":     {"up", 10, 1.0 / 3},
		"rr.glb.example.com. rr/r2":     {"up", 10, 1.0 / 3},
		"v4only.glb.example.com. web/a": {"up", 10, 1},
		"v4only.glb.example.com. web/b": {"down", 0, 0},
	} {
		g := got[key]
		if g.status != want.status || g.answers != want.answers || g.share < want.share-1e-9 || g.share > want.share+1e-9 {
			t.Errorf("%s = %+v, want %+v", key, g, want)
		}
	}
	if st.Policy.Generation != 1 || st.Policy.LastResult != "success" {
		t.Errorf("policy = %+v", st.Policy)
	}

	t.Run("window slides", func(t *testing.T) {
		a.cfg.Samples = 1
		a.Sample() // the only sample now: earlier answers leave the window
		ask(t, srv, "rr.glb.example.com.", 3)
		st := a.State()
		for _, s := range st.Services {
			if s.Name == "rr.glb.example.com." && s.Answers != 3 {
				t.Errorf("rr answers in window = %d, want 3", s.Answers)
			}
		}
	})
}

// TestMemberStates: every state of api.MemberState.State, with its reason.
func TestMemberStates(t *testing.T) {
	a, _, _ := newAdmin(t)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	a.cfg.Health.SetDrains([]api.Drain{{Pool: "rr", Member: "r1", Until: until, Reason: "kernel upgrade"}})
	got := map[string]api.MemberState{}
	for _, s := range a.State().Services {
		for _, p := range s.Pools {
			for _, m := range p.Members {
				got[m.ID] = m
			}
		}
	}
	for id, want := range map[string]struct{ state, reason, status string }{
		"web/a":   {"up", "", "up"},
		"web/b":   {"down", "http status 503", "down"},
		"rr/r1":   {"drained", "kernel upgrade", "down"},
		"spare/y": {"unknown", "", "up"},
		"spare/z": {"disabled", "", "up"},
	} {
		m := got[id]
		if m.State != want.state || m.Reason != want.reason || m.Status != want.status {
			t.Errorf("%s: state %q reason %q status %q, want %+v", id, m.State, m.Reason, m.Status, want)
		}
	}
	if d := got["rr/r1"].DrainedUntil; d == nil || !d.Equal(until) || !got["rr/r1"].Drained {
		t.Errorf("rr/r1: drained_until %v, want %v", d, until)
	}
	if got["web/b"].Health != "down" || got["spare/y"].Health != "unknown" {
		t.Errorf("health: web/b %q, spare/y %q", got["web/b"].Health, got["spare/y"].Health)
	}
}

func TestStatusPage(t *testing.T) {
	_, srv, hs := newAdmin(t)
	ask(t, srv, "v4only.glb.example.com.", 4)
	code, body := get(t, hs.URL+"/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`data-member="web/a" data-state="up" data-status="up"`),
		regexp.MustCompile(`data-member="web/b" data-state="down" data-status="down"`),
		regexp.MustCompile(`<span class="badge down">down</span> <span class="reason">http status 503</span>`),
		regexp.MustCompile(`fetch\("/v1/state"`),
		regexp.MustCompile(`width:100%`),
	} {
		if !want.MatchString(body) {
			t.Errorf("status page lacks %s", want)
		}
	}
	// Self-contained: no external script, style or image.
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
		t.Error("status page refers to an external asset")
	}
	if strings.Contains(body, "ZgotmplZ") {
		t.Error("template escaped a value to ZgotmplZ")
	}
}

func TestProbes(t *testing.T) {
	srv := dnsserver.New(dnsserver.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var ready atomic.Bool
	a := New(Config{Server: srv, Ready: ready.Load})
	hs := httptest.NewServer(a.Handler())
	defer hs.Close()
	for _, tc := range []struct {
		name  string
		ready bool
		path  string
		code  int
	}{
		{"healthz before ready", false, "/healthz", 200},
		{"readyz before ready", false, "/readyz", 503},
		{"readyz when ready", true, "/readyz", 200},
		{"metrics", true, "/metrics", 200},
		{"unknown path", true, "/nope", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			if code, _ := get(t, hs.URL+tc.path); code != tc.code {
				t.Errorf("GET %s = %d, want %d", tc.path, code, tc.code)
			}
		})
	}
}

// TestHistory: each point holds the answers since the point before and the members'
// states; a drain shows in the next point as state drained and share 0; the ring keeps
// HistorySpan of points.
func TestHistory(t *testing.T) {
	a, srv, hs := newAdmin(t)
	a.SampleHistory() // the baseline
	ask(t, srv, "rr.glb.example.com.", 30)
	a.SampleHistory()
	a.cfg.Health.SetDrains([]api.Drain{{Pool: "rr", Member: "r1", Until: time.Now().Add(time.Hour), Reason: "test"}})
	ask(t, srv, "rr.glb.example.com.", 20)
	a.SampleHistory()

	code, body := get(t, hs.URL+"/v1/history")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var h api.History
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Points) != 3 || h.IntervalSeconds != 10 {
		t.Fatalf("%d points every %vs, want 3 every 10s", len(h.Points), h.IntervalSeconds)
	}
	member := func(pt api.HistoryPoint, id string) api.HistoryMember {
		for _, s := range pt.Services {
			if s.Name == "rr.glb.example.com." {
				for _, m := range s.Members {
					if m.ID == id {
						return m
					}
				}
			}
		}
		t.Fatalf("no %s in point %v", id, pt.At)
		return api.HistoryMember{}
	}
	if m := member(h.Points[1], "rr/r1"); m.Answers != 10 || m.State != "unknown" {
		t.Errorf("point 1 rr/r1: %+v, want 10 answers, unknown", m)
	}
	if m := member(h.Points[2], "rr/r1"); m.Answers != 0 || m.Share != 0 || m.State != "drained" {
		t.Errorf("point 2 rr/r1: %+v, want 0 answers, drained", m)
	}
	if m := member(h.Points[2], "rr/r2"); m.Answers != 10 || m.Share != 0.5 {
		t.Errorf("point 2 rr/r2: %+v, want 10 answers, half", m)
	}
	for range a.histCap + 5 {
		a.SampleHistory()
	}
	if n := len(a.History().Points); n != a.histCap || a.histCap != int(HistorySpan/(10*time.Second)) {
		t.Errorf("%d points kept (cap %d), want 15 minutes' worth", n, a.histCap)
	}
}
