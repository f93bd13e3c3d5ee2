// Package client is a small client of the glbdns admin API (docs/admin-api.md), written
// for the Terraform provider: plain net/http and JSON, the object's version sent back as
// If-Match for optimistic concurrency, and typed errors (*APIError, matched with
// errors.Is against ErrNotFound and the other sentinels) that carry the status code and
// the server's reason. The request and answer bodies are api's types, the server's own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/glbdns/glbdns/api"
)

// maxBody bounds how much of an answer is read: the largest object is a whole-pool
// listing, far below 16 MiB; a misbehaving server must not exhaust memory.
const maxBody = 16 << 20

// defaultTimeout bounds one request. A write returns only after the new snapshot serves on
// the node (docs/admin-api.md), which is a reload, so allow well over a second.
const defaultTimeout = 30 * time.Second

// Client talks to one glbdns admin endpoint. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default http.Client (30s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header, e.g. "terraform-provider-glbdns/1.2.3".
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the admin API at endpoint (e.g. "http://127.0.0.1:8053").
// token is sent as a bearer token on writes; reads need none.
func New(endpoint, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want an http or https URL with a host", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: token, http: &http.Client{Timeout: defaultTimeout}, userAgent: "glbdns-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

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

// do sends one request and decodes a 2xx answer into out (when out is non-nil). It returns
// the ETag header. Any other status becomes an *APIError with the server's reason.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, in, out any) (string, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return "", fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	// path is already escaped (url.PathEscape on every name), so it is appended as text.
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" && method != http.MethodGet {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode}
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			ae.Reason, ae.Field = e.Error, e.Field
		} else {
			ae.Reason = strings.ToLower(http.StatusText(resp.StatusCode))
		}
		return "", ae
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return "", fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header.Get("ETag"), nil
}
