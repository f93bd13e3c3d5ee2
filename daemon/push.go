package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/glbdns/glbdns/admin"
	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
	"github.com/glbdns/glbdns/policy/store"
)

// Pushed health reports across a cluster. A report pushed to any node (POST
// /v1/health/report) is counted by that node at once and, with the store on etcd, kept
// under PREFIX pushes/NAME with a lease of the report's TTL. Every node follows those keys
// and counts what it finds as the pusher's report, from when it sees it and for its TTL;
// when the lease lapses (the pusher did not renew) the key vanishes, and every node makes
// the pusher stale, never down. Times never cross hosts: a node dates a report by its own
// clock, so a clock skew between nodes moves nothing.
//
// Pushes are rare next to healthd's verdicts (one write per pusher per renewal, at most
// health.MaxPushers pushers), which is why they, unlike healthd's reports, may go through
// etcd's consensus (docs/cluster.md, "Health data").

// pushRecord is the value of PREFIX pushes/NAME: the pushed verdicts as the push gave them
// (not as api.MemberReport, which would add fields and bytes to every member), so that a
// record is no larger than the body admin bounds.
type pushRecord struct {
	TTL     string             `json:"ttl"`
	Node    string             `json:"node"`   // the node pushed to
	Pushed  time.Time          `json:"pushed"` // that node's clock, for people: no node reads it
	Members []api.PushedMember `json:"members"`
}

// push is admin's Config.Push: this node counts the report, then shares it (on etcd). With
// etcd unreachable the node still counts it and the pusher is told, with a 503, that the
// other nodes do not.
func (d *Daemon) push(ctx context.Context, name string, rep *api.Report, ttl time.Duration, at time.Time) error {
	d.pushMu.Lock()
	defer d.pushMu.Unlock()
	if err := d.health.Push(name, rep, ttl, at); err != nil {
		return err
	}
	if d.registry == nil {
		return nil
	}
	rec := pushRecord{TTL: ttl.String(), Node: d.id(), Pushed: at.UTC(), Members: make([]api.PushedMember, len(rep.Members))}
	for i, m := range rep.Members {
		rec.Members[i] = api.PushedMember{Pool: m.Pool, Member: m.Member, Status: m.Status, Reason: m.Reason}
	}
	rev, err := d.registry.PutFor(ctx, cluster.Pushes, name, rec, ttl)
	switch {
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: counted by this node only: the report is too large for etcd to share: %v", store.ErrInvalid, err)
	case err != nil:
		return fmt.Errorf("counted by this node only, not shared with the cluster: %w: %v", store.ErrUnavailable, err)
	}
	// Our own follower will list this revision: it is counted already.
	d.pushRevs[name] = rev
	return nil
}

// followPushes counts the reports pushed to every node, until ctx is done (on etcd).
func (d *Daemon) followPushes(ctx context.Context) {
	cluster.FollowEntries(ctx, d.registry, cluster.Pushes, d.applyPushes)
}

// applyPushes counts each record written since it was last seen (a new revision: a push
// or a renewal, not the same record listed again after another pusher's event), and makes
// stale the pushers whose record vanished.
func (d *Daemon) applyPushes(es []cluster.Entry[pushRecord]) {
	now := time.Now()
	d.pushMu.Lock()
	defer d.pushMu.Unlock()
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		seen[e.ID] = true
		if d.pushRevs[e.ID] == e.Rev {
			continue
		}
		d.pushRevs[e.ID] = e.Rev
		ttl, err := time.ParseDuration(e.Value.TTL)
		if err != nil || ttl < admin.MinPushTTL || ttl > admin.MaxPushTTL {
			d.log.Warn("pushed health report in etcd with a bad ttl ignored", "reporter", e.ID, "ttl", e.Value.TTL)
			continue
		}
		rep := &api.Report{Reporter: e.ID, Members: make([]api.MemberReport, len(e.Value.Members))}
		for i, m := range e.Value.Members {
			rep.Members[i] = api.MemberReport{Pool: m.Pool, Member: m.Member, Status: m.Status, Reason: m.Reason}
		}
		if err := d.health.Push(e.ID, rep, ttl, now); err != nil {
			d.log.Warn("pushed health report from the cluster not counted", "reporter", e.ID, "node", e.Value.Node, "err", err)
		}
	}
	for id := range d.pushRevs {
		if !seen[id] {
			d.health.Expire(id, now)
			delete(d.pushRevs, id)
		}
	}
}
