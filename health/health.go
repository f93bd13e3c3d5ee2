package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// Defaults of Config.
const (
	// DefaultStaleAfter: a reporter silent for longer stops counting. Three missed
	// watches of a healthd answering every StaleAfter/2 at the latest.
	DefaultStaleAfter = 15 * time.Second
	// DefaultGrace: how long the last verdicts outlive the last fresh reporter; long
	// enough for a healthd restart, short enough that a dead reporter is noticed.
	DefaultGrace = 60 * time.Second
)

// Config configures a Health.
type Config struct {
	// Reporters names the reporters whose reports count (the healthd URLs), in the order
	// Reporters lists them. Reports from other names are ignored. None: every member is
	// unknown, and only drains and unknown_is decide.
	Reporters []string
	// StaleAfter: a reporter not heard from for this long stops counting. Default
	// DefaultStaleAfter.
	StaleAfter time.Duration
	// Grace: with no fresh reporter, the last merged verdicts are kept this long. Default
	// DefaultGrace.
	Grace time.Duration
	// UnknownIsDown counts members of unknown health as down; default false (up). A pool's
	// unknown_is overrides it for the pool's members.
	UnknownIsDown bool
	// OnChange is called after the inputs of the views changed (see the package doc). It
	// is called from Run's goroutine, or from SetDrains's caller, never with a lock of
	// Health held. May be nil.
	OnChange func()
	// Logger, default slog.Default().
	Logger *slog.Logger
}

// Health merges reports and drains and builds Views. It is safe for concurrent use.
type Health struct {
	cfg Config
	log *slog.Logger
	now func() time.Time // time.Now; tests set their own clock

	kick chan struct{} // a report arrived or the drains changed: step now (capacity 1)
	last atomic.Pointer[View]

	mu        sync.Mutex
	reporters []*reporter // in Config.Reporters order
	byName    map[string]*reporter
	verdicts  map[memberKey]api.Status // merged; absent: unknown
	reasons   map[memberKey]string     // why a member merged down is down (downReasons)
	lastFresh time.Time                // last step at which some reporter was fresh
	started   time.Time                // first step with a reporter to wait for: Grace counts from it until one is fresh
	graceOver bool                     // the last step found Grace run out (logged once per event)
	graceN    uint64                   // times Grace ran out (GraceExpired)
	drains    map[memberKey]api.Drain
	loads     map[memberKey]float64 // merged: the median of the fresh readings; absent: none
}

// memberKey is a member's identity, its pool and name: the key of verdicts and drains,
// which a lookup builds without concatenating a string.
type memberKey struct{ pool, member string }

// reporter is what Health knows of one reporter.
type reporter struct {
	name        string
	id          string
	lastContact time.Time
	index       uint64
	listed      int // members the last report listed
	// votes are the reporter's last up or down verdict on every member it ever gave one
	// for: a later report that says unknown, or omits the member, keeps it (see Report).
	// Replaced whole by Report, never changed in place.
	votes map[memberKey]api.Status
	// reasons are the reporter's reasons for its down votes (MemberReport.Reason, else the
	// last failed probe's), kept as votes are. Replaced whole by Report.
	reasons map[memberKey]string
	// loads are the load readings of the last report, dated on our clock. Replaced whole
	// by Report.
	loads   map[memberKey]loadReading
	lastErr string
	// ttl, for a reporter that pushes its reports (Push), is how long its last report
	// counts; 0 for the reporters Health watches, which StaleAfter bounds. until is when
	// the pusher goes stale: its last push and ttl, or sooner (Expire).
	ttl   time.Duration
	until time.Time
}

// New returns a Health with no report and no drain: every member unknown.
func New(cfg Config) *Health {
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Health{cfg: cfg, log: cfg.Logger.With("component", "health"), now: time.Now,
		kick: make(chan struct{}, 1), byName: map[string]*reporter{}, drains: map[memberKey]api.Drain{}}
	for _, name := range cfg.Reporters {
		if h.byName[name] == nil {
			r := &reporter{name: name}
			h.reporters = append(h.reporters, r)
			h.byName[name] = r
		}
	}
	return h
}

// SetReporters replaces the reporters whose reports count (the set found in the cluster
// registry, say): a reporter that stays keeps what it reported, a new one starts silent,
// and one that leaves stops counting at once.
func (h *Health) SetReporters(names []string) {
	h.mu.Lock()
	next := make([]*reporter, 0, len(names))
	byName := make(map[string]*reporter, len(names))
	for _, name := range names {
		if byName[name] != nil {
			continue
		}
		r := h.byName[name]
		if r == nil {
			r = &reporter{name: name}
		}
		next = append(next, r)
		byName[name] = r
	}
	for _, r := range h.reporters {
		if r.ttl > 0 && byName[r.name] == nil { // pushed reporters are not the registry's
			next = append(next, r)
			byName[r.name] = r
		}
	}
	h.reporters, h.byName = next, byName
	h.mu.Unlock()
	h.poke()
}

