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

// Scheduler defaults.
const (
	// DefaultMaxInFlight bounds concurrent probes: 256 sockets at once stays far below a
	// default file-descriptor limit of 1024 while letting thousands of members with
	// second-scale intervals be probed on time.
	DefaultMaxInFlight = 256
	// DefaultInterval is used when a check has none (the policy's default).
	DefaultInterval = 5 * time.Second
	// historyLen is how many recent results, and separately how many recent failures,
	// each check keeps: failures are kept longer (blackbox's history does the same), so
	// the reason of the last outage survives a long run of successes.
	historyLen = 10
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Board receives every member's state. Required.
	Board *Board
	// Logger, default slog.Default().
	Logger *slog.Logger
	// Probers by check type, default probe.Default.
	Probers map[string]probe.Func
	// MaxInFlight bounds concurrent probes, default DefaultMaxInFlight.
	MaxInFlight int
	// Metrics, when not nil, records probe and status metrics.
	Metrics *Metrics
}

// Scheduler probes every check of every member of a policy snapshot on its interval, runs
// each check's results through its Hysteresis and publishes member verdicts to the Board.
//
// Each check runs in its own goroutine, first at a random moment within its first
// interval (Consul staggers first runs the same way, so a reload of thousands of members
// does not probe them all in one burst), then every interval from the start of the
// previous probe. A semaphore bounds the probes in flight; every probe has a timeout; a
// panic in a round is recovered, logged with its stack and counted, and the loop goes on.
type Scheduler struct {
	board   *Board
	log     *slog.Logger
	probers map[string]probe.Func
	sem     chan struct{}
	metrics *Metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	members     map[string]*memberRun
	loaded      bool
	loadedAt    time.Time
	maxInterval time.Duration
	ready       bool
}

type memberRun struct {
	m      *policy.Member
	checks []*checkRun // in the member's check order
	status api.Status
	since  time.Time
	last   *probe.Result // most recent result of any check
	reason string        // most recent failure reason of any check
}

type checkRun struct {
	c      *policy.Check
	target probe.Target
	gen    uint64 // bumped when the running goroutine is replaced; stale results are dropped
	cancel context.CancelFunc
	h      Hysteresis
	since  time.Time
	last   *probe.Result
	reason string
	recent ring // every result
	fails  ring // failures only
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
	if cfg.Probers == nil {
		cfg.Probers = probe.Default
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		board:   cfg.Board,
		log:     cfg.Logger,
		probers: cfg.Probers,
		sem:     make(chan struct{}, cfg.MaxInFlight),
		metrics: cfg.Metrics,
		ctx:     ctx,
		cancel:  cancel,
		members: map[string]*memberRun{},
	}
}

// Close stops every probe loop and waits for them to return.
func (s *Scheduler) Close() {
	s.cancel()
	s.wg.Wait()
}

// Update makes snap the set of members and checks to probe. A member (by ID) and check
// (by name) that still exist keep their state — status, counters, history — and, when
// their settings are unchanged, their running loop. A check whose settings changed is
// restarted with its state kept, except when its target (address, host or port) changed:
// the old verdict was about another endpoint, so that check starts again from Unknown.
// New members and checks start Unknown; removed ones are stopped and unpublished.
func (s *Scheduler) Update(snap *policy.Snapshot) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
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
		old := make(map[string]*checkRun, len(mr.checks))
		for _, cr := range mr.checks {
			old[cr.c.Name] = cr
		}
		checks := make([]*checkRun, 0, len(m.Checks))
		for _, c := range m.Checks {
			maxInterval = max(maxInterval, interval(c))
			target := probe.TargetOf(m, c)
			cr := old[c.Name]
			delete(old, c.Name)
			switch {
			case cr == nil:
				cr = &checkRun{since: now}
			case cr.target != target:
				cr.cancel()
				*cr = checkRun{gen: cr.gen + 1, since: now}
			case !reflect.DeepEqual(*cr.c, *c):
				cr.cancel()
				cr.gen++
			default:
				cr.c = c // same settings; keep the loop running
				checks = append(checks, cr)
				continue
			}
			cr.c, cr.target = c, target
			cr.h.Rise, cr.h.Fall = c.Rise, c.Fall
			s.start(id, cr)
			checks = append(checks, cr)
		}
		for _, cr := range old {
			cr.cancel()
		}
		mr.checks = checks
		s.publish(mr, now)
	}
	for id, mr := range s.members {
		if seen[id] {
			continue
		}
		for _, cr := range mr.checks {
			cr.cancel()
		}
		delete(s.members, id)
		s.board.Delete(mr.m.Pool, mr.m.Name)
		if s.metrics != nil {
			s.metrics.forget(mr.m)
		}
	}
	s.loaded = true
	s.loadedAt = now
	s.maxInterval = maxInterval
}

func interval(c *policy.Check) time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return DefaultInterval
}

// start launches cr's loop; s.mu is held.
func (s *Scheduler) start(id string, cr *checkRun) {
	ctx, cancel := context.WithCancel(s.ctx)
	cr.cancel = cancel
	gen, c, target := cr.gen, cr.c, cr.target
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx, id, gen, c, target)
	}()
}

func (s *Scheduler) loop(ctx context.Context, id string, gen uint64, c *policy.Check, target probe.Target) {
	every := interval(c)
	t := time.NewTimer(rand.N(every))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		s.round(ctx, id, gen, c, target)
		t.Reset(max(0, every-time.Since(start)))
	}
}

// round runs one probe and records it. It is the unit the loop repeats; a panic in it
// is recovered so the loop survives.
func (s *Scheduler) round(ctx context.Context, id string, gen uint64, c *policy.Check, target probe.Target) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("probe round panic", "member", id, "check", c.Name, "panic", r, "stack", string(debug.Stack()))
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
	res := probe.Run(ctx, s.probers, target, c)
	<-s.sem
	if ctx.Err() != nil {
		return // stopped mid-probe: the result says nothing about the member
	}
	if res.Panic != "" {
		s.log.Error("prober panic", "member", id, "check", c.Name, "reason", res.Reason, "stack", res.Panic)
		if s.metrics != nil {
			s.metrics.panics.Inc()
		}
	}
	s.record(id, gen, c.Name, res)
}

// record feeds a result to its check's hysteresis and republishes the member.
func (s *Scheduler) record(id string, gen uint64, check string, res probe.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.members[id]
	if mr == nil {
		return
	}
	var cr *checkRun
	for _, x := range mr.checks {
		if x.c.Name == check {
			cr = x
		}
	}
	if cr == nil || cr.gen != gen {
		return // the check was removed or restarted since this probe began
	}
	res.Panic = ""
	if cr.h.Observe(res.OK) {
		cr.since = res.At
		s.log.Info("check status", "member", id, "check", check, "status", cr.h.Status.String(), "reason", res.Reason)
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
