package healthd

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/policy"
)

// Scheduler limits.
const (
	// DefaultMaxInFlight bounds concurrent probes: 256 sockets at once stays far below a
	// default file-descriptor limit of 1024 while letting thousands of members with
	// second-scale intervals be probed on time.
	DefaultMaxInFlight = 256
	// QuickStart bounds the first probe of a check that is new after the first policy:
	// well under the second an operator waits to see a pool made through the admin API
	// checked (after the store watch's 200ms debounce), yet wide enough that a new pool's
	// members do not all probe in the same millisecond. See Scheduler.
	QuickStart = 500 * time.Millisecond
	// historyLen is how many recent results, and separately how many recent failures,
	// each check keeps: failures are kept longer (blackbox's history does the same), so
	// the reason of the last outage survives a long run of successes.
	historyLen = 10
)

// reasonNoInterval is the reason a check without an interval shows: the policy requires
// one, and without it there is no pace to probe at, so the check is never probed.
const reasonNoInterval = "check has no interval"

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Board receives every member's report. Required.
	Board *Board
	// Logger, default slog.Default().
	Logger *slog.Logger
	// Preparers by check type, default probe.Default.
	Preparers map[string]probe.Preparer
	// MaxInFlight bounds concurrent probes, default DefaultMaxInFlight.
	MaxInFlight int
	// Metrics, when not nil, records probe and status metrics.
	Metrics *Metrics
	// Quick makes every check's first probe quick (within QuickStart), those of the
	// first policy too: for Once, whose run is short and ends at the verdicts, not for a
	// daemon, whose first probes are better spread over their interval.
	Quick bool
	// Activity says which cold_start pools are idle (PollActivity fills it); nil: none
	// is (only the first probe of their checks is cold).
	Activity *Activity
}

// Scheduler probes every check of every member of a policy snapshot on its interval, runs
// each check's results through its Hysteresis and publishes member verdicts to the Board.
//
// A check is prepared (probe.Prepare) when the scheduler learns it, once for all the
// members sharing it, and again only when its settings change. Each check of each member
// runs in its own goroutine, first at a random moment within a first window, then every
// interval from the start of the previous probe. The first window is:
//
//   - the check's interval for the checks of the first policy, and for a check restarted
//     with its status kept (its settings changed): Consul staggers first runs the same
//     way, so a start with thousands of members does not probe them all in one burst and
//     their probes stay spread over the interval afterwards;
//   - min(interval, QuickStart) for a check that starts from unknown after the first
//     policy (a new member, a new check, a member moved to another address or port): a
//     pool created through the admin API is probed within half a second, not up to an
//     interval later. A reload that brings more such checks than MaxInFlight at once is a
//     bulk change (a new file of hundreds of members): they stagger over their interval
//     as at start, so the quick starts of one reload never exceed the probes allowed in
//     flight.
//
// A pool with a cold_start block (policy.ColdStart) may scale to zero. While it is idle
// (Activity: no glbdns node answered it for idle_after) its checks probe every
// idle_interval instead of their interval, so that probes do not keep it warm, and they
// wake when it is answered again. A cold probe, one that may meet a cold start, gets the
// block's timeout instead of the check's: the first probe of a check's loop, every probe
// while the pool is idle, and the first probe after it became active again. A later probe
// of an active pool meets a warm backend and gets the check's timeout.
//
// A semaphore bounds the probes in flight; every probe has a timeout; a panic in a round
// is recovered, logged with its stack and counted, and the loop goes on.
type Scheduler struct {
	board     *Board
	log       *slog.Logger
	preparers map[string]probe.Preparer
	sem       chan struct{}
	metrics   *Metrics
	quick     bool      // SchedulerConfig.Quick
	activity  *Activity // SchedulerConfig.Activity

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	coldStart   bool // a pool of the policy has cold_start (HasColdStart)
	members     map[string]*memberRun
	loaded      bool
	loadedAt    time.Time
	maxInterval time.Duration
	ready       bool
	// loadStarts are the members whose load loops learn prepared and Update starts.
	loadStarts []*memberRun
}

type memberRun struct {
	m      *policy.Member
	checks []*checkRun // in the member's check order
	status api.Status
	since  time.Time
	last   *probe.Result // most recent result of any check
	reason string        // most recent failure reason of any check
	load   *loadRun      // its pool's load signal; nil without one
}

type checkRun struct {
	member string // the member's ID
	c      *policy.Check
	target probe.Target
	prober *probe.Prober
	// cold is the pool's cold_start block (nil: none), and coldProber the check prepared
	// with its timeout.
	cold       *policy.ColdStart
	coldProber *probe.Prober
	gen        uint64        // bumped when the running goroutine is replaced; stale results are dropped
	fresh      bool          // started from unknown by the last learn: a new check, or a new target
	first      time.Duration // the first probe runs at a random moment within it (see Scheduler)
	cancel     context.CancelFunc
	h          Hysteresis
	since      time.Time
	last       *probe.Result
	reason     string
	recent     ring // every result
	fails      ring // failures only
	// localFailing is set while its probes fail on this host (probe.Result.Local), so
	// that the warning is logged once per spell.
	localFailing bool
}