// StaleAfter is the staleness bound in use (Config.StaleAfter or its default): the
// transport must hear from a live reporter well within it.
func (h *Health) StaleAfter() time.Duration { return h.cfg.StaleAfter }

// Report records rep, the latest report of the reporter called name, received at at.
//
// A member the report lists as up or down takes that verdict. A member it lists as
// unknown, or does not list, keeps the reporter's own last up or down verdict, if it ever
// gave one: a healthd says unknown for every member from its start until rise or fall
// probes decide (a restart), and omits the members of a policy it did not load (a
// managed folder it could not read, a reload that has not reached glbdns's policy yet).
// Counting that as no verdict would let a member the reporter last saw down be answered
// again (fail open) each time the reporter restarts. The kept verdicts count only while the
// reporter is fresh, as the others do; a member removed from the policy keeps its entry
// (a few dozen bytes) until the reporter leaves the reporter set.
func (h *Health) Report(name string, rep *api.Report, at time.Time) {
	h.mu.Lock()
	r := h.byName[name]
	if r == nil {
		h.mu.Unlock()
		h.log.Debug("report from an unknown reporter ignored", "reporter", name)
		return
	}
	prev, prevReasons := r.votes, r.reasons // never changed in place: safe to read unlocked
	h.mu.Unlock()

	votes := make(map[memberKey]api.Status, max(len(rep.Members), len(prev)))
	maps.Copy(votes, prev)
	reasons := maps.Clone(prevReasons)
	if reasons == nil {
		reasons = map[memberKey]string{}
	}
	for i := range rep.Members {
		m := &rep.Members[i]
		k := memberKey{m.Pool, m.Member}
		switch m.Status {
		case api.StatusUp:
			votes[k] = m.Status
			delete(reasons, k)
		case api.StatusDown:
			votes[k] = m.Status
			reasons[k] = downReason(m)
		}
	}

	loads := readings(rep, at)

	h.mu.Lock()
	if h.byName[name] != r {
		h.mu.Unlock() // left the reporter set meanwhile
		return
	}
	r.loads = loads
	if r.lastErr != "" {
		h.log.Info("healthd reachable", "url", name, "reporter", rep.Reporter)
	}
	r.id, r.lastContact, r.index, r.listed, r.votes, r.lastErr = rep.Reporter, at, rep.Index, len(rep.Members), votes, ""
	r.reasons = reasons
	h.mu.Unlock()
	h.poke()
}

// downReason is why a reporter says m is down: the reason of its most recent failed probe.
func downReason(m *api.MemberReport) string {
	if m.Reason != "" {
		return m.Reason
	}
	if m.LastResult != nil && !m.LastResult.OK {
		return m.LastResult.Reason
	}
	return ""
}

// Failed records that a request to the reporter called name failed with err. Its last
// report keeps counting until it goes stale.
func (h *Health) Failed(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.byName[name]
	if r == nil {
		return
	}
	if r.lastErr == "" {
		h.log.Warn("healthd unreachable", "url", name, "err", err)
	}
	r.lastErr = err.Error()
}

// SetDrains replaces the drains in force (the policy store's, after every load and every
// drain written). It calls OnChange before it returns, so that a drain is answered as
// soon as the caller goes on.
func (h *Health) SetDrains(ds []api.Drain) {
	next := make(map[memberKey]api.Drain, len(ds))
	for _, d := range ds {
		next[memberKey{d.Pool, d.Member}] = d
	}
	h.mu.Lock()
	same := maps.Equal(next, h.drains)
	h.drains = next
	h.mu.Unlock()
	if same {
		return
	}
	h.poke() // Run re-arms the expiry timer
	h.changed()
}

func (h *Health) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *Health) changed() {
	if h.cfg.OnChange != nil {
		h.cfg.OnChange()
	}
}

