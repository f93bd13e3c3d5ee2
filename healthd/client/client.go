// Package client is glbdns's transport to healthd: for each healthd URL it keeps a blocking
// watch on GET /v1/health open (?index=N&wait=W, as Consul's blocking queries) and hands
// every report it receives, and every failed request, to the caller as an Update. What the
// reports mean (majority, staleness, grace) is package health's.
//
// A failed request is retried after an exponential backoff with full jitter from 100ms to
// 5s. The watch wait is min(30s, StaleAfter/2): a reporter with nothing new answers at the
// end of every wait, so a live reporter is heard from well within StaleAfter even when no
// status changes.
//
// A source that answers without blocking is paced (pacer): a watch is a long poll, so an
// answer within quickAnswer of the request, twice in a row, is a broken or hostile source
// (or a healthd whose statuses change faster than DNS needs to follow). From the second
// such answer on, the next request waits 50ms, doubling to at most 1s, with jitter; an
// answer that took longer (the watch blocked) resets it. The first quick answer is never
// delayed: a restarted healthd answers at once, and so does news after a quiet wait.
//
// A report body is read up to a cap (Config.MaxReportBytes; DefaultMaxReportBytes, or
// ReportCap of the serving policy's size): a larger one is refused as an error
// (ErrReportTooLarge), so the last good report keeps counting until it goes stale.
package client

import (
	"context"
	"encoding/json"
	"errors"
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
	// DefaultMaxReportBytes caps a report body when Config.MaxReportBytes is not set, and
	// is ReportCap's least: the report of some 500 members with one check each at its
	// budget (about 1,400 at a real report's size), and a bound on what a hostile source
	// can make glbdns hold: a 1 GB body peaks glbdns at 31 MB RSS (21 MB idle), where an
	// 8 MiB cap let it reach 80 MB and no cap 335 MB for 64 MiB.
	DefaultMaxReportBytes = 1 << 20
	// reportBytesPerMember and reportBytesPerCheck are ReportCap's budget: a member entry
	// with one check, its last results and failure reasons is about 700 bytes of JSON
	// (docs/health-api.md); the budget is about three times that.
	reportBytesPerMember = 1 << 10
	reportBytesPerCheck  = 1 << 10
	// quickAnswer: an answer sooner than this after its request did not block. Above a
	// loopback or LAN round trip, below any useful wait.
	quickAnswer = 100 * time.Millisecond
	// Pacing bounds for a source that does not block: the first delay, and the most,
	// which keeps a paced reporter fresh (StaleAfter is seconds) and its news at most a
	// second late (gdnsd swaps health at most once a second).
	minPace = 50 * time.Millisecond
	maxPace = time.Second
)

// ErrReportTooLarge is the error of a report body over the cap.
var ErrReportTooLarge = errors.New("health report too large")

// ReportCap is a report cap in proportion to a policy of members members with checks
// checks in all (the sum over members): a budget per member and per check, and never less
// than DefaultMaxReportBytes.
func ReportCap(members, checks int) int64 {
	return max(DefaultMaxReportBytes, int64(members)*reportBytesPerMember+int64(checks)*reportBytesPerCheck)
}

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
	// MaxReportBytes returns the cap on a report body, read before every request (the
	// daemon passes ReportCap of the serving policy). Nil, or a result <= 0:
	// DefaultMaxReportBytes.
	MaxReportBytes func() int64
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
	urls     []string
	wait     time.Duration
	http     *http.Client
	maxBytes func() int64
}

// New validates cfg.
func New(cfg Config) (*Client, error) {
	c := &Client{wait: DefaultWait, http: cfg.HTTPClient, maxBytes: cfg.MaxReportBytes}
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
	var pace pacer
	for ctx.Err() == nil {
		asked := time.Now()
		rep, err := c.fetch(ctx, u, index)
		if ctx.Err() != nil {
			return
		}
		at := time.Now()
		deliver(Update{URL: u, Report: rep, Err: err, At: at})
		if err != nil {
			// Full jitter: sleep a random time up to the current backoff.
			if !sleep(ctx, rand.N(backoff)+1) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			pace = pacer{}
			continue
		}
		backoff = minBackoff
		// An index that went backwards means healthd restarted: follow it from there.
		index = rep.Index
		if d := pace.next(at.Sub(asked)); d > 0 {
			// Equal jitter: at least half the delay, so that pacing always slows the source.
			if !sleep(ctx, d/2+rand.N(d/2+1)) {
				return
			}
		}
	}
}

// pacer delays the requests to a source that answers without blocking (package doc).
type pacer struct {
	quick int // consecutive answers within quickAnswer
}

// next returns how long to wait before the next request, after an answer that took took.
func (p *pacer) next(took time.Duration) time.Duration {
	if took >= quickAnswer {
		p.quick = 0
		return 0
	}
	p.quick++
	if p.quick < 2 {
		return 0
	}
	return min(minPace<<min(p.quick-2, 16), maxPace)
}

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
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
	limit := int64(DefaultMaxReportBytes)
	if c.maxBytes != nil {
		if n := c.maxBytes(); n > 0 {
			limit = n
		}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, over the cap of %d", ErrReportTooLarge, resp.ContentLength, limit)
	}
	body := &capReader{r: resp.Body, left: limit}
	var rep api.Report
	if err := json.NewDecoder(body).Decode(&rep); err != nil {
		if body.over {
			return nil, fmt.Errorf("%w: over the cap of %d bytes", ErrReportTooLarge, limit)
		}
		return nil, fmt.Errorf("decode health report: %w", err)
	}
	return &rep, nil
}

// capReader reads r up to left bytes, then fails with ErrReportTooLarge (io.LimitReader
// would end with io.EOF, which the decoder reports as a truncated document).
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, ErrReportTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
