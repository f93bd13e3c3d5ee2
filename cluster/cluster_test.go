package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/etcdtest"
)

// waitFor polls cond (bounded) and fails with what.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRegisterFollowAndLapse(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	reg := New(cli, "/test/", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var view View
	go Follow(ctx, reg, Reporters, view.SetReporters)
	go Follow(ctx, reg, Nodes, view.SetNodes)

	// A node registers and rewrites its value on change.
	hash := "a"
	changed := make(chan struct{}, 1)
	nctx, stopNode := context.WithCancel(ctx)
	go reg.Register(nctx, Nodes, "n1", func() any { return api.NodeState{ID: "n1", PolicyHash: hash} }, changed, 0)
	waitFor(t, 10*time.Second, "node listed", func() bool {
		cl := view.Cluster()
		return len(cl.Nodes) == 1 && cl.Nodes[0].PolicyHash == "a" && cl.PolicyHashes == 1
	})
	hash = "b"
	changed <- struct{}{}
	waitFor(t, 10*time.Second, "node's new hash", func() bool {
		cl := view.Cluster()
		return len(cl.Nodes) == 1 && cl.Nodes[0].PolicyHash == "b"
	})

	// A clean stop revokes the lease: the node drops out at once.
	stopNode()
	waitFor(t, 5*time.Second, "stopped node gone", func() bool { return len(view.Cluster().Nodes) == 0 })

	// A reporter whose process dies (its client gone, the lease not revoked) drops out
	// when its lease lapses.
	dead, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	short := New(dead, "/test/", slog.New(slog.DiscardHandler))
	short.ttl = 2 * time.Second
	go short.Register(ctx, Reporters, "r1", func() any { return api.ReporterInfo{ID: "r1", URL: "http://127.0.0.1:1"} }, nil, 0)
	waitFor(t, 10*time.Second, "reporter listed", func() bool {
		urls := ReporterURLs(view.Cluster().Reporters)
		return len(urls) == 1 && urls[0] == "http://127.0.0.1:1"
	})
	dead.Close()
	took := waitFor(t, 15*time.Second, "dead reporter gone", func() bool { return len(view.Cluster().Reporters) == 0 })
	t.Logf("a dead reporter dropped out %v after its client closed (lease TTL 2s)", took.Round(time.Millisecond))
}

// TestPutForFollowEntries: a value written with PutFor is followed with its id and the
// revision of its write; writing it again gives a new revision (a renewal tells itself
// apart from the same record listed again); not written again, it vanishes when its
// lease lapses.
func TestPutForFollowEntries(t *testing.T) {
	c := etcdtest.Start(t, 1)
	reg := New(c.Client(), "/test/", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type rec struct{ N int }
	var mu sync.Mutex
	var got []Entry[rec]
	go FollowEntries(ctx, reg, Pushes, func(es []Entry[rec]) {
		mu.Lock()
		defer mu.Unlock()
		got = es
	})
	snapshot := func() []Entry[rec] {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	rev1, err := reg.PutFor(ctx, Pushes, "fn", rec{1}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "first write followed", func() bool {
		es := snapshot()
		return len(es) == 1 && es[0].ID == "fn" && es[0].Rev == rev1 && es[0].Value.N == 1
	})
	rev2, err := reg.PutFor(ctx, Pushes, "fn", rec{2}, 2*time.Second)
	if err != nil || rev2 <= rev1 {
		t.Fatalf("renewal: rev %d after %d, err %v", rev2, rev1, err)
	}
	waitFor(t, 10*time.Second, "renewal followed", func() bool {
		es := snapshot()
		return len(es) == 1 && es[0].Rev == rev2 && es[0].Value.N == 2
	})
	renewed := time.Now()
	waitFor(t, 15*time.Second, "record gone when its lease lapsed", func() bool { return len(snapshot()) == 0 })
	if took := time.Since(renewed); took < time.Second {
		t.Errorf("record gone %v after its renewal with a 2s lease", took)
	} else {
		t.Logf("record gone %v after its renewal (lease 2s)", took.Round(time.Millisecond))
	}
}

// BenchmarkEtcdPut is one health-sized write (a member's verdict) to a 3-member etcd
// cluster on loopback: the cost every probe result that changes a verdict would pay if
// health travelled over etcd (docs/cluster.md, "Health data"), against the blocking HTTP
// watch, where a change costs no consensus round and no fsync.
func BenchmarkEtcdPut(b *testing.B) {
	c := etcdtest.Start(b, 3)
	cli := c.Client()
	ctx := context.Background()
	value := `{"pool":"web","member":"fra-1","status":"down","since":"2026-12-01T00:00:00Z"}`
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := cli.Put(ctx, fmt.Sprintf("/bench/health/r1/web/m%d", i%1000), value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