// Run re-merges after every report and on a tick until ctx is done (freshness and Grace
// run out with no report arriving), and wakes at the end of every drain.
func (h *Health) Run(ctx context.Context) {
	tick := min(h.cfg.StaleAfter, h.cfg.Grace) / 4
	tick = max(10*time.Millisecond, min(tick, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		changed, next := h.step(h.now())
		if changed {
			h.changed()
		}
		expiry.Stop()
		if !next.IsZero() {
			expiry.Reset(max(next.Sub(h.now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-t.C:
		case <-expiry.C:
		}
	}
}

// step merges the reporters' verdicts as of now and drops the drains that ended. It
// reports whether a View built now would differ from one built before, and when the next
// drain ends (zero: none).
func (h *Health) step(now time.Time) (changed bool, nextExpiry time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, anyFresh := merge(h.reporters, now, h.cfg.StaleAfter)
	// Grace counts from the last moment a reporter was fresh, or, when none ever was, from
	// the first step that had a reporter to wait for: a reporter that never answers falls
	// back to unknown_is loudly too.
	since := h.lastFresh
	if since.IsZero() && len(h.reporters) > 0 {
		if h.started.IsZero() {
			h.started = now
		}
		since = h.started
	}
	switch {
	case anyFresh:
		if h.graceOver {
			h.log.Info("healthd reporter fresh again: members count as the reporters say")
		}
		h.lastFresh, h.graceOver = now, false
	case since.IsZero():
		next = nil // no reporter: every member unknown, by configuration
	case now.Sub(since) < h.cfg.Grace:
		next = h.verdicts // Grace: keep the last merged verdicts
	default:
		if !h.graceOver {
			h.graceN++
			h.log.Warn("no fresh healthd reporter for the grace period: members count as their pool's unknown_is",
				"grace", h.cfg.Grace, "since", since, "reporters", len(h.reporters), "unknown_is_down", h.cfg.UnknownIsDown)
		}
		h.graceOver = true
		next = nil
	}
	if !maps.Equal(next, h.verdicts) {
		h.verdicts, changed = next, true
	}
	if anyFresh || next == nil {
		// During Grace the kept verdicts keep their reasons too.
		if reasons := downReasons(h.reporters, next, now, h.cfg.StaleAfter); !maps.Equal(reasons, h.reasons) {
			h.reasons, changed = reasons, true
		}
	}
	if loads := mergeLoads(h.reporters, now, h.cfg.StaleAfter); !maps.Equal(loads, h.loads) {
		h.loads, changed = loads, true
	}
	for k, d := range h.drains {
		if !now.Before(d.Until) {
			delete(h.drains, k)
			changed = true
		} else if nextExpiry.IsZero() || d.Until.Before(nextExpiry) {
			nextExpiry = d.Until
		}
	}
	return changed, nextExpiry
}

// merge computes the majority verdicts of the reporters fresh at now, and whether any was.
func merge(reporters []*reporter, now time.Time, staleAfter time.Duration) (map[memberKey]api.Status, bool) {
	type tally struct{ up, down int }
	votes := map[memberKey]tally{}
	anyFresh := false
	for _, r := range reporters {
		if !r.fresh(now, staleAfter) {
			continue
		}
		anyFresh = true
		for id, st := range r.votes {
			v := votes[id]
			switch st {
			case api.StatusUp:
				v.up++
			case api.StatusDown:
				v.down++
			}
			votes[id] = v
		}
	}
	out := make(map[memberKey]api.Status, len(votes))
	for id, t := range votes {
		switch {
		case t.up+t.down == 0:
			// nobody knows: unknown (absent)
		case 2*t.down > t.up+t.down:
			out[id] = api.StatusDown
		default:
			out[id] = api.StatusUp
		}
	}
	return out, anyFresh
}

// downReasons is, for every member merged down, the reason of the first fresh reporter (in
// Config.Reporters order) that votes it down with one: the status page and /v1/state say
// why a member is down, not only that it is.
func downReasons(reporters []*reporter, verdicts map[memberKey]api.Status, now time.Time, staleAfter time.Duration) map[memberKey]string {
	out := map[memberKey]string{}
	for k, st := range verdicts {
		if st != api.StatusDown {
			continue
		}
		for _, r := range reporters {
			if r.fresh(now, staleAfter) && r.votes[k] == api.StatusDown && r.reasons[k] != "" {
				out[k] = r.reasons[k]
				break
			}
		}
	}
	return out
}

func (r *reporter) fresh(now time.Time, staleAfter time.Duration) bool {
	if r.ttl > 0 {
		return !r.lastContact.IsZero() && now.Before(r.until)
	}
	return !r.lastContact.IsZero() && now.Sub(r.lastContact) < staleAfter
}

// MaxPushers bounds the reporters that push (Push): each keeps votes for the members it
// reported, and a name is the pusher's to choose.
const MaxPushers = 64

// PushPrefix starts the name of every pushed reporter, so that it never takes the name
// (a URL) of a reporter Health watches.
const PushPrefix = "push:"

// ErrTooManyPushers refuses a push from a new name when MaxPushers push already.
var ErrTooManyPushers = errors.New("too many reporters push")

// Push records rep, pushed by the reporter called PushPrefix+name (a function, a cron
// job, healthd -once, the backend itself) at at, counting for ttl: its verdicts take part
// in the majority like a healthd reporter's until ttl passes without another push, and
// then it is stale, as a silent healthd reporter is, never down. Merging is Report's: a
// member the push does not list keeps the pusher's last verdict on it. A pusher stale
// for an hour is forgotten when another name pushes.
func (h *Health) Push(name string, rep *api.Report, ttl time.Duration, at time.Time) error {
	name = PushPrefix + name
	h.mu.Lock()
	r := h.byName[name]
	if r == nil {
		n := 0
		keep := h.reporters[:0:0]
		for _, o := range h.reporters {
			if o.ttl > 0 && !o.lastContact.IsZero() && at.Sub(o.until) > time.Hour {
				delete(h.byName, o.name)
				continue
			}
			if o.ttl > 0 {
				n++
			}
			keep = append(keep, o)
		}
		h.reporters = keep
		if n >= MaxPushers {
			h.mu.Unlock()
			return fmt.Errorf("%w: %d at most", ErrTooManyPushers, MaxPushers)
		}
		r = &reporter{name: name}
		h.reporters = append(h.reporters, r)
		h.byName[name] = r
	}
	r.ttl, r.until = ttl, at.Add(ttl)
	h.mu.Unlock()
	h.Report(name, rep, at)
	return nil
}

// Expire makes the pusher called PushPrefix+name stale at at, before its TTL ends: its
// report is gone from the cluster (its etcd lease lapsed). It is stale, as after its TTL,
// not down.
func (h *Health) Expire(name string, at time.Time) {
	h.mu.Lock()
	r := h.byName[PushPrefix+name]
	if r == nil || r.ttl == 0 || !at.Before(r.until) {
		h.mu.Unlock()
		return
	}
	r.until = at
	h.mu.Unlock()
	h.poke()
}

// For builds the View of snap's members as of now: the merged verdicts, the drains in
// force and the pools' unknown_is. It implements dnsserver.HealthSource; the View it
// builds last is also View's answer.
func (h *Health) For(snap *policy.Snapshot) policy.Health {
	v := h.build(snap, h.now())
	h.last.Store(v)
	return v
}

// View is the View For built last (for the snapshot being served), nil before the first.
func (h *Health) View() *View { return h.last.Load() }

func (h *Health) build(snap *policy.Snapshot, now time.Time) *View {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(snap.Members)
	v := &View{snap: snap, unknownUp: !h.cfg.UnknownIsDown, degraded: h.graceOver,
		up: make([]bool, n), status: make([]api.Status, n), drain: make([]int32, n)}
	if len(h.reasons) > 0 {
		v.reason = make([]string, n)
	}
	if len(h.loads) > 0 {
		v.load = make([]float64, n)
	}
	for _, r := range h.reporters {
		if r.fresh(now, h.cfg.StaleAfter) {
			v.fresh++
		}
	}
	for _, p := range snap.Pools {
		unknownUp := v.unknownUp
		if p.UnknownIs != policy.UnknownDefault {
			unknownUp = p.UnknownIs == policy.UnknownUp
		}
		for _, m := range p.Members {
			i := m.Index
			if i < 0 || i >= n {
				continue
			}
			k := memberKey{m.Pool, m.Name}
			st := h.verdicts[k]
			v.status[i] = st
			v.up[i] = st == api.StatusUp || (st == api.StatusUnknown && unknownUp)
			if v.reason != nil && st == api.StatusDown {
				v.reason[i] = h.reasons[k]
			}
			if v.load != nil {
				l, ok := h.loads[k]
				if !ok {
					l = math.NaN()
				}
				v.load[i] = l
			}
			if d, ok := h.drains[k]; ok && now.Before(d.Until) {
				v.drains = append(v.drains, d)
				v.drain[i] = int32(len(v.drains))
				v.up[i] = false
			}
		}
	}
	return v
}

// GraceExpired reports whether the members count as their pools' unknown_is because no
// reporter was fresh for Grace (inForce, as of the last step), and how many times that
// happened since New (events): the sources of glbdns_health_grace_expired and
// glbdns_health_grace_expired_total.
func (h *Health) GraceExpired() (inForce bool, events uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.graceOver, h.graceN
}

// Reporters describes every reporter, in the order of Config.Reporters.
func (h *Health) Reporters() []api.ReporterState {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]api.ReporterState, len(h.reporters))
	for i, r := range h.reporters {
		out[i] = api.ReporterState{URL: r.name, ID: r.id, LastContact: r.lastContact, Index: r.index,
			Members: r.listed, LastError: r.lastErr, Fresh: r.fresh(now, h.cfg.StaleAfter)}
	}
	return out
}
