package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// MaxBodyBytes bounds how much of a response body the HTTP prober reads to match
// ExpectBody or ExpectBodyRegexp (blackbox reads bodies up to a limit too): a health page is
// small, and a backend streaming an endless body must not cost memory or time.
const MaxBodyBytes = 64 << 10

// maxRedirects bounds FollowRedirects, as net/http's default policy does.
const maxRedirects = 10

// defaultStatus is what a check without ExpectStatus accepts: any success or redirect.
var defaultStatus = []policy.StatusRange{{Lo: 200, Hi: 399}}

// HTTP probes "http" and "https" checks. Each probe uses its own connection (keep-alives
// off): a health check must see the backend accept a new connection, as a client would,
// and a pooled connection would hide a backend that stopped accepting.
type HTTP struct {
	// RootCAs verifies HTTPS servers; nil uses the system's roots.
	RootCAs *x509.CertPool
}

// Probe runs one HTTP(S) request against target.
func (h HTTP) Probe(ctx context.Context, target Target, c *policy.Check) Result {
	scheme := "http"
	if c.Type == "https" {
		scheme = "https"
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	u := &url.URL{Scheme: scheme, Host: target.String()}
	if pu, err := url.Parse(path); err == nil && pu.Scheme == "" && pu.Host == "" {
		u.Path, u.RawPath, u.RawQuery = pu.Path, pu.RawPath, pu.RawQuery
	} else {
		return fail("bad path %q", path)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fail("build request: %v", err)
	}
	// The Host header names the virtual host; a host-name member is its own default.
	if c.Host != "" {
		req.Host = c.Host
	} else if !target.Addr.IsValid() {
		req.Host = target.Hostname()
	}
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "glbdns-healthd")
	}

	serverName := c.ServerName
	if serverName == "" {
		serverName = hostOnly(req.Host)
	}
	tr := &http.Transport{
		Proxy:             nil, // probe the member itself, never through an environment proxy
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig: &tls.Config{
			ServerName:         serverName,
			InsecureSkipVerify: c.Insecure, //nolint:gosec // operator's explicit choice per check
			RootCAs:            h.RootCAs,
		},
		ForceAttemptHTTP2:      false,
		MaxResponseHeaderBytes: MaxBodyBytes,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if !c.FollowRedirects {
				return http.ErrUseLastResponse // judge the redirect's own status
			}
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			return nil
		},
	}

	var start, connStart, connDone, tlsStart, tlsDone, firstByte time.Time
	start = time.Now()
	trace := &httptrace.ClientTrace{
		ConnectStart:         func(string, string) { connStart = time.Now() },
		ConnectDone:          func(string, string, error) { connDone = time.Now() },
		TLSHandshakeStart:    func() { tlsStart = time.Now() },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { tlsDone = time.Now() },
		GotFirstResponseByte: func() { firstByte = time.Now() },
	}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))

	resp, err := client.Do(req)
	if err != nil {
		return errReason(ctx, "request", unwrapURL(err))
	}
	defer resp.Body.Close()

	var phases []Phase
	if !connStart.IsZero() && !connDone.IsZero() {
		phases = append(phases, Phase{"connect", connDone.Sub(connStart)})
	}
	if !tlsStart.IsZero() && !tlsDone.IsZero() {
		phases = append(phases, Phase{"tls", tlsDone.Sub(tlsStart)})
	}
	if !firstByte.IsZero() {
		from := start
		if !tlsDone.IsZero() {
			from = tlsDone
		} else if !connDone.IsZero() {
			from = connDone
		}
		phases = append(phases, Phase{"processing", firstByte.Sub(from)})
	}
	res := Result{Phases: phases}

	ranges := c.ExpectStatus
	if len(ranges) == 0 {
		ranges = defaultStatus
	}
	if !statusOK(resp.StatusCode, ranges) {
		res.Reason = "unexpected status " + strconv.Itoa(resp.StatusCode)
		return res
	}
	if c.ExpectBody == "" && c.ExpectBodyRegexp == "" {
		res.OK = true
		return res
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	if err != nil {
		r := errReason(ctx, "read body", err)
		r.Phases = phases
		return r
	}
	if c.ExpectBody != "" && !strings.Contains(string(body), c.ExpectBody) {
		res.Reason = "body does not contain " + strconv.Quote(c.ExpectBody)
		return res
	}
	if c.ExpectBodyRegexp != "" {
		re, err := compileRegexp(c.ExpectBodyRegexp)
		if err != nil {
			res.Reason = "bad expect_body_regexp: " + err.Error()
			return res
		}
		if !re.Match(body) {
			res.Reason = "body does not match " + strconv.Quote(c.ExpectBodyRegexp)
			return res
		}
	}
	res.OK = true
	return res
}

func statusOK(code int, ranges []policy.StatusRange) bool {
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// hostOnly strips a port from a Host header value for use as the TLS server name.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}

// unwrapURL drops net/http's `Get "url": ` prefix, which repeats what the API already says.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// regexps caches compiled ExpectBodyRegexp patterns: the same few patterns run on every
// probe of every member, and compiling them each time would dominate the probe's CPU.
var regexps sync.Map // string -> *regexp.Regexp or error

func compileRegexp(expr string) (*regexp.Regexp, error) {
	if v, ok := regexps.Load(expr); ok {
		if re, ok := v.(*regexp.Regexp); ok {
			return re, nil
		}
		return nil, v.(error)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		regexps.Store(expr, err)
		return nil, err
	}
	regexps.Store(expr, re)
	return re, nil
}
