// Package client subscribes glbdns to one or more healthd instances and merges their
// reports into one health view, read lock-free on the DNS hot path.
//
// Subscription: for each healthd URL, Run keeps one blocking watch open
// (GET /v1/health?index=N&wait=W, as Consul's blocking queries), and reconnects after an
// error with exponential backoff and full jitter from 100ms to 5s. The watch wait is
// min(30s, StaleAfter/2): a reporter with nothing new answers at the end of every wait, so a
// live reporter is heard from well within StaleAfter even when no status changes.
//
// Merging (Route 53 style, probing from several vantage points): a reporter is fresh when
// it answered within StaleAfter. A member is down only when a strict majority of the fresh
// reporters that have a verdict on it (up or down) say down; a reporter that lists it as
// unknown, or does not list it, does not vote. With no voter the member is unknown. With
// no fresh reporter at all the last merged view is kept for Grace (gdnsd's extmon freezes
// states when its helper dies, for the same reason: a healthd restart or a network blip
// must not move traffic), after which every member is unknown.
//
// Unknown members are treated as their pool's unknown_is says, else as up unless
// Config.UnknownIsDown is set: failing open is the safe default for a load balancer whose
// health source is away.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// Defaults.
const (
	DefaultStaleAfter = 15 * time.Second
	DefaultGrace      = 60 * time.Second
	// DefaultWait is the blocking watch's wait (capped to StaleAfter/2).
	DefaultWait = 30 * time.Second
	// Backoff bounds between failed requests to one reporter: quick enough to notice a
	// restarted healthd at once, slow enough not to hammer a dead one.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxReportBytes bounds a report body (a 100k-member report is well under this).
	maxReportBytes = 64 << 20
)

// Config configures a Client.
type Config struct {
	// URLs of the healthd instances, e.g. "http://10.0.0.5:8054" (a trailing
	// "/v1/health" is accepted). At least one.
	URLs []string
	// StaleAfter: a reporter not heard from for this long stops counting. Default 15s.
	StaleAfter time.Duration
	// Grace: with no fresh reporter, the last merged view is kept this long. Default 60s.
	Grace time.Duration
	// UnknownIsDown treats members of unknown status as down. Default false: unknown
	// members (not yet probed, or no reporter at all past Grace) count as up. A pool's
	// unknown_is attribute overrides it for the pool's members.
	UnknownIsDown bool
	// Wait is the blocking watch's wait, default 30s, capped to StaleAfter/2.
	Wait time.Duration
	// Logger, default slog.Default().
	Logger *slog.Logger
	// OnChange is called (from one goroutine, coalesced: never concurrently, and once for
	// a burst of changes) after the merged view changed. May be nil.
	OnChange func()
	// HTTPClient, default a client with a timeout of Wait + 10s.
	HTTPClient *http.Client
}

// Client subscribes to healthd instances and keeps a merged health view.
type Client struct {
	cfg       Config
	log       *slog.Logger
	reporters []*reporter
	view      atomic.Pointer[view]
	kick      chan struct{} // a reporter answered: re-merge
	changed   chan struct{} // the view changed: call OnChange (capacity 1: coalesces)
	now       func() time.Time
}

type reporter struct {
	url string // full /v1/health URL

	mu          sync.Mutex
	id          string
	lastContact time.Time
	index       uint64
	members     map[string]api.Status // immutable once stored
	lastErr     string
}

// view is an immutable merged view.
type view struct {
	status map[string]api.Status // by member ID; absent means unknown
}

// New validates cfg and returns a client whose view is empty (every member unknown) until
// Run hears from a reporter.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no healthd url")
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	cfg.Wait = min(cfg.Wait, cfg.StaleAfter/2)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		// Wait plus healthd's jitter (1/16) plus slack: a watch that outlives this is hung.
		cfg.HTTPClient = &http.Client{Timeout: cfg.Wait + cfg.Wait/16 + 10*time.Second}
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "healthclient"),
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
		now:     time.Now,
	}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad healthd url %q: want http(s)://host:port", raw)
		}
		if !strings.HasSuffix(u.Path, "/v1/health") {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/health"
		}
		c.reporters = append(c.reporters, &reporter{url: u.String()})
	}
	c.view.Store(&view{})
	return c, nil
}

// Run subscribes to every healthd until ctx is done.
func (c *Client) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range c.reporters {
		wg.Go(func() { c.watch(ctx, r) })
	}
	wg.Go(func() { c.notify(ctx) })
	c.mergeLoop(ctx)
	wg.Wait()
}

