package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// MaxBodyBytes bounds how much of a response body the HTTP prober reads to match
// ExpectBody or ExpectBodyRegexp (blackbox reads bodies up to a limit too): a health page is
// small, and a backend streaming an endless body must not cost memory or time.
const MaxBodyBytes = 64 << 10

// maxRedirects bounds FollowRedirects, as net/http's default policy does.
const maxRedirects = 10

// userAgent names healthd to backends unless the check sets its own User-Agent header.
const userAgent = "glbdns-healthd"

// HTTP probes "http" and "https" checks. Each probe uses its own connection (keep-alives
// off): a health check must see the backend accept a new connection, as a client would,
// and a pooled connection would hide a backend that stopped accepting.
type HTTP struct {
	// RootCAs verifies HTTPS servers; nil uses the system's roots.
	RootCAs *x509.CertPool
}

// httpCheck is an HTTP(S) check prepared once; a probe clones its request and fills in
// the member's address.
type httpCheck struct {
	req    *http.Request // method, path and query, headers; URL.Host is set per probe
	host   string        // the Host header the check names; "" for the member's own
	client *http.Client  // one transport per check, keep-alives off, so nothing is pooled
	status []policy.StatusRange
	body   string         // ExpectBody
	bodyRE *regexp.Regexp // ExpectBodyRegexp
}

// Prepare builds the request template, the client and its TLS configuration, and
// compiles ExpectBodyRegexp, once for every probe of c.
func (h HTTP) Prepare(c *policy.Check) (Func, error) {
	if len(c.ExpectStatus) == 0 {
		return nil, errors.New("check has no expect_status")
	}
	req, host, err := httpRequest(c)
	if err != nil {
		return nil, err
	}
	hc := &httpCheck{req: req, host: host, status: c.ExpectStatus, body: c.ExpectBody}
	if c.ExpectBodyRegexp != "" {
		if hc.bodyRE, err = regexp.Compile(c.ExpectBodyRegexp); err != nil {
			return nil, fmt.Errorf("bad expect_body_regexp: %w", err)
		}
	}
	serverName := c.ServerName
	if serverName == "" && host != "" {
		serverName = hostOnly(host) // TLS names the virtual host the Host header asks for
	}
	// An empty ServerName makes the transport use the URL's host: the member's name or
	// address, as a client connecting to it would.
	hc.client = h.client(c, &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: c.Insecure, //nolint:gosec // operator's explicit choice per check
		RootCAs:            h.RootCAs,
	})
	return hc.probe, nil
}

// httpRequest is c's request template, without a context or a host to connect to, and
// the Host header it names (c.Host, or a "Host" entry of c.Headers, which wins).
func httpRequest(c *policy.Check) (*http.Request, string, error) {
	scheme := "http"
	if c.Type == "https" {
		scheme = "https"
	}
	pu, err := url.Parse(c.Path)
	if err != nil || pu.Scheme != "" || pu.Host != "" {
		return nil, "", fmt.Errorf("bad path %q", c.Path)
	}
	u := &url.URL{Scheme: scheme, Host: "member", Path: pu.Path, RawPath: pu.RawPath, RawQuery: pu.RawQuery}
	req, err := http.NewRequest(c.Method, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("build request: %w", err)
	}
	host := c.Host
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	return req, host, nil
}

// client is the HTTP client of one check, redirects handled as the check says.
func (h HTTP) client(c *policy.Check, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil, // probe the member itself, never through an environment proxy
		DisableKeepAlives:      true,
		DialContext:            (&net.Dialer{}).DialContext,
		TLSClientConfig:        tlsConfig,
		ForceAttemptHTTP2:      false,
		MaxResponseHeaderBytes: MaxBodyBytes,
	}
	follow := c.FollowRedirects
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if !follow {
				return http.ErrUseLastResponse // judge the redirect's own status
			}
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// probe sends one request to target and judges the response.
func (hc *httpCheck) probe(ctx context.Context, target Target) Result {
	var tm timings
	tm.start = time.Now()
	req := hc.req.Clone(httptrace.WithClientTrace(ctx, tm.trace()))
	req.URL.Host = target.String()
	// The Host header names the virtual host; a host-name member is its own default.
	switch {
	case hc.host != "":
		req.Host = hc.host
	case !target.Addr.IsValid():
		req.Host = target.Hostname()
	default:
		req.Host = "" // the URL's host: the member's address
	}
	resp, err := hc.client.Do(req)
	if err != nil {
		return errReason(ctx, "request", unwrapURL(err))
	}
	defer resp.Body.Close()
	res := hc.judge(ctx, resp)
	res.Phases = tm.phases()
	return res
}

// judge matches a response against the check's status ranges and body expectations.
func (hc *httpCheck) judge(ctx context.Context, resp *http.Response) Result {
	if !statusOK(resp.StatusCode, hc.status) {
		return Result{Reason: "unexpected status " + strconv.Itoa(resp.StatusCode)}
	}
	if hc.body == "" && hc.bodyRE == nil {
		return Result{OK: true}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	if err != nil {
		return errReason(ctx, "read body", err)
	}
	if hc.body != "" && !strings.Contains(string(body), hc.body) {
		return Result{Reason: "body does not contain " + strconv.Quote(hc.body)}
	}
	if hc.bodyRE != nil && !hc.bodyRE.Match(body) {
		return Result{Reason: "body does not match " + strconv.Quote(hc.bodyRE.String())}
	}
	return Result{OK: true}
}

// timings records when each step of one request happened, through an httptrace.
type timings struct {
	start, connStart, connDone, tlsStart, tlsDone, firstByte time.Time
}

func (t *timings) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		ConnectStart:         func(string, string) { t.connStart = time.Now() },
		ConnectDone:          func(string, string, error) { t.connDone = time.Now() },
		TLSHandshakeStart:    func() { t.tlsStart = time.Now() },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { t.tlsDone = time.Now() },
		GotFirstResponseByte: func() { t.firstByte = time.Now() },
	}
}

// phases splits the request into connect, tls and processing (to the first response
// byte), leaving out the steps that did not happen.
func (t *timings) phases() []Phase {
	phases := make([]Phase, 0, 3)
	if !t.connStart.IsZero() && !t.connDone.IsZero() {
		phases = append(phases, Phase{"connect", t.connDone.Sub(t.connStart)})
	}
	if !t.tlsStart.IsZero() && !t.tlsDone.IsZero() {
		phases = append(phases, Phase{"tls", t.tlsDone.Sub(t.tlsStart)})
	}
	if !t.firstByte.IsZero() {
		from := t.start
		if !t.tlsDone.IsZero() {
			from = t.tlsDone
		} else if !t.connDone.IsZero() {
			from = t.connDone
		}
		phases = append(phases, Phase{"processing", t.firstByte.Sub(from)})
	}
	return phases
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
