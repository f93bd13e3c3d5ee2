// Package client is glbdns's transport to healthd: for each healthd URL it keeps a blocking
// watch on GET /v1/health open (?index=N&wait=W, as Consul's blocking queries) and hands
// every report it receives, and every failed request, to the caller as an Update. What the
// reports mean (majority, staleness, grace) is package health's.
//
// A failed request is retried after an exponential backoff with full jitter from 100ms to
// 5s. The watch wait is min(30s, StaleAfter/2): a reporter with nothing new answers at the
// end of every wait, so a live reporter is heard from well within StaleAfter even when no
// status changes.
package client

import (
	"context"
	"encoding/json"

	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glbdns/glbdns/api"
)

// Defaults and bounds.
const (
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
	// URLs of the healthd instances Run watches, e.g. "http://10.0.0.5:8054" (a trailing
	// "/v1/health" is accepted). Watch follows others, found elsewhere (the cluster's
	// registry).
	URLs []string
	// StaleAfter is how soon a live reporter must be heard from (health.Config.StaleAfter):
	// the watch waits at most half of it. 0: no bound but DefaultWait.
	StaleAfter time.Duration
	// HTTPClient, default a client with a timeout of the wait + 10s.
	HTTPClient *http.Client
}

// Update is one answer of a reporter, or one failed request to it.
type Update struct {
	// URL is the reporter's /v1/health URL, as URLs lists it.
	URL string
	// Report is the report received; nil when Err is set.
	Report *api.Report
	// Err is why the request failed.
	Err error
	// At is when the answer arrived.
	At time.Time
}

// Client watches healthd instances.
type Client struct {
	urls []string
	wait time.Duration
	http *http.Client
}

// New validates cfg.
func New(cfg Config) (*Client, error) {
	c := &Client{wait: DefaultWait, http: cfg.HTTPClient}
	if cfg.StaleAfter > 0 {
		c.wait = min(c.wait, cfg.StaleAfter/2)
	}
	if c.http == nil {
		// The wait plus healthd's jitter (1/16) plus slack: a watch that outlives this is hung.
		c.http = &http.Client{Timeout: c.wait + c.wait/16 + 10*time.Second}
	}
	for _, raw := range cfg.URLs {
		u, err := URL(raw)
		if err != nil {
			return nil, err
		}
		c.urls = append(c.urls, u)
	}
	return c, nil
}

// URL is a healthd's /v1/health URL from its base URL ("http://10.0.0.5:8054"; a trailing
// "/v1/health" is accepted): the name Updates carry.
func URL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("bad healthd url %q: want http(s)://host:port", raw)
	}
	if !strings.HasSuffix(u.Path, "/v1/health") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/health"
	}
	return u.String(), nil
}

// URLs are the reporters' /v1/health URLs, in the order of Config.URLs: the names Updates
// carry.
func (c *Client) URLs() []string { return append([]string(nil), c.urls...) }

// Run watches every reporter until ctx is done, calling deliver with each Update. deliver
// is called from one goroutine per reporter, so concurrently for different reporters.
func (c *Client) Run(ctx context.Context, deliver func(Update)) {
	var wg sync.WaitGroup
	for _, u := range c.urls {
		wg.Go(func() { c.Watch(ctx, u, deliver) })
	}
	wg.Wait()
}

// Watch keeps a blocking watch open on the reporter at u (a URL as URL returns it) until
// ctx is done, calling deliver with each Update.
func (c *Client) Watch(ctx context.Context, u string, deliver func(Update)) {
	backoff := minBackoff
	var index uint64
	for ctx.Err() == nil {
		rep, err := c.fetch(ctx, u, index)
		if ctx.Err() != nil {
			return
		}
		deliver(Update{URL: u, Report: rep, Err: err, At: time.Now()})
		if err != nil {
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
		// An index that went backwards means healthd restarted: follow it from there.
		index = rep.Index
	}
}

func (c *Client) fetch(ctx context.Context, base string, index uint64) (*api.Report, error) {
	u := base + "?index=" + strconv.FormatUint(index, 10) + "&wait=" + c.wait.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
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
