// Package cluster is the membership of a glbdns cluster on etcd: every glbdns node and
// every healthd reporter registers itself under a lease, and anyone can list the live ones
// or follow them. A registration lives as long as its process keeps the lease alive: a
// process that dies, or loses etcd for longer than the lease's TTL, drops out by itself,
// with no one to clean up.
//
//	PREFIX nodes/ID       api.NodeState of a glbdns node, rewritten when its policy or
//	                      its reporters change, and every RefreshEvery
//	PREFIX reporters/ID   api.ReporterInfo of a healthd reporter
//	PREFIX pushes/NAME    a health report pushed to some node (POST /v1/health/report),
//	                      under a lease of the report's TTL (PutFor): every node counts
//	                      it, and it vanishes when the pusher does not renew it
//
// Membership is soft state, unlike the policy: a registration that cannot be written
// (etcd down) is retried, and never stops the process from serving.
package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/glbdns/glbdns/api"
)

// Defaults.
const (
	// DefaultTTL is a registration's lease: a dead process drops out within it. Ten
	// seconds is inside health's default staleness (15s), so that a reporter whose lease
	// lapses is forgotten before its last report would have gone stale anyway.
	DefaultTTL = 10 * time.Second
	// RefreshEvery rewrites a node's registration even when nothing changed, so that
	// what it says of its reporters' freshness is never older than this.
	RefreshEvery = 5 * time.Second
)

// Kinds of registration.
const (
	Nodes     = "nodes"
	Reporters = "reporters"
	Pushes    = "pushes"
)

// Registry reads and writes the registrations under a prefix.
type Registry struct {
	cli    *clientv3.Client
	prefix string
	ttl    time.Duration
	log    *slog.Logger
}

// New returns the registry of the cluster whose keys are under prefix (ending in "/").
func New(cli *clientv3.Client, prefix string, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	return &Registry{cli: cli, prefix: prefix, ttl: DefaultTTL, log: log.With("component", "cluster")}
}

func (r *Registry) key(kind, id string) string { return r.prefix + kind + "/" + id }

// Register keeps the registration kind/id alive until ctx is done, its value the JSON of
// value() (read again at every write). It writes at once, then whenever changed receives,
// every refresh (0: never but on change), and after etcd comes back; the lease is revoked
// when ctx ends, so a clean stop drops out at once.
func (r *Registry) Register(ctx context.Context, kind, id string, value func() any, changed <-chan struct{}, refresh time.Duration) {
	var lease clientv3.LeaseID
	var tick <-chan time.Time
	if refresh > 0 {
		t := time.NewTicker(refresh)
		defer t.Stop()
		tick = t.C
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	defer func() {
		if lease != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = r.cli.Revoke(rctx, lease)
			cancel()
		}
	}()
	var alive <-chan *clientv3.LeaseKeepAliveResponse
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick:
		case <-retry.C:
		case _, ok := <-alive:
			if ok {
				continue
			}
			lease, alive = 0, nil // the keep-alive ended: the lease is gone or etcd is
		}
		var err error
		if lease == 0 {
			lease, alive, err = r.grant(ctx)
		}
		if err == nil {
			err = r.put(ctx, kind, id, value(), lease)
		}
		if err != nil {
			if !failing {
				r.log.Warn("cluster registration not written, retrying", "kind", kind, "id", id, "err", err)
			}
			failing = true
			lease, alive = 0, nil
			retry.Reset(time.Second)
			continue
		}
		if failing {
			r.log.Info("cluster registration written", "kind", kind, "id", id)
		}
		failing = false
	}
}

func (r *Registry) grant(ctx context.Context) (clientv3.LeaseID, <-chan *clientv3.LeaseKeepAliveResponse, error) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	g, err := r.cli.Grant(gctx, int64(r.ttl/time.Second))
	if err != nil {
		return 0, nil, err
	}
	alive, err := r.cli.KeepAlive(ctx, g.ID)
	if err != nil {
		return 0, nil, err
	}
	return g.ID, alive, nil
}

