package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// snapOf is a real compiled policy: pools and their members as "pool:m1,m2" with an
// optional "=up" or "=down" for the pool's unknown_is.
func snapOf(t testing.TB, pools ...string) *policy.Snapshot {
	t.Helper()
	var b strings.Builder
	b.WriteString("zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n")
	addr := 1
	for _, p := range pools {
		name, members, _ := strings.Cut(p, ":")
		name, unknownIs, _ := strings.Cut(name, "=")
		b.WriteString("pool \"" + name + "\" {\n")
		if unknownIs != "" {
			b.WriteString("  unknown_is = \"" + unknownIs + "\"\n")
		}
		for _, m := range strings.Split(members, ",") {
			fmt.Fprintf(&b, "  member %q {\n    address = \"192.0.2.%d\"\n  }\n", m, addr)
			addr++
		}
		b.WriteString("}\n")
	}
	snap, diags := policy.Load([]policy.File{{Name: "p.hcl", Data: []byte(b.String())}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return snap
}

// clock is a settable time for Health.now.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }
func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func report(id string, st map[string]api.Status) *api.Report {
	rep := &api.Report{Reporter: id, Index: 1}
	for m, s := range st {
		pool, member, _ := strings.Cut(m, "/")
		rep.Members = append(rep.Members, api.MemberReport{Pool: pool, Member: member, Status: s})
	}
	return rep
}

// ups is the view of snap's members as a string of U (usable) and D.
func ups(h *Health, snap *policy.Snapshot) string {
	v := h.For(snap).(*View)
	b := make([]byte, len(snap.Members))
	for i, m := range snap.Members {
		b[i] = map[bool]byte{true: 'U', false: 'D'}[v.Up(m)]
	}
	return string(b)
}

func newHealth(t testing.TB, c *clock, cfg Config) *Health {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	h := New(cfg)
	h.now = c.now
	return h
}

func TestMajorityStaleAndGrace(t *testing.T) {
	const U, D, X = api.StatusUp, api.StatusDown, api.StatusUnknown
	snap := snapOf(t, "web:a,b,c")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1", "r2", "r3"}, StaleAfter: 3 * time.Second, Grace: 10 * time.Second})
	if got := ups(h, snap); got != "UUU" {
		t.Fatalf("before any report: %s, want all up (unknown is up)", got)
	}

	h.Report("r1", report("id1", map[string]api.Status{"web/a": D, "web/b": U, "web/c": X}), c.now())
	h.Report("r2", report("id2", map[string]api.Status{"web/a": D, "web/b": D, "web/c": D}), c.now())
	h.Report("r3", report("id3", map[string]api.Status{"web/a": U, "web/b": U, "web/c": X}), c.now())
	if changed, _ := h.step(c.now()); !changed {
		t.Error("step after three reports: no change")
	}
	// a: 2 of 3 say down. b: 1 of 3. c: only r2 has a verdict, and it says down.
	if got := ups(h, snap); got != "DUD" {
		t.Errorf("majority: %s, want DUD", got)
	}
	for _, rs := range h.Reporters() {
		if !rs.Fresh || rs.ID == "" || rs.Index != 1 || rs.Members != 3 {
			t.Errorf("reporter %+v: want fresh with id, index and 3 members", rs)
		}
	}
	if v := h.For(snap).(*View); v.Fresh() != 3 || v.Status(snap.Members[2]) != D {
		t.Errorf("view: fresh %d, c %v; want 3 and down", v.Fresh(), v.Status(snap.Members[2]))
	}

	// r1 and r3 keep answering, r2 goes silent: after StaleAfter it stops counting, a is
	// 1:1 now (not a majority), and c has no voter.
	c.add(2 * time.Second)
	h.Report("r1", report("id1", map[string]api.Status{"web/a": D, "web/b": U}), c.now())
	h.Report("r3", report("id3", map[string]api.Status{"web/a": U, "web/b": D}), c.now())
	h.Failed("r2", errors.New("connection refused"))
	c.add(2 * time.Second)
	h.step(c.now())
	if got := ups(h, snap); got != "UUU" {
		t.Errorf("without r2: %s, want UUU", got)
	}
	if rs := h.Reporters()[1]; rs.Fresh || rs.LastError != "connection refused" {
		t.Errorf("r2 %+v: want stale with its error", rs)
	}

	// Every reporter silent: the last verdicts hold for Grace, then everything is unknown.
	h.Report("r1", report("id1", map[string]api.Status{"web/b": D}), c.now())
	h.Report("r3", report("id3", map[string]api.Status{"web/b": D}), c.now())
	h.step(c.now())
	if got := ups(h, snap); got != "UDU" {
		t.Fatalf("b down: %s, want UDU", got)
	}
	c.add(5 * time.Second) // stale, inside Grace
	if changed, _ := h.step(c.now()); changed {
		t.Error("going stale inside Grace changed the verdicts")
	}
	if got := ups(h, snap); got != "UDU" {
		t.Errorf("in grace: %s, want the last verdicts kept", got)
	}
	c.add(6 * time.Second) // Grace over
	if changed, _ := h.step(c.now()); !changed {
		t.Error("end of Grace: no change")
	}
	if got := ups(h, snap); got != "UUU" {
		t.Errorf("after grace: %s, want all up (unknown is up)", got)
	}
}

func TestUnknownIs(t *testing.T) {
	snap := snapOf(t, "dflt:d1,d2", "open=up:o1,o2", "closed=down:c1,c2")
	for _, tc := range []struct {
		unknownIsDown bool
		want          string // each pool's reported member, then its silent one
	}{{false, "UUUUUD"}, {true, "UDUUUD"}} {
		c := newClock()
		h := newHealth(t, c, Config{Reporters: []string{"r"}, UnknownIsDown: tc.unknownIsDown})
		h.Report("r", report("r", map[string]api.Status{"dflt/d1": api.StatusUp, "open/o1": api.StatusUp, "closed/c1": api.StatusUp}), c.now())
		h.step(c.now())
		if got := ups(h, snap); got != tc.want {
			t.Errorf("UnknownIsDown=%v: %s, want %s", tc.unknownIsDown, got, tc.want)
		}
	}
}

func TestDrains(t *testing.T) {
	snap := snapOf(t, "web:a,b")
	c := newClock()
	var changes atomic.Int32
	h := newHealth(t, c, Config{OnChange: func() { changes.Add(1) }})
	until := c.now().Add(time.Minute)
	h.SetDrains([]api.Drain{{Pool: "web", Member: "b", Until: until, Reason: "kernel"}})
	if changes.Load() != 1 {
		t.Errorf("SetDrains called OnChange %d times, want 1", changes.Load())
	}
	h.SetDrains([]api.Drain{{Pool: "web", Member: "b", Until: until, Reason: "kernel"}})
	if changes.Load() != 1 {
		t.Error("the same drains again called OnChange")
	}
	if got := ups(h, snap); got != "UD" {
		t.Errorf("drained: %s, want UD", got)
	}
	v := h.For(snap).(*View)
	if d, ok := v.Drain(snap.Members[1]); !ok || d.Reason != "kernel" || !d.Until.Equal(until) {
		t.Errorf("Drain(b) = %+v, %v", d, ok)
	}
	if _, ok := v.Drain(snap.Members[0]); ok {
		t.Error("a is drained")
	}
	if _, next := h.step(c.now()); !next.Equal(until) {
		t.Errorf("next expiry %v, want %v", next, until)
	}
	c.add(time.Minute)
	if changed, next := h.step(c.now()); !changed || !next.IsZero() {
		t.Errorf("at the drain's end: changed %v, next %v; want a change and no further expiry", changed, next)
	}
	if got := ups(h, snap); got != "UU" {
		t.Errorf("after the drain: %s, want UU", got)
	}
}

// TestDrainExpiryTimer runs Run on the real clock: the view changes when a drain ends,
// with no report and no query.
func TestDrainExpiryTimer(t *testing.T) {
	snap := snapOf(t, "web:a")
	changed := make(chan struct{}, 4)
	h := New(Config{Logger: slog.New(slog.DiscardHandler), OnChange: func() { changed <- struct{}{} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	h.SetDrains([]api.Drain{{Pool: "web", Member: "a", Until: time.Now().Add(50 * time.Millisecond)}})
	<-changed // SetDrains itself
	if ups(h, snap) != "D" {
		t.Fatal("a is not drained")
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change at the drain's end")
	}
	if got := ups(h, snap); got != "U" {
		t.Errorf("after the drain's end: %s, want U", got)
	}
}

// TestSetReporters: a reporter that leaves the set stops counting at once, one that stays
// keeps its report, a new one starts silent.
func TestSetReporters(t *testing.T) {
	snap := snapOf(t, "web:a")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1", "r2"}})
	h.Report("r1", report("r1", map[string]api.Status{"web/a": api.StatusDown}), c.now())
	h.Report("r2", report("r2", map[string]api.Status{"web/a": api.StatusDown}), c.now())
	h.step(c.now())
	if got := ups(h, snap); got != "D" {
		t.Fatalf("two reporters say down: %s", got)
	}
	h.SetReporters([]string{"r2", "r3"})
	h.step(c.now())
	if got := ups(h, snap); got != "D" {
		t.Errorf("r2 stayed and says down: %s", got)
	}
	h.SetReporters([]string{"r3"})
	h.step(c.now())
	if got := ups(h, snap); got != "D" {
		t.Errorf("only the silent r3 left: %s, want the last verdict kept for the grace period", got)
	}
	if rs := h.Reporters(); len(rs) != 1 || rs[0].URL != "r3" || rs[0].Fresh {
		t.Errorf("reporters %+v", rs)
	}
	h.Report("r3", report("r3", map[string]api.Status{"web/a": api.StatusUp}), c.now())
	h.step(c.now())
	if got := ups(h, snap); got != "U" {
		t.Errorf("r3, the one reporter, says up: %s", got)
	}
}

func TestUnknownReporterIgnored(t *testing.T) {
	snap := snapOf(t, "web:a")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r"}, UnknownIsDown: true})
	h.Report("intruder", report("x", map[string]api.Status{"web/a": api.StatusUp}), c.now())
	h.Failed("intruder", errors.New("x"))
	h.step(c.now())
	if got := ups(h, snap); got != "D" {
		t.Errorf("a report from an unknown reporter counted: %s", got)
	}
}

func TestOutsideSnapshot(t *testing.T) {
	snap := snapOf(t, "web:a")
	h := New(Config{Logger: slog.New(slog.DiscardHandler)})
	v := h.For(snap).(*View)
	other := &policy.Member{Index: 99, Pool: "web", Name: "z"}
	if !v.Up(other) || v.Status(other) != api.StatusUnknown {
		t.Error("a member outside the snapshot is not unknown (up)")
	}
	if h.View() != v || v.Snapshot() != snap {
		t.Error("View is not the view For built last")
	}
}

func BenchmarkViewUp(b *testing.B) {
	snap := snapOf(b, "web:a,b,c")
	v := New(Config{}).For(snap)
	m := snap.Members[1]
	b.ReportAllocs()
	for b.Loop() {
		if !v.Up(m) {
			b.Fatal("down")
		}
	}
}

// TestRestartKeepsVerdicts: a reporter's unknown, or a report that omits a member, never
// replaces that reporter's own last up or down verdict; the kept verdict stops counting
// when the reporter goes stale, as any other. The reports are a healthd's across a restart:
// index back to 1, every member unknown, then members decided one by one.
func TestRestartKeepsVerdicts(t *testing.T) {
	const U, D, X = api.StatusUp, api.StatusDown, api.StatusUnknown
	snap := snapOf(t, "web:a,b,c")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1"}, StaleAfter: 3 * time.Second, Grace: 10 * time.Second})
	steps := []struct {
		name string
		rep  map[string]api.Status
		want string
	}{
		{"before the restart", map[string]api.Status{"web/a": D, "web/b": U, "web/c": U}, "DUU"},
		{"restarted: all unknown", map[string]api.Status{"web/a": X, "web/b": X, "web/c": X}, "DUU"},
		{"restarted: a omitted, c decided down", map[string]api.Status{"web/b": X, "web/c": D}, "DUD"},
		{"empty report", map[string]api.Status{}, "DUD"},
		{"a decided up at last", map[string]api.Status{"web/a": U, "web/b": X, "web/c": X}, "UUD"},
	}
	for i, s := range steps {
		rep := report("id1", s.rep)
		rep.Index = uint64(1 + i%2) // goes back, as after a restart
		h.Report("r1", rep, c.now())
		h.step(c.now())
		if got := ups(h, snap); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
		if rs := h.Reporters()[0]; rs.Members != len(s.rep) {
			t.Errorf("%s: reporter lists %d members, want %d (the report's)", s.name, rs.Members, len(s.rep))
		}
	}
	if v := h.For(snap).(*View); v.Status(snap.Members[2]) != D {
		t.Errorf("c: status %v, want down", v.Status(snap.Members[2]))
	}

	// A second reporter joins and says c is up: 1:1 is no majority, c is up. The first goes
	// stale: its kept verdicts stop counting with it.
	h.SetReporters([]string{"r1", "r2"})
	h.Report("r2", report("id2", map[string]api.Status{"web/c": U}), c.now())
	h.step(c.now())
	if got := ups(h, snap); got != "UUU" {
		t.Errorf("r1 says c down, r2 up: %s, want UUU", got)
	}
	h.Report("r2", report("id2", map[string]api.Status{"web/a": D}), c.now())
	c.add(2 * time.Second)
	h.Report("r2", report("id2", map[string]api.Status{"web/a": X}), c.now())
	c.add(2 * time.Second) // r1 stale, r2 fresh
	h.step(c.now())
	if got := ups(h, snap); got != "DUU" {
		t.Errorf("r1 stale, r2 keeps a down and c up: %s, want DUU", got)
	}
}

// TestGraceExpired: every fall-back to unknown_is after Grace is one event, counted and in
// force until a reporter is fresh again; a reporter that never answered falls back too.
func TestGraceExpired(t *testing.T) {
	snap := snapOf(t, "web:a")
	c := newClock()
	var logs strings.Builder
	h := New(Config{Reporters: []string{"r1"}, StaleAfter: time.Second, Grace: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	h.now = c.now
	check := func(what string, inForce bool, events uint64) {
		t.Helper()
		if f, n := h.GraceExpired(); f != inForce || n != events {
			t.Errorf("%s: GraceExpired() = %v, %d; want %v, %d", what, f, n, inForce, events)
		}
	}
	h.step(c.now())
	check("start", false, 0)
	c.add(6 * time.Second) // never heard from r1, for longer than Grace
	h.step(c.now())
	c.add(time.Second)
	h.step(c.now())
	check("never fresh", true, 1)

	h.Report("r1", report("id1", map[string]api.Status{"web/a": api.StatusDown}), c.now())
	h.step(c.now())
	check("fresh again", false, 1)
	if got := ups(h, snap); got != "D" {
		t.Fatalf("a: %s, want down", got)
	}
	c.add(3 * time.Second) // stale, in Grace
	h.step(c.now())
	check("in grace", false, 1)
	if got := ups(h, snap); got != "D" {
		t.Errorf("in grace: %s, want the last verdict", got)
	}
	for range 3 { // one event, however many steps see it
		c.add(2 * time.Second)
		h.step(c.now())
	}
	check("grace over again", true, 2)
	if got := ups(h, snap); got != "U" {
		t.Errorf("after grace: %s, want up (unknown is up)", got)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"no fresh healthd reporter for the grace period"); n != 2 {
		t.Errorf("%d warnings, want one per event:\n%s", n, logs.String())
	}
}

// TestReasonsAndDegraded: a member merged down carries the reason of a reporter that says
// down; the reason outlives a stale reporter through Grace; after Grace the view is
// degraded and no member is down, so none has a reason.
func TestReasonsAndDegraded(t *testing.T) {
	snap := snapOf(t, "web:a,b")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1", "r2"}, StaleAfter: time.Second, Grace: 5 * time.Second})
	a, b := snap.Members[0], snap.Members[1]
	rep := func(id string, reason string, last *api.ResultReport) *api.Report {
		return &api.Report{Reporter: id, Index: 1, Members: []api.MemberReport{
			{Pool: "web", Member: "a", Status: api.StatusDown, Reason: reason, LastResult: last},
			{Pool: "web", Member: "b", Status: api.StatusUp}}}
	}
	h.Report("r1", rep("id1", "", &api.ResultReport{Reason: "connect: connection refused"}), c.now())
	h.Report("r2", rep("id2", "http status 503", nil), c.now())
	h.step(c.now())
	v := h.For(snap).(*View)
	if got := v.Reason(a); got != "connect: connection refused" {
		t.Errorf("a: reason %q, want the first reporter's last failed probe", got)
	}
	if got := v.Reason(b); got != "" || v.Degraded() {
		t.Errorf("b: reason %q, degraded %v; want none", got, v.Degraded())
	}
	c.add(2 * time.Second) // both stale, in Grace
	h.step(c.now())
	if v := h.For(snap).(*View); v.Reason(a) == "" || v.Degraded() {
		t.Errorf("in grace: reason %q, degraded %v; want the kept reason, not degraded", v.Reason(a), v.Degraded())
	}
	c.add(5 * time.Second)
	h.step(c.now())
	if v := h.For(snap).(*View); v.Reason(a) != "" || !v.Degraded() || v.Status(a) != api.StatusUnknown {
		t.Errorf("after grace: reason %q, degraded %v, status %v; want no reason, degraded, unknown", v.Reason(a), v.Degraded(), v.Status(a))
	}
	h.Report("r2", &api.Report{Reporter: "id2", Index: 2, Members: []api.MemberReport{{Pool: "web", Member: "a", Status: api.StatusUp}}}, c.now())
	h.step(c.now())
	if v := h.For(snap).(*View); v.Reason(a) != "" || v.Degraded() {
		t.Errorf("up again: reason %q, degraded %v", v.Reason(a), v.Degraded())
	}
}

// TestPush: a pushed report counts in the majority for its TTL, with the healthd
// reporters, then goes stale (its votes stop counting; nothing goes down for it); a
// registry change keeps pushers; past MaxPushers a new name is refused.
func TestPush(t *testing.T) {
	const U, D = api.StatusUp, api.StatusDown
	snap := snapOf(t, "web:a,b")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1"}, StaleAfter: 30 * time.Second, Grace: time.Minute})
	h.Report("r1", report("id1", map[string]api.Status{"web/a": D, "web/b": U}), c.now())
	if err := h.Push("fn", report("fn", map[string]api.Status{"web/a": D, "web/b": D}), 5*time.Second, c.now()); err != nil {
		t.Fatal(err)
	}
	h.step(c.now())
	// a: 2 of 2 down. b: 1 of 2, no majority.
	if got := ups(h, snap); got != "DU" {
		t.Fatalf("with the push: %s, want DU", got)
	}
	h.SetReporters([]string{"r1", "r2"})
	if rs := h.Reporters(); len(rs) != 3 || rs[2].URL != PushPrefix+"fn" || !rs[2].Fresh {
		t.Fatalf("reporters after a registry change: %+v, want r1, r2 and the fresh pusher", rs)
	}
	c.add(6 * time.Second) // the push's TTL passed; r1 is still fresh
	h.Report("r1", report("id1", map[string]api.Status{"web/a": U, "web/b": U}), c.now())
	h.step(c.now())
	if got := ups(h, snap); got != "UU" {
		t.Errorf("after the TTL: %s, want the pusher's down votes no longer counting", got)
	}
	if rs := h.Reporters(); rs[2].Fresh {
		t.Errorf("pusher %+v: want stale after its TTL", rs[2])
	}
	for i := range MaxPushers - 1 {
		if err := h.Push(fmt.Sprint("p", i), report("p", nil), time.Minute, c.now()); err != nil {
			t.Fatalf("pusher %d: %v", i, err)
		}
	}
	if err := h.Push("one-too-many", report("x", nil), time.Minute, c.now()); !errors.Is(err, ErrTooManyPushers) {
		t.Errorf("pusher %d: %v, want ErrTooManyPushers", MaxPushers+1, err)
	}
	if err := h.Push("fn", report("fn", nil), time.Minute, c.now()); err != nil {
		t.Errorf("a known pusher renewing: %v", err)
	}
}

// TestPushExpire: a pusher whose report vanished from the cluster (Expire) is stale at
// once, inside its TTL: its down vote stops counting, and nothing is down for it; a push
// after that counts again. Expire of a name that never pushed changes nothing.
func TestPushExpire(t *testing.T) {
	const U, D = api.StatusUp, api.StatusDown
	snap := snapOf(t, "web:a,b")
	c := newClock()
	h := newHealth(t, c, Config{Reporters: []string{"r1"}, StaleAfter: 30 * time.Second, Grace: time.Minute})
	h.Report("r1", report("id1", map[string]api.Status{"web/a": U, "web/b": U}), c.now())
	if err := h.Push("fn", report("fn", map[string]api.Status{"web/a": D}), time.Minute, c.now()); err != nil {
		t.Fatal(err)
	}
	h.step(c.now())
	if got := ups(h, snap); got != "UU" { // a: 1 up, 1 down: no majority for down
		t.Fatalf("with the push: %s, want UU", got)
	}
	if err := h.Push("fn2", report("fn2", map[string]api.Status{"web/a": D}), time.Minute, c.now()); err != nil {
		t.Fatal(err)
	}
	h.step(c.now())
	if got := ups(h, snap); got != "DU" {
		t.Fatalf("with two pushers: %s, want DU", got)
	}
	c.add(time.Second)
	h.Expire("fn2", c.now())
	h.Expire("never-pushed", c.now())
	h.Expire("r1", c.now()) // not a pusher: untouched
	h.step(c.now())
	if got := ups(h, snap); got != "UU" {
		t.Errorf("after fn2 expired: %s, want UU", got)
	}
	fresh := map[string]bool{}
	for _, r := range h.Reporters() {
		fresh[r.URL] = r.Fresh
	}
	if !fresh["r1"] || !fresh[PushPrefix+"fn"] || fresh[PushPrefix+"fn2"] {
		t.Errorf("freshness after Expire: %v, want r1 and push:fn fresh, push:fn2 stale", fresh)
	}
	if err := h.Push("fn2", report("fn2", nil), time.Minute, c.now()); err != nil {
		t.Fatal(err)
	}
	h.step(c.now())
	if got := ups(h, snap); got != "DU" {
		t.Errorf("fn2 pushed again (its last verdict kept): %s, want DU", got)
	}
}
