package healthd

import (
	"context"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/policy"
)

// loadRun is the load reading of one member (its pool's load block), run by its own loop
// beside the checks, every interval. A reading is no verdict: a failed one leaves the
// member's status alone and keeps the last good value, which ages until glbdns counts it
// stale and answers the member by its weight.
type loadRun struct {
	sig    *policy.LoadSignal
	addr   string // the member's address or host: a change starts the readings afresh
	reader *probe.LoadReader
	gen    uint64
	first  time.Duration
	cancel context.CancelFunc

	ok     bool // a good reading exists
	value  float64
	at     time.Time
	reason string // why the latest reading failed ("" when it succeeded)
}

// loadJob is what one load loop reads, fixed when the loop starts.
type loadJob struct {
	member string
	m      *policy.Member
	gen    uint64
	first  time.Duration
	every  time.Duration
	reader *probe.LoadReader
}

// learnLoad matches the member's load signal with its running one: kept when the same,
// replaced (readings start again) when it changed, stopped when it is gone. It reports
// whether a loop must start. s.mu is held.
func (s *Scheduler) learnLoad(mr *memberRun, initial bool) bool {
	m := mr.m
	addr := m.Addr.String() + "|" + m.Host
	old := mr.load
	if old != nil && m.Load != nil && old.addr == addr && reflect.DeepEqual(*old.sig, *m.Load) {
		old.sig = m.Load
		return false
	}
	gen := uint64(0)
	if old != nil {
		old.stop()
		gen = old.gen + 1
	}
	mr.load = nil
	if m.Load == nil || m.Load.Interval <= 0 {
		return false
	}
	reader, err := probe.NewLoadReader(m.Load, nil)
	if err != nil {
		s.log.Error("load signal cannot be read", "member", m.ID(), "err", err)
		return false
	}
	first := m.Load.Interval
	if !initial {
		first = min(first, QuickStart)
	}
	mr.load = &loadRun{sig: m.Load, addr: addr, reader: reader, gen: gen, first: first}
	return true
}

func (lr *loadRun) stop() {
	if lr.cancel != nil {
		lr.cancel()
		lr.cancel = nil
	}
}

// startLoad launches mr's load loop; s.mu is held.
func (s *Scheduler) startLoad(mr *memberRun) {
	lr := mr.load
	if lr == nil || lr.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	lr.cancel = cancel
	j := loadJob{member: mr.m.ID(), m: mr.m, gen: lr.gen, first: lr.first, every: lr.sig.Interval, reader: lr.reader}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(rand.N(j.first) + 1)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			s.readLoad(ctx, j)
			t.Reset(max(0, j.every-time.Since(start)))
		}
	}()
}

// readLoad takes one reading and records it; a panic is recovered, as a probe round's.
func (s *Scheduler) readLoad(ctx context.Context, j loadJob) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("load reading panic", "member", j.member, "panic", r, "stack", string(debug.Stack()))
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
	at := time.Now()
	v, err := j.reader.Read(ctx, j.m)
	<-s.sem
	if ctx.Err() != nil {
		return
	}
	s.recordLoad(j, v, err, at)
}

// recordLoad keeps a reading of j's member and republishes it.
func (s *Scheduler) recordLoad(j loadJob, v float64, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.members[j.member]
	if mr == nil || mr.load == nil || mr.load.gen != j.gen {
		return // the member or its load signal changed since the reading began
	}
	lr := mr.load
	if s.metrics != nil {
		s.metrics.reading(mr.m, v, err)
	}
	if err != nil {
		if lr.reason == "" {
			s.log.Warn("load reading failed", "member", j.member, "err", err)
		}
		lr.reason = err.Error()
	} else {
		if lr.reason != "" {
			s.log.Info("load reading recovered", "member", j.member)
		}
		lr.ok, lr.value, lr.at, lr.reason = true, v, at, ""
	}
	s.publish(mr, time.Now())
}

// loadReport is the member's load for the API, nil before its first good reading.
// AgeSeconds is filled in by Board.Report, when the report is written.
func loadReport(lr *loadRun) *api.LoadReport {
	if lr == nil || !lr.ok {
		return nil
	}
	return &api.LoadReport{Value: lr.value, At: lr.at.UTC(), IntervalSeconds: lr.sig.Interval.Seconds(), Reason: lr.reason}
}
