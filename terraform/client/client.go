// Package client is a small client of the glbdns admin API (docs/admin-api.md), written
// for the Terraform provider: plain net/http and JSON, the object's version sent back as
// If-Match for optimistic concurrency, and typed errors (*APIError, matched with
// errors.Is against ErrNotFound and the other sentinels) that carry the status code and
// the server's reason. The request and answer bodies are api's types, the server's own.
//
// # Several endpoints
//
// A client is given the admin endpoints of one glbdns cluster, whose nodes share their
// managed objects: a write through any node is served by every node. Requests go to one
// endpoint at a time, the one that answered last (at first, the first in the list), so
// that a sequence of calls (Terraform's refresh, then its writes) sees one node's view.
// When that endpoint fails, the request moves on round the list, once, and the endpoint
// that answers is remembered for the next request. The client never moves back by itself.
//
// Which failures move a request on depends on whether it could have been applied:
//
//	failure on an endpoint                                   GET     POST, PUT, DELETE
//	no connection (refused, no route, dial timeout, TLS)     next    next
//	sent, then no answer (timeout, reset, closed, cut body)  next    stop
//	answered 502, 503 or 504                                 next    stop
//	any other answer (2xx, 4xx, 500)                         return  return
//	the caller's context ends                                stop    stop
//
// A GET changes nothing, so it may be sent anywhere, any number of times. A write is
// sent to another node only when it certainly did not reach the first one: the client
// never got a connection to it. A write that was sent and then went unanswered may have
// been applied there (the node commits, then dies or is too slow to answer; a proxy's 502
// or 504 says as little, and so does a 503 from a node whose store timed out mid-commit),
// and sending it again would not be harmless everywhere: the provider's updates and
// deletes carry If-Match, so a second PUT or DELETE would get 412 or 404 rather than apply
// twice, but a create (POST, no precondition) would get 409 for the object it had just
// made, and a drain would be posted twice. So such a write stops, and its error says it
// was not retried; Terraform's next refresh reads what the node did.
//
// Every failed request's error is an *EndpointError that names each endpoint tried and
// why it failed; errors.Is and errors.As see through it to each attempt's error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glbdns/glbdns/api"
)

// maxBody bounds how much of an answer is read: the largest object is a whole-pool
// listing, far below 16 MiB; a misbehaving server must not exhaust memory.
const maxBody = 16 << 20

// Default per-attempt timeouts (Timeouts). Each bounds one attempt on one endpoint, so a
// request takes at most the sum over the endpoints it tries.
const (
	// defaultDial bounds connecting to an endpoint. A live admin listener accepts in one
	// round trip; 2s leaves room for one lost SYN (Linux retransmits the first after 1s)
	// and is how long a black-holed node holds a request up before the next is tried.
	defaultDial = 2 * time.Second
	// defaultRead bounds a GET, from connecting to the end of the answer. Reads are
	// answered from the node's memory in milliseconds, and the largest listing in well
	// under a second; a node that has not answered in 10s is hung, and the next one is tried.
	defaultRead = 10 * time.Second
	// defaultWrite bounds a POST, PUT or DELETE. A write returns only after the new
	// snapshot serves on the node (docs/admin-api.md), which is a reload, so allow well
	// over a second. A write that times out is not retried (see the package comment).
	defaultWrite = 30 * time.Second
)

// Timeouts bounds each attempt on one endpoint; a zero field keeps its default.
type Timeouts struct {
	Dial  time.Duration // connecting (TCP, and TLS for https); default 2s
	Read  time.Duration // a GET, from connecting to the end of the answer; default 10s
	Write time.Duration // a POST, PUT or DELETE, likewise; default 30s
}

