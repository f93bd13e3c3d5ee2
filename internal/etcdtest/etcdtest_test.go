package etcdtest

import (
	"context"
	"testing"
	"time"
)

// TestClusterSurvivesItsLeader: a 3-member cluster takes a write, loses its leader, elects
// another and takes writes again; the killed member comes back with the data.
func TestClusterSurvivesItsLeader(t *testing.T) {
	c := Start(t, 3)
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	old := c.Leader()
	c.Kill(old)
	// The write in flight when the leader dies may time out; the cluster takes writes
	// again once it has elected another.
	killed := time.Now()
	for {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Put(wctx, "k", "v2")
		wcancel()
		if err == nil {
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("no write within 20s of the leader's death: %v", err)
		}
	}
	t.Logf("writes again %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	if l := c.Leader(); l == old {
		t.Fatal("the killed member still leads")
	}
	c.Restart(old)
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v2" {
		t.Fatalf("get after restart: %v %v", err, resp)
	}
}
