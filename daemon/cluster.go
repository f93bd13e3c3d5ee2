package daemon

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
	"github.com/glbdns/glbdns/healthd/client"
	"github.com/glbdns/glbdns/internal/buildinfo"
)

// The node in its cluster: with the store on etcd, the node registers itself (its policy,
// its reporters) under a lease and follows the other nodes and the healthd reporters that
// register; a reporter found there is watched like one of -health, with no change on any
// node. Without etcd the cluster is this node and its -health reporters.

// runCluster starts the node's registration and the following of the cluster, when the
// store is on etcd.
func (d *Daemon) runCluster(ctx context.Context) {
	if d.registry == nil {
		return
	}
	go d.registry.Register(ctx, cluster.Nodes, d.id(), func() any { return d.nodeState() }, d.nodeChanged, cluster.RefreshEvery)
	go cluster.Follow(ctx, d.registry, cluster.Nodes, d.members.SetNodes)
	go d.followPushes(ctx)
	go cluster.Follow(ctx, d.registry, cluster.Reporters, func(rs []api.ReporterInfo) {
		d.members.SetReporters(rs)
		d.setReporters(ctx, cluster.ReporterURLs(rs))
	})
}

// id is the node's name in the cluster: Config.NodeID, else the host name and the DNS
// address (several nodes may run on one host).
func (d *Daemon) id() string {
	if d.nodeID == "" {
		d.nodeID = d.cfg.NodeID
		if d.nodeID == "" {
			host, _ := os.Hostname()
			d.nodeID = host + "/" + d.srv.Addr().String()
		}
	}
	return d.nodeID
}

// nodeState is what the node says of itself.
func (d *Daemon) nodeState() api.NodeState {
	p := d.PolicyStatus()
	n := api.NodeState{ID: d.id(), DNS: d.srv.Addr().String(), PolicyHash: p.Hash, Generation: p.Generation,
		FromCache: !d.st.FromCache().IsZero(), Reporters: d.health.Reporters(), Version: buildinfo.Version,
		Started: d.started.UTC(), Updated: time.Now().UTC()}
	if a := d.AdminAddr(); a != nil {
		n.Admin = a.String()
	}
	return n
}

// cluster is GET /v1/cluster: the registered nodes and reporters, or this node alone.
func (d *Daemon) cluster() api.Cluster {
	if d.registry != nil {
		return d.members.Cluster()
	}
	return api.Cluster{Nodes: []api.NodeState{d.nodeState()}, Reporters: []api.ReporterInfo{}, PolicyHashes: 1}
}

// setReporters makes the reporters watched those of Config.HealthURLs plus registered (the
// URLs the cluster's reporters registered): a watch starts for a new one and stops for one
// that left, and health counts exactly these.
func (d *Daemon) setReporters(ctx context.Context, registered []string) {
	want := slices.Clone(d.static)
	for _, raw := range registered {
		u, err := client.URL(raw)
		if err != nil {
			d.log.Warn("registered healthd reporter with a bad url ignored", "url", raw, "err", err)
			continue
		}
		if !slices.Contains(want, u) {
			want = append(want, u)
		}
	}
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	for u, stop := range d.watching {
		if !slices.Contains(want, u) {
			stop()
			delete(d.watching, u)
			d.log.Info("healthd reporter left", "url", u)
		}
	}
	for _, u := range want {
		if d.watching[u] == nil {
			wctx, stop := context.WithCancel(ctx)
			d.watching[u] = stop
			go d.hc.Watch(wctx, u, d.deliver)
			if !slices.Contains(d.static, u) {
				d.log.Info("healthd reporter joined", "url", u)
			}
		}
	}
	d.health.SetReporters(want)
	select {
	case d.nodeChanged <- struct{}{}:
	default:
	}
}