// Client talks to the admin API of one glbdns cluster through one or more endpoints. It
// is safe for concurrent use.
type Client struct {
	endpoints []*url.URL   // as given, normalised by ParseEndpoint; never empty
	cur       atomic.Int32 // index into endpoints: the one that answered last
	token     string
	http      *http.Client // nil until New has applied the options: then the default
	userAgent string
	timeouts  Timeouts
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the client's own http.Client, whose transport connects with
// Timeouts.Dial. The per-attempt Read and Write timeouts apply to h too.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header, e.g. "terraform-provider-glbdns/1.2.3".
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithTimeouts sets the per-attempt timeouts; zero fields keep their defaults.
func WithTimeouts(t Timeouts) Option {
	return func(c *Client) {
		if t.Dial > 0 {
			c.timeouts.Dial = t.Dial
		}
		if t.Read > 0 {
			c.timeouts.Read = t.Read
		}
		if t.Write > 0 {
			c.timeouts.Write = t.Write
		}
	}
}

// ParseEndpoint checks that raw is an admin endpoint, an http or https URL with a host and
// neither query nor fragment (a path is kept: a prefix behind a reverse proxy), and
// returns it normalised as the client uses it: scheme and host in lower case, no trailing
// slash. Two endpoints are the same when their normalised forms are equal.
func ParseEndpoint(raw string) (string, error) {
	u, err := parseEndpoint(raw)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func parseEndpoint(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") { // "127.0.0.1:8053", which url.Parse reads as a path
		return nil, fmt.Errorf("endpoint %q: no scheme; want an http or https URL with a host", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // not "parse" and the URL again
		}
		return nil, fmt.Errorf("endpoint %q: %w", raw, err)
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want an http or https URL with a host", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("endpoint %q: want no query or fragment", raw)
	}
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// New returns a client of the admin API at endpoints (e.g. "http://10.0.0.1:8053"), the
// nodes of one cluster, tried in that order (see the package comment). There must be at
// least one, each valid for ParseEndpoint, and no two the same. token is sent as a bearer
// token on every request: writes need it, and so do reads on a node that has one.
func New(endpoints []string, token string, opts ...Option) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no endpoint")
	}
	c := &Client{token: token, userAgent: "glbdns-client",
		timeouts: Timeouts{Dial: defaultDial, Read: defaultRead, Write: defaultWrite}}
	seen := make(map[string]int, len(endpoints))
	for i, raw := range endpoints {
		u, err := parseEndpoint(raw)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[u.String()]; dup {
			return nil, fmt.Errorf("endpoint %q: the same as endpoint %d (%q)", raw, j, endpoints[j])
		}
		seen[u.String()] = i
		c.endpoints = append(c.endpoints, u)
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport(c.timeouts.Dial)}
	}
	return c, nil
}

// newTransport is http.DefaultTransport with the dial timeout bounded. Each client has its
// own, so that no connection to a node that has gone away is shared between clients.
func newTransport(dial time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = dial
	return t
}

// Endpoints returns the client's endpoints, normalised (ParseEndpoint), in their order.
func (c *Client) Endpoints() []string {
	out := make([]string, len(c.endpoints))
	for i, u := range c.endpoints {
		out[i] = u.String()
	}
	return out
}

// Current returns the endpoint the next request is sent to first: the one that answered
// last, or the first endpoint before any has answered.
func (c *Client) Current() string { return c.endpoints[c.cur.Load()].String() }

// ListPools returns every pool, sorted by name.
func (c *Client) ListPools(ctx context.Context) ([]api.Pool, error) {
	var out api.PoolList
	_, err := c.do(ctx, http.MethodGet, "/v1/pools", nil, nil, &out)
	return out.Pools, err
}

// GetPool returns the pool called name; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetPool(ctx context.Context, name string) (*api.Pool, error) {
	var p api.Pool
	etag, err := c.do(ctx, http.MethodGet, "/v1/pools/"+url.PathEscape(name), nil, nil, &p)
	if err != nil {
		return nil, err
	}
	p.Version = versionOr(p.Version, etag)
	return &p, nil
}

// CreatePool creates p (POST); ErrConflict when a pool of that name exists.
func (c *Client) CreatePool(ctx context.Context, p api.Pool) (*api.Pool, error) {
	p.Managed, p.Version = false, ""
	var out api.Pool
	etag, err := c.do(ctx, http.MethodPost, "/v1/pools", nil, p, &out)
	if err != nil {
		return nil, err
	}
	out.Version = versionOr(out.Version, etag)
	return &out, nil
}

// PutPool replaces (or creates) the pool p.Name. With ifMatch set, the write happens only
// while the stored version is still ifMatch, else ErrPreconditionFailed: an update never
// overwrites a change it has not seen.
func (c *Client) PutPool(ctx context.Context, p api.Pool, ifMatch string) (*api.Pool, error) {
	name := p.Name
	p.Managed, p.Version = false, ""
	var out api.Pool
	etag, err := c.do(ctx, http.MethodPut, "/v1/pools/"+url.PathEscape(name), matchHeader(ifMatch), p, &out)
	if err != nil {
		return nil, err
	}
	out.Version = versionOr(out.Version, etag)
	return &out, nil
}