// stop cancels the check's loop, if it runs.
func (cr *checkRun) stop() {
	if cr.cancel != nil {
		cr.cancel()
	}
}

// job is what one loop of a check probes, fixed when the loop starts so that a round
// reads no state shared with Update.
type job struct {
	member     string
	pool       string
	gen        uint64
	first      time.Duration
	check      *policy.Check
	prober     *probe.Prober
	target     probe.Target
	cold       *policy.ColdStart
	coldProber *probe.Prober
}

func (cr *checkRun) job(pool string) job {
	return job{member: cr.member, pool: pool, gen: cr.gen, first: cr.first, check: cr.c, prober: cr.prober, target: cr.target,
		cold: cr.cold, coldProber: cr.coldProber}
}

// ring is a fixed-size history of results.
type ring struct {
	buf [historyLen]probe.Result
	n   int // total written
}

func (r *ring) add(res probe.Result) { r.buf[r.n%historyLen] = res; r.n++ }

func (r *ring) each(f func(probe.Result)) {
	start := max(0, r.n-historyLen)
	for i := start; i < r.n; i++ {
		f(r.buf[i%historyLen])
	}
}

// NewScheduler returns a scheduler with nothing to probe; Update gives it a snapshot.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Preparers == nil {
		cfg.Preparers = probe.Default
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		board:     cfg.Board,
		log:       cfg.Logger,
		preparers: cfg.Preparers,
		sem:       make(chan struct{}, cfg.MaxInFlight),
		metrics:   cfg.Metrics,
		quick:     cfg.Quick,
		activity:  cfg.Activity,
		ctx:       ctx,
		cancel:    cancel,
		members:   map[string]*memberRun{},
	}
}

// Close stops every probe loop and waits for them to return.
func (s *Scheduler) Close() {
	s.cancel()
	s.wg.Wait()
}

// Update makes snap the set of members and checks to probe. A member (by ID) and check
// (by name) that still exist keep their status, counters and history and, when their
// settings are unchanged, their running loop and prober. A check whose settings changed
// is prepared again and restarted with its status kept, except when its target (address,
// host or port) changed: the old verdict was about another endpoint, so that check starts
// again from Unknown. New members and checks start Unknown; removed ones are stopped and
// unpublished.
func (s *Scheduler) Update(snap *policy.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.learn(snap, time.Now()) {
		s.start(cr)
	}
	for _, mr := range s.loadStarts {
		s.startLoad(mr)
	}
	s.loadStarts = nil
}

// learn records snap as Update describes and returns the checks whose loops must start;
// it starts none itself, so that a test can run their rounds synchronously. s.mu is held.
func (s *Scheduler) learn(snap *policy.Snapshot, now time.Time) []*checkRun {
	// A pool's check is one *policy.Check shared by its members: prepare it once.
	prepared := map[*policy.Check]*probe.Prober{}
	prepare := func(m *policy.Member, c *policy.Check) *probe.Prober {
		p := prepared[c]
		if p == nil {
			p = probe.Prepare(s.preparers, c)
			prepared[c] = p
			if err := p.Err(); err != nil {
				s.log.Error("check cannot run; its probes fail", "pool", m.Pool, "check", c.Name, "err", err)
			}
		}
		return p
	}
	var starts []*checkRun
	s.loadStarts = s.loadStarts[:0]
	initial := !s.loaded
	seen := make(map[string]bool, len(snap.Members))
	var maxInterval time.Duration
	for _, m := range snap.Members {
		id := m.ID()
		seen[id] = true
		mr := s.members[id]
		if mr == nil {
			mr = &memberRun{status: api.StatusUnknown, since: now}
			s.members[id] = mr
		}
		mr.m = m
		var cold *policy.ColdStart
		if p := snap.PoolByName[m.Pool]; p != nil {
			cold = p.ColdStart
		}
		starts = append(starts, s.learnChecks(mr, prepare, cold, now)...)
		if s.learnLoad(mr, initial) {
			s.loadStarts = append(s.loadStarts, mr)
		}
		for _, c := range m.Checks {
			maxInterval = max(maxInterval, c.Interval)
		}
		s.publish(mr, now)
	}
	for id, mr := range s.members {
		if !seen[id] {
			s.forget(id, mr)
		}
	}
	fresh := 0
	for _, cr := range starts {
		if cr.fresh {
			fresh++
		}
	}
	quick := !initial && fresh <= cap(s.sem)
	for _, cr := range starts {
		cr.first = cr.c.Interval
		if s.quick || quick && cr.fresh {
			cr.first = min(cr.c.Interval, QuickStart)
		}
	}
	s.coldStart = false
	for _, p := range snap.Pools {
		s.coldStart = s.coldStart || p.ColdStart != nil
	}
	s.loaded = true
	s.loadedAt = now
	s.maxInterval = maxInterval
	return starts
}