func (r *Registry) put(ctx context.Context, kind, id string, v any, lease clientv3.LeaseID) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = r.cli.Put(pctx, r.key(kind, id), string(data), clientv3.WithLease(lease))
	return err
}

// PutFor writes kind/id, the JSON of v, under a lease of its own that lapses after ttl
// (rounded up to whole seconds; etcd may lengthen a very short one), and returns the
// revision of the write: a value that is not written again within ttl vanishes by itself.
// A write moves the key to its new lease, so the one before lapses harmlessly.
func (r *Registry) PutFor(ctx context.Context, kind, id string, v any, ttl time.Duration) (int64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	g, err := r.cli.Grant(pctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	resp, err := r.cli.Put(pctx, r.key(kind, id), string(data), clientv3.WithLease(g.ID))
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Entry is one live registration with its key's last part (the id) and the revision it was
// last written at, which tells a rewrite from the same value listed again.
type Entry[T any] struct {
	ID    string
	Rev   int64
	Value T
}

// List returns the live registrations of kind, decoded into T, sorted by key.
func List[T any](ctx context.Context, r *Registry, kind string) ([]T, error) {
	es, _, err := list[T](ctx, r, kind)
	return values(es), err
}

func values[T any](es []Entry[T]) []T {
	out := make([]T, len(es))
	for i := range es {
		out[i] = es[i].Value
	}
	return out
}

// list is List's entries and the revision it read at, from which a watch misses nothing.
// A value that does not decode is left out.
func list[T any](ctx context.Context, r *Registry, kind string) ([]Entry[T], int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dir := r.prefix + kind + "/"
	resp, err := r.cli.Get(lctx, dir, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, err
	}
	out := make([]Entry[T], 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e := Entry[T]{ID: strings.TrimPrefix(string(kv.Key), dir), Rev: kv.ModRevision}
		if json.Unmarshal(kv.Value, &e.Value) == nil {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// Follow keeps the live registrations of kind and calls onChange with them after every
// change, until ctx is done: at once, after each etcd event, and again after a broken
// watch is started anew. Calls are sequential.
func Follow[T any](ctx context.Context, r *Registry, kind string, onChange func([]T)) {
	FollowEntries(ctx, r, kind, func(es []Entry[T]) { onChange(values(es)) })
}

// FollowEntries is Follow with each registration's id and revision.
func FollowEntries[T any](ctx context.Context, r *Registry, kind string, onChange func([]Entry[T])) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		regs, rev, err := list[T](ctx, r, kind)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		onChange(regs)
		// From the revision listed: a registration written between the list and the
		// watch is an event, not lost.
		wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), r.prefix+kind+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			if len(wr.Events) == 0 {
				continue
			}
			if regs, _, err = list[T](ctx, r, kind); err == nil {
				onChange(regs)
			}
		}
	}
}

// View is the cluster as last seen by Follow: safe for concurrent use, for the admin API
// and the metrics, which read it without a request to etcd.
type View struct {
	mu        sync.Mutex
	nodes     []api.NodeState
	reporters []api.ReporterInfo
}

// SetNodes and SetReporters are Follow callbacks.
func (v *View) SetNodes(ns []api.NodeState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.nodes = ns
}

// SetReporters records the registered reporters.
func (v *View) SetReporters(rs []api.ReporterInfo) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reporters = rs
}

// Cluster is the view as api.Cluster.
func (v *View) Cluster() api.Cluster {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := api.Cluster{Nodes: slices.Clone(v.nodes), Reporters: slices.Clone(v.reporters)}
	if c.Nodes == nil {
		c.Nodes = []api.NodeState{}
	}
	if c.Reporters == nil {
		c.Reporters = []api.ReporterInfo{}
	}
	c.PolicyHashes = PolicyHashes(c.Nodes)
	return c
}

// PolicyHashes is the number of different policies nodes serve.
func PolicyHashes(nodes []api.NodeState) int {
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.PolicyHash] = true
	}
	return len(seen)
}

// ReporterURLs are the URLs of registered reporters, sorted.
func ReporterURLs(rs []api.ReporterInfo) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if u := strings.TrimSpace(r.URL); u != "" {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
