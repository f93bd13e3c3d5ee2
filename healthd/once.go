package healthd

import (
	"context"
	"log/slog"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/policy"
)

// Once probes every member of snap as the daemon does (each check on its interval, its
// verdict after rise consecutive successes or fall consecutive failures) until every
// member has a verdict or ctx ends, and returns the report then: healthd -once, for a
// cron job, a CI step or a function that checks instead of an always-on daemon. The first
// probes are not spread over their interval (SchedulerConfig.Quick), so a run takes about
// the longest interval times the largest rise or fall. Members still unknown when ctx
// ends are reported unknown. preparers may be nil (probe.Default).
func Once(ctx context.Context, snap *policy.Snapshot, id string, log *slog.Logger, preparers map[string]probe.Preparer) api.Report {
	board := NewBoard(id)
	sched := NewScheduler(SchedulerConfig{Board: board, Logger: log, Preparers: preparers, Quick: true})
	defer sched.Close()
	sched.Update(snap)
	for {
		_, changed := board.Watch()
		r := board.Report(false)
		if Decided(r) {
			return r
		}
		select {
		case <-ctx.Done():
			return board.Report(false)
		case <-changed:
		}
	}
}

// Decided reports whether every member of r has a verdict (up or down).
func Decided(r api.Report) bool {
	for _, m := range r.Members {
		if m.Status == api.StatusUnknown {
			return false
		}
	}
	return true
}