// learnChecks matches the checks of mr's new member with its running ones by name and
// returns those to start. s.mu is held.
func (s *Scheduler) learnChecks(mr *memberRun, prepare func(*policy.Member, *policy.Check) *probe.Prober, cold *policy.ColdStart, now time.Time) []*checkRun {
	id := mr.m.ID()
	old := make(map[string]*checkRun, len(mr.checks))
	for _, cr := range mr.checks {
		old[cr.c.Name] = cr
	}
	checks := make([]*checkRun, 0, len(mr.m.Checks))
	var starts []*checkRun
	for _, c := range mr.m.Checks {
		target := probe.TargetOf(mr.m, c)
		cr := old[c.Name]
		delete(old, c.Name)
		switch {
		case cr == nil:
			cr = &checkRun{since: now, fresh: true}
		case cr.target != target:
			cr.stop()
			*cr = checkRun{gen: cr.gen + 1, since: now, fresh: true}
		case !reflect.DeepEqual(*cr.c, *c) || !reflect.DeepEqual(cr.cold, cold):
			cr.stop()
			cr.gen++
			cr.fresh = false
		default:
			cr.c = c // same settings; keep the loop and its prober
			checks = append(checks, cr)
			continue
		}
		cr.member, cr.c, cr.target, cr.prober = id, c, target, prepare(mr.m, c)
		cr.cold, cr.coldProber = cold, nil
		if cold != nil {
			cc := *c
			cc.Timeout = cold.Timeout
			cr.coldProber = probe.Prepare(s.preparers, &cc)
		}
		cr.h.Rise, cr.h.Fall = c.Rise, c.Fall
		checks = append(checks, cr)
		if c.Interval <= 0 {
			cr.reason = reasonNoInterval
			s.log.Error("check has no interval; not probed", "member", id, "check", c.Name)
			continue
		}
		starts = append(starts, cr)
	}
	for _, cr := range old {
		cr.stop()
	}
	mr.checks = checks
	return starts
}

// forget stops a member that left the policy and unpublishes it. s.mu is held.
func (s *Scheduler) forget(id string, mr *memberRun) {
	for _, cr := range mr.checks {
		cr.stop()
	}
	if mr.load != nil {
		mr.load.stop()
	}
	delete(s.members, id)
	s.board.Delete(mr.m.Pool, mr.m.Name)
	if s.metrics != nil {
		s.metrics.forget(mr.m)
	}
}

// start launches cr's loop; s.mu is held.
func (s *Scheduler) start(cr *checkRun) {
	ctx, cancel := context.WithCancel(s.ctx)
	cr.cancel = cancel
	j := cr.job(s.members[cr.member].m.Pool)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx, j)
	}()
}

func (s *Scheduler) loop(ctx context.Context, j job) {
	t := time.NewTimer(rand.N(j.first))
	defer t.Stop()
	warm := false            // the last probe ran while the pool was active: its backend is warm
	var wake <-chan struct{} // while idle: the pool was answered again
	for {
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
			woken = true
		}
		start := time.Now()
		wake = nil
		idle := false
		if j.cold != nil {
			// Woken taken before Idle is asked, so that an answer in between still wakes
			// the next wait.
			wake = s.activity.Woken(j.pool)
			idle = s.activity.Idle(j.pool, j.cold.IdleAfter, start)
		}
		if woken && idle {
			continue // answered long ago (a restarted node's): still idle, the timer runs on
		}
		if !idle {
			wake = nil
		}
		s.round(ctx, j, j.cold != nil && (idle || !warm))
		warm = !idle
		every := j.check.Interval
		if idle {
			every = j.cold.IdleInterval
		}
		t.Reset(max(0, every-time.Since(start)))
	}
}

// round runs one probe and records it. It is the unit the loop repeats (and the one a
// test calls synchronously); a panic in it is recovered so the loop survives.
//
// A cold round probes with the cold_start timeout (j.coldProber).
func (s *Scheduler) round(ctx context.Context, j job, cold bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("probe round panic", "member", j.member, "check", j.check.Name, "panic", r, "stack", string(debug.Stack()))
			if s.metrics != nil {
				s.metrics.panics.Inc()
			}
		}
	}()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	prober := j.prober
	if cold && j.coldProber != nil {
		prober = j.coldProber
	}
	res := prober.Probe(ctx, j.target)
	<-s.sem
	if ctx.Err() != nil {
		return // stopped mid-probe: the result says nothing about the member
	}
	if res.Panic != "" {
		s.log.Error("prober panic", "member", j.member, "check", j.check.Name, "reason", res.Reason, "stack", res.Panic)
		if s.metrics != nil {
			s.metrics.panics.Inc()
		}
	}
	s.record(j, res)
}