// DeletePool deletes the pool name (conditionally, with ifMatch set); ErrConflict while a
// service still uses it.
func (c *Client) DeletePool(ctx context.Context, name, ifMatch string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/pools/"+url.PathEscape(name), matchHeader(ifMatch), nil, nil)
	return err
}

// ListServices returns every service, sorted by name.
func (c *Client) ListServices(ctx context.Context) ([]api.Service, error) {
	var out api.ServiceList
	_, err := c.do(ctx, http.MethodGet, "/v1/services", nil, nil, &out)
	return out.Services, err
}

// GetService returns the service called name; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetService(ctx context.Context, name string) (*api.Service, error) {
	var s api.Service
	etag, err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(name), nil, nil, &s)
	if err != nil {
		return nil, err
	}
	s.Version = versionOr(s.Version, etag)
	return &s, nil
}

// CreateService creates s (POST); ErrConflict when it exists, ErrUnprocessable when it
// names an unknown pool.
func (c *Client) CreateService(ctx context.Context, s api.Service) (*api.Service, error) {
	s.Managed, s.Version = false, ""
	var out api.Service
	etag, err := c.do(ctx, http.MethodPost, "/v1/services", nil, s, &out)
	if err != nil {
		return nil, err
	}
	out.Version = versionOr(out.Version, etag)
	return &out, nil
}

// PutService replaces (or creates) the service s.Name, conditionally as PutPool does.
func (c *Client) PutService(ctx context.Context, s api.Service, ifMatch string) (*api.Service, error) {
	name := s.Name
	s.Managed, s.Version = false, ""
	var out api.Service
	etag, err := c.do(ctx, http.MethodPut, "/v1/services/"+url.PathEscape(name), matchHeader(ifMatch), s, &out)
	if err != nil {
		return nil, err
	}
	out.Version = versionOr(out.Version, etag)
	return &out, nil
}

// DeleteService deletes the service name (conditionally, with ifMatch set).
func (c *Client) DeleteService(ctx context.Context, name, ifMatch string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(name), matchHeader(ifMatch), nil, nil)
	return err
}

// ListDrains returns the drains in force (expired ones are not listed).
func (c *Client) ListDrains(ctx context.Context) ([]api.Drain, error) {
	var out api.DrainList
	_, err := c.do(ctx, http.MethodGet, "/v1/drains", nil, nil, &out)
	return out.Drains, err
}