// watch keeps a blocking watch open on one reporter.
func (c *Client) watch(ctx context.Context, r *reporter) {
	backoff := minBackoff
	var index uint64
	for ctx.Err() == nil {
		rep, err := c.fetch(ctx, r.url, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			first := r.lastErr == ""
			r.lastErr = err.Error()
			r.mu.Unlock()
			if first {
				c.log.Warn("healthd unreachable", "url", r.url, "err", err)
			}
			// Full jitter: sleep a random time up to the current backoff.
			t := time.NewTimer(rand.N(backoff) + 1)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
		members := make(map[string]api.Status, len(rep.Members))
		for _, m := range rep.Members {
			members[m.Pool+"/"+m.Member] = m.Status
		}
		r.mu.Lock()
		if r.lastErr != "" {
			c.log.Info("healthd reachable", "url", r.url, "reporter", rep.Reporter)
		}
		r.id, r.lastContact, r.index, r.members, r.lastErr = rep.Reporter, c.now(), rep.Index, members, ""
		r.mu.Unlock()
		// An index that went backwards means healthd restarted: follow it from there.
		index = rep.Index
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *Client) fetch(ctx context.Context, base string, index uint64) (*api.Report, error) {
	u := base + "?index=" + strconv.FormatUint(index, 10) + "&wait=" + c.cfg.Wait.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("healthd answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var rep api.Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReportBytes)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("decode health report: %w", err)
	}
	return &rep, nil
}

// mergeLoop re-merges after every answer and on a tick, since freshness and grace run out
// without any answer arriving.
func (c *Client) mergeLoop(ctx context.Context) {
	tick := min(c.cfg.StaleAfter, c.cfg.Grace) / 4
	tick = max(10*time.Millisecond, min(tick, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastFresh time.Time // last moment some reporter was fresh
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		now := c.now()
		next, anyFresh := c.merge(now)
		if anyFresh {
			lastFresh = now
		} else if now.Sub(lastFresh) < c.cfg.Grace && !lastFresh.IsZero() {
			continue // grace: keep the last merged view
		} else {
			next = &view{} // no reporter: every member unknown
		}
		if !maps.Equal(next.status, c.view.Load().status) {
			c.view.Store(next)
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}
}

// merge computes the majority view of the fresh reporters.
func (c *Client) merge(now time.Time) (*view, bool) {
	type tally struct{ up, down int }
	votes := map[string]tally{}
	anyFresh := false
	for _, r := range c.reporters {
		r.mu.Lock()
		fresh := !r.lastContact.IsZero() && now.Sub(r.lastContact) < c.cfg.StaleAfter
		members := r.members
		r.mu.Unlock()
		if !fresh {
			continue
		}
		anyFresh = true
		for id, st := range members {
			v := votes[id]
			switch st {
			case api.StatusUp:
				v.up++
			case api.StatusDown:
				v.down++
			}
			votes[id] = v
		}
	}
	v := &view{status: make(map[string]api.Status, len(votes))}
	for id, t := range votes {
		switch {
		case t.up+t.down == 0:
			// nobody knows: unknown (absent)
		case 2*t.down > t.up+t.down:
			v.status[id] = api.StatusDown
		default:
			v.status[id] = api.StatusUp
		}
	}
	return v, anyFresh
}

func (c *Client) notify(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
			if c.cfg.OnChange != nil {
				c.cfg.OnChange()
			}
		}
	}
}

// Status returns the merged status of the member with ID id ("pool/member").
func (c *Client) Status(id string) api.Status {
	return c.view.Load().status[id] // absent: Unknown (the zero value)
}

// For returns the health of snap's members under the current merged view, as a
// policy.Health whose Up is a slice index (lock-free, allocation-free). It is a snapshot:
// call For again after OnChange to see later changes.
func (c *Client) For(snap *policy.Snapshot) *Health {
	v := c.view.Load()
	h := &Health{up: make([]bool, len(snap.Members)), unknownUp: !c.cfg.UnknownIsDown}
	var poolUnknownUp map[string]bool // pools whose unknown_is overrides the default
	for _, p := range snap.Pools {
		if p.UnknownIs != policy.UnknownDefault {
			if poolUnknownUp == nil {
				poolUnknownUp = map[string]bool{}
			}
			poolUnknownUp[p.Name] = p.UnknownIs == policy.UnknownUp
		}
	}
	for _, m := range snap.Members {
		st := v.status[m.ID()]
		unknownUp, set := poolUnknownUp[m.Pool]
		if !set {
			unknownUp = h.unknownUp
		}
		if m.Index >= 0 && m.Index < len(h.up) {
			h.up[m.Index] = st == api.StatusUp || (st == api.StatusUnknown && unknownUp)
		}
	}
	return h
}

// Health is a health view for one policy snapshot (it implements policy.Health).
type Health struct {
	up        []bool
	unknownUp bool
}

// Up reports whether m is usable. A member outside the snapshot the view was built for
// is unknown.
func (h *Health) Up(m *policy.Member) bool {
	if m.Index >= 0 && m.Index < len(h.up) {
		return h.up[m.Index]
	}
	return h.unknownUp
}

// Reporters describes every subscription, in the order of Config.URLs.
func (c *Client) Reporters() []api.ReporterState {
	now := c.now()
	out := make([]api.ReporterState, len(c.reporters))
	for i, r := range c.reporters {
		r.mu.Lock()
		out[i] = api.ReporterState{
			URL: r.url, ID: r.id, LastContact: r.lastContact, Index: r.index,
			Members: len(r.members), LastError: r.lastErr,
			Fresh: !r.lastContact.IsZero() && now.Sub(r.lastContact) < c.cfg.StaleAfter,
		}
		r.mu.Unlock()
	}
	return out
}

var _ policy.Health = (*Health)(nil)