// record feeds a result of j to its check's hysteresis and republishes the member.
func (s *Scheduler) record(j job, res probe.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.members[j.member]
	if mr == nil {
		return
	}
	var cr *checkRun
	for _, x := range mr.checks {
		if x.c.Name == j.check.Name {
			cr = x
		}
	}
	if cr == nil || cr.gen != j.gen {
		return // the check was removed or restarted since this probe began
	}
	if res.Local {
		// This host failed, not the member: its status stays as it was.
		if s.metrics != nil {
			s.metrics.localErrors.WithLabelValues(mr.m.Pool, cr.c.Name).Inc()
		}
		if !cr.localFailing {
			s.log.Warn("probe failed on this host, not counted against the member", "member", j.member, "check", j.check.Name, "reason", res.Reason)
		}
		cr.localFailing = true
		return
	}
	cr.localFailing = false
	res.Panic = ""
	if cr.h.Observe(res.OK) {
		cr.since = res.At
		s.log.Info("check status", "member", j.member, "check", j.check.Name, "status", cr.h.Status.String(), "reason", res.Reason)
	}
	cr.last = &res
	cr.recent.add(res)
	if !res.OK {
		cr.reason = res.Reason
		cr.fails.add(res)
		mr.reason = res.Reason
	}
	mr.last = &res
	if s.metrics != nil {
		s.metrics.observe(mr.m, cr.c, res)
	}
	s.publish(mr, res.At)
}

// publish recomputes mr's status from its checks and writes it to the board; s.mu is held.
func (s *Scheduler) publish(mr *memberRun, now time.Time) {
	statuses := make([]api.Status, len(mr.checks))
	rep := api.MemberReport{Pool: mr.m.Pool, Member: mr.m.Name, Checks: make([]api.CheckReport, len(mr.checks)), Reason: mr.reason}
	for i, cr := range mr.checks {
		statuses[i] = cr.h.Status
		rep.Checks[i] = checkReport(cr)
	}
	// A member without checks has nothing that could take it down: it is up, as gdnsd
	// treats an unmonitored address.
	if st := combine(statuses); st != mr.status {
		if mr.status != api.StatusUnknown || st != api.StatusUnknown {
			s.log.Info("member status", "member", mr.m.ID(), "status", st.String(), "was", mr.status.String(), "reason", mr.reason)
		}
		mr.status, mr.since = st, now
	}
	rep.Status, rep.Since = mr.status, mr.since.UTC()
	rep.Load = loadReport(mr.load)
	if mr.last != nil {
		lr := NewResultReport(*mr.last)
		rep.LastResult = &lr
	}
	if s.metrics != nil {
		s.metrics.status(mr.m, mr.status)
	}
	s.board.Set(rep)
}

func checkReport(cr *checkRun) api.CheckReport {
	r := api.CheckReport{
		Name: cr.c.Name, Type: cr.c.Type, Target: cr.target.String(),
		Status: cr.h.Status, Since: cr.since.UTC(),
		Successes: cr.h.Successes, Failures: cr.h.Failures, Reason: cr.reason,
	}
	if cr.last != nil {
		lr := NewResultReport(*cr.last)
		r.LastResult = &lr
	}
	// History: failures older than the recent window, then the recent results.
	var hist []probe.Result
	cr.recent.each(func(res probe.Result) { hist = append(hist, res) })
	var older []probe.Result
	cr.fails.each(func(res probe.Result) {
		if len(hist) == 0 || res.At.Before(hist[0].At) {
			older = append(older, res)
		}
	})
	hist = append(older, hist...)
	r.History = make([]api.ResultReport, len(hist))
	for i, h := range hist {
		r.History[i] = NewResultReport(h)
	}
	return r
}

// HasColdStart reports whether a pool of the policy has a cold_start block.
func (s *Scheduler) HasColdStart() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.coldStart
}

// Ready reports whether the scheduler has a policy and has a first result for every check,
// or has been running it for two of its longest intervals (a member whose probes all time
// out still gets a verdict then, and a member that never answers must not hold readiness
// hostage). Once ready it stays ready: a reload adding members does not flap /readyz.
func (s *Scheduler) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return true
	}
	if !s.loaded {
		return false
	}
	if time.Since(s.loadedAt) >= 2*s.maxInterval {
		s.ready = true
		return true
	}
	for _, mr := range s.members {
		for _, cr := range mr.checks {
			if cr.last == nil {
				return false
			}
		}
	}
	s.ready = true
	return true
}