// Drain takes a member out of the answers for r.Duration; ErrUnprocessable for an unknown
// pool or member.
func (c *Client) Drain(ctx context.Context, pool, member string, r api.DrainRequest) (*api.Drain, error) {
	var out api.Drain
	if _, err := c.do(ctx, http.MethodPost, drainPath(pool, member), nil, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetDrain returns the member's drain; errors.Is(err, ErrNotFound) when it is not drained
// (which includes a drain that has expired).
func (c *Client) GetDrain(ctx context.Context, pool, member string) (*api.Drain, error) {
	var out api.Drain
	if _, err := c.do(ctx, http.MethodGet, drainPath(pool, member), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Undrain ends the member's drain early.
func (c *Client) Undrain(ctx context.Context, pool, member string) error {
	_, err := c.do(ctx, http.MethodDelete, drainPath(pool, member), nil, nil, nil)
	return err
}

// Health returns the live health of every member, merged over the fresh reporters.
func (c *Client) Health(ctx context.Context) ([]api.MemberHealth, error) {
	var out api.HealthList
	_, err := c.do(ctx, http.MethodGet, "/v1/health", nil, nil, &out)
	return out.Members, err
}

func drainPath(pool, member string) string {
	return "/v1/pools/" + url.PathEscape(pool) + "/members/" + url.PathEscape(member) + "/drain"
}

func matchHeader(version string) http.Header {
	if version == "" {
		return nil
	}
	return http.Header{"If-Match": {`"` + version + `"`}}
}

// versionOr prefers the body's version and falls back to the ETag, which carries the same
// version quoted (RFC 9110 section 8.8.3).
func versionOr(v, etag string) string {
	if v != "" {
		return v
	}
	return strings.TrimPrefix(strings.Trim(etag, `"`), "W/")
}

// do sends one request, to the current endpoint and, on the failures the package comment
// lists, to the next ones, and decodes a 2xx answer into out (when out is non-nil). It
// returns the ETag header. Any other answer becomes an *APIError with the server's reason.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, in, out any) (string, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return "", fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = b
	}
	read := method == http.MethodGet
	timeout := c.timeouts.Write
	if read {
		timeout = c.timeouts.Read
	}
	n := len(c.endpoints)
	start := int(c.cur.Load())
	ee := &EndpointError{Method: method, Path: path}
	for i := range n {
		idx := (start + i) % n
		ep := c.endpoints[idx]
		a, err := c.attempt(ctx, ep, method, path, hdr, body, timeout)
		if err == nil && !failover(a.status) {
			c.cur.Store(int32(idx))
			return a.answer(method, path, out)
		}
		if err == nil {
			err = a.apiError(method, path)
		}
		ee.Attempts = append(ee.Attempts, Attempt{Endpoint: ep.String(), Err: err})
		if ctx.Err() != nil {
			return "", ee // the caller gave up; its error is the last attempt's
		}
		if !read && a.sent && i < n-1 {
			for j := i + 1; j < n; j++ {
				ee.NotRetried = append(ee.NotRetried, c.endpoints[(start+j)%n].String())
			}
			return "", ee
		}
	}
	return "", ee
}

// failover reports whether an answer with this status sends a GET to the next endpoint:
// the gateway and availability errors, which say that this node cannot serve now rather
// than anything about the request (RFC 9110 section 15.6).
func failover(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// result is one endpoint's answer, read whole.
type result struct {
	status int
	etag   string
	data   []byte
	// sent is false only when the request certainly did not reach the endpoint: the
	// client never had a connection to it.
	sent bool
}

// attempt sends the request to one endpoint, bounded by timeout, and reads the answer.
// A transport error comes back stripped of *url.Error's method and URL (the caller names
// both), with a.sent saying whether the request may have reached the endpoint.
func (c *Client) attempt(ctx context.Context, ep *url.URL, method, path string, hdr http.Header, body []byte, timeout time.Duration) (result, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The trace tells "never connected" from "connected, then failed": the transport's
	// callbacks may run on its own goroutines, hence the atomics. Without ConnectStart (a
	// reused connection, or a RoundTripper that is not *http.Transport) only a dial error
	// counts as not sent.
	var connecting, connected atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		ConnectStart: func(string, string) { connecting.Store(true) },
		GotConn:      func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// path is already escaped (url.PathEscape on every name), so it is appended as text.
	req, err := http.NewRequestWithContext(actx, method, ep.String()+path, rd)
	if err != nil {
		return result{}, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		sent := !isDial(err) && !(connecting.Load() && !connected.Load())
		return result{sent: sent}, attemptError(ctx, actx, timeout, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return result{sent: true}, fmt.Errorf("read answer: %w", attemptError(ctx, actx, timeout, err))
	}
	return result{status: resp.StatusCode, etag: resp.Header.Get("ETag"), data: data, sent: true}, nil
}

// isDial reports whether err is a failure to connect: the request was never written.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// attemptError strips *url.Error (the caller names the endpoint and path) and says so when
// the attempt's own timeout, not the caller's context, ended it.
func attemptError(ctx, actx context.Context, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", timeout, err)
	}
	return err
}

// answer decodes a usable answer: a 2xx into out, anything else into an *APIError.
func (a result) answer(method, path string, out any) (string, error) {
	if a.status < 200 || a.status > 299 {
		return "", a.apiError(method, path)
	}
	if out != nil && a.status != http.StatusNoContent {
		if err := json.Unmarshal(a.data, out); err != nil {
			return "", fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return a.etag, nil
}

// apiError is the *APIError of a non-2xx answer, with the server's reason when the body
// has one.
func (a result) apiError(method, path string) *APIError {
	ae := &APIError{Method: method, Path: path, StatusCode: a.status}
	var e api.Error
	if json.Unmarshal(a.data, &e) == nil && e.Error != "" {
		ae.Reason, ae.Field, ae.Errors = e.Error, e.Field, e.Errors
	} else {
		ae.Reason = strings.ToLower(http.StatusText(a.status))
	}
	return ae
}
