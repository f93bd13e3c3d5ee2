package healthd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
)

// Activity is what healthd knows of the queries its cold_start pools get: for each pool,
// the latest moment a glbdns node answered it (GET /v1/activity). It tells an idle pool,
// whose checks slow down, from an active one. Knowing nothing (no glbdns to ask, none
// answering, a pool no node lists) counts as active: the checks probe as the policy
// says, never less because healthd is blind. Safe for concurrent use.
type Activity struct {
	mu   sync.Mutex
	last map[string]time.Time     // nil: nothing known
	wake map[string]chan struct{} // closed when the pool's time moves (Woken)
}

// NewActivity returns an Activity that knows nothing yet.
func NewActivity() *Activity { return &Activity{wake: map[string]chan struct{}{}} }

// Set replaces what is known with last (nil: nothing) and wakes the idle loops of every
// pool whose time moved forward: it was answered, so its checks probe now rather than at
// the end of their idle interval.
func (a *Activity) Set(last map[string]time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for pool, ch := range a.wake {
		if t, ok := last[pool]; ok && t.After(a.last[pool]) {
			close(ch)
			delete(a.wake, pool)
		}
	}
	a.last = last
}

// Idle reports whether pool was answered by no node for idleAfter at now; unknown: not.
func (a *Activity) Idle(pool string, idleAfter time.Duration, now time.Time) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.last[pool]
	return ok && now.Sub(t) >= idleAfter
}

// Woken is closed when pool's time next moves forward (Set). Take it before asking Idle,
// so that an answer between the two is not missed.
func (a *Activity) Woken(pool string) <-chan struct{} {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.wake[pool]
	if ch == nil {
		ch = make(chan struct{})
		a.wake[pool] = ch
	}
	return ch
}

// MergeActivity is, for each pool, the latest time any of the nodes answered it; a node
// that has not answered it since it began counting gives its Since, as it may have
// answered before (a node that restarts keeps a pool active for idle_after more).
func MergeActivity(nodes []api.Activity) map[string]time.Time {
	out := map[string]time.Time{}
	for _, n := range nodes {
		for _, p := range n.Pools {
			t := n.Since
			if p.LastAnswered != nil && p.LastAnswered.After(t) {
				t = *p.LastAnswered
			}
			if t.After(out[p.Pool]) {
				out[p.Pool] = t
			}
		}
	}
	return out
}

// ActivityConfig configures PollActivity.
type ActivityConfig struct {
	// URLs are glbdns admin base URLs (http://host:8053) to ask.
	URLs []string
	// Cluster, when set, adds the admin address of every glbdns node registered there.
	Cluster *cluster.Registry
	// Token is sent as the bearer token: glbdns's report token (or its admin token); ""
	// for a node whose reads are open.
	Token string
	// Every is the period of the questions, default DefaultActivityEvery.
	Every time.Duration
	// Client, default one with ActivityTimeout.
	Client *http.Client
	Logger *slog.Logger
	// Wanted, when set, is asked before every round: false skips it (no pool of the
	// policy has cold_start, so nobody needs asking).
	Wanted func() bool
}

// DefaultActivityEvery is how often healthd asks the glbdns nodes which pools they
// answered: far below any sensible idle_after (minutes to an hour), and one small request
// per node.
const DefaultActivityEvery = 15 * time.Second

// ActivityTimeout bounds one question to one node.
const ActivityTimeout = 5 * time.Second

// maxActivityBytes bounds a node's answer: about 100 bytes per pool, for 10,000 pools.
const maxActivityBytes = 4 << 20

// PollActivity asks every node (cfg.URLs and the cluster's) for its activity at once and
// every cfg.Every, and sets the merge of the answers into a, until ctx is done. When no
// node answers, a knows nothing (every pool active).
func PollActivity(ctx context.Context, a *Activity, cfg ActivityConfig) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultActivityEvery
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: ActivityTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	failing := map[string]bool{}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		if cfg.Wanted == nil || cfg.Wanted() {
			pollRound(ctx, a, &cfg, failing)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollRound asks every node once and sets what they answered into a; failing are the
// URLs whose last question failed (logged once per spell).
func pollRound(ctx context.Context, a *Activity, cfg *ActivityConfig, failing map[string]bool) {
	urls := append([]string(nil), cfg.URLs...)
	if cfg.Cluster != nil {
		nodes, err := cluster.List[api.NodeState](ctx, cfg.Cluster, cluster.Nodes)
		if err != nil {
			cfg.Logger.Debug("cluster nodes not listed for their activity", "err", err)
		}
		for _, n := range nodes {
			if n.Admin != "" {
				urls = append(urls, "http://"+n.Admin)
			}
		}
	}
	var acts []api.Activity
	for _, u := range urls {
		act, err := fetchActivity(ctx, cfg.Client, u, cfg.Token)
		if err != nil {
			if !failing[u] {
				cfg.Logger.Warn("glbdns activity not read; its pools count as active", "url", u, "err", err)
			}
			failing[u] = true
			continue
		}
		if failing[u] {
			cfg.Logger.Info("glbdns activity read again", "url", u)
		}
		delete(failing, u)
		acts = append(acts, act)
	}
	if len(acts) == 0 {
		a.Set(nil)
		return
	}
	a.Set(MergeActivity(acts))
}

func fetchActivity(ctx context.Context, hc *http.Client, base, token string) (api.Activity, error) {
	var act api.Activity
	ctx, cancel := context.WithTimeout(ctx, ActivityTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/activity", nil)
	if err != nil {
		return act, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return act, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return act, fmt.Errorf("%s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, maxActivityBytes)).Decode(&act)
	return act, err
}
