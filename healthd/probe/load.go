package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// MaxLoadBodyBytes bounds the body a load reading reads: a /metrics page of a busy
// server runs to some hundred kilobytes, and a backend streaming an endless body must not
// cost memory.
const MaxLoadBodyBytes = 1 << 20

// LoadReader reads a member's load as its pool's load block says: one HTTP(S) GET, the
// body read as the Prometheus text format, JSON or a plain number. It is prepared once per
// load block and shared by the pool's members; safe for concurrent use.
type LoadReader struct {
	sig     *policy.LoadSignal
	client  *http.Client
	req     *http.Request
	field   []string // the json field's path
	timeout time.Duration
}

// ErrLoadMissing is a body that holds no value the load block selects.
var ErrLoadMissing = errors.New("no such value")

// NewLoadReader prepares sig; rootCAs verifies HTTPS servers (nil: the system's).
func NewLoadReader(sig *policy.LoadSignal, rootCAs *x509.CertPool) (*LoadReader, error) {
	u := &url.URL{Scheme: sig.Scheme, Host: "member"}
	pu, err := url.Parse(sig.Path)
	if err != nil || pu.Scheme != "" || pu.Host != "" {
		return nil, fmt.Errorf("bad path %q", sig.Path)
	}
	u.Path, u.RawPath, u.RawQuery = pu.Path, pu.RawPath, pu.RawQuery
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	if sig.Type == "prometheus" {
		req.Header.Set("Accept", "text/plain;version=0.0.4")
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DisableKeepAlives:      true, // as the checks: a pooled connection would count as one of the member's
		DialContext:            (&net.Dialer{}).DialContext,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: sig.Insecure, RootCAs: rootCAs}, //nolint:gosec // operator's choice
		MaxResponseHeaderBytes: MaxBodyBytes,
	}
	lr := &LoadReader{sig: sig, req: req, timeout: sig.Timeout,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if sig.Type == "json" {
		lr.field = strings.Split(sig.Field, ".")
	}
	return lr, nil
}

// Read takes one reading of the member at addr (its address or host name; the port is
// the load block's), within the load block's timeout.
func (lr *LoadReader) Read(ctx context.Context, m *policy.Member) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, lr.timeout)
	defer cancel()
	t := Target{Addr: m.Addr, Host: m.Host, Port: lr.sig.Port}
	req := lr.req.Clone(ctx)
	req.URL.Host = t.String()
	if !t.Addr.IsValid() {
		req.Host = t.Hostname()
	}
	resp, err := lr.client.Do(req)
	if err != nil {
		return 0, errors.New(errReason(ctx, "request", unwrapURL(err)).Reason)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxLoadBodyBytes))
	if err != nil {
		return 0, errors.New(errReason(ctx, "read body", err).Reason)
	}
	return lr.parse(body)
}

// parse reads the value out of a body.
func (lr *LoadReader) parse(body []byte) (float64, error) {
	switch lr.sig.Type {
	case "prometheus":
		return PrometheusValue(body, lr.sig.Metric, lr.sig.Labels)
	case "json":
		return jsonValue(body, lr.field)
	default:
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(body)), 64)
		if err != nil {
			return 0, fmt.Errorf("body is not a number")
		}
		return checkValue(v)
	}
}

// checkValue refuses what cannot be a count of connections.
func checkValue(v float64) (float64, error) {
	if v != v || v < 0 || v > 1e15 { // NaN, negative, or absurd
		return 0, fmt.Errorf("value %v is not a load", v)
	}
	return v, nil
}

// jsonValue is the number at path in a JSON document (a number, or a string holding one).
func jsonValue(body []byte, path []string) (float64, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return 0, fmt.Errorf("body is not JSON: %v", err)
	}
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("field %q: %w", strings.Join(path, "."), ErrLoadMissing)
		}
		if v, ok = obj[k]; !ok {
			return 0, fmt.Errorf("field %q: %w", strings.Join(path, "."), ErrLoadMissing)
		}
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("field %q is not a number", strings.Join(path, "."))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("field %q is not a number", strings.Join(path, "."))
	}
	return checkValue(f)
}

// PrometheusValue is the sum of the samples of metric whose labels include every pair
// of labels, in a body of the Prometheus text exposition format (version 0.0.4): a server
// exporting its connections per listener or per worker is read as its total. No matching
// sample is ErrLoadMissing.
func PrometheusValue(body []byte, metric string, labels map[string]string) (float64, error) {
	var sum float64
	found := false
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || !bytes.HasPrefix(line, []byte(metric)) {
			continue
		}
		rest := line[len(metric):]
		var ls map[string]string
		switch {
		case len(rest) > 0 && rest[0] == '{':
			var err error
			if ls, rest, err = promLabels(rest[1:]); err != nil {
				return 0, fmt.Errorf("metric %s: %v", metric, err)
			}
		case len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t'):
		default:
			continue // another metric whose name starts with this one
		}
		if !labelsMatch(ls, labels) {
			continue
		}
		fields := strings.Fields(string(rest))
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric %s: sample without a value", metric)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: bad value %q", metric, fields[0])
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s: %w", metric, ErrLoadMissing)
	}
	return checkValue(sum)
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// promLabels parses `name="value",...}` (after the brace) and returns the labels and
// what follows the closing brace.
func promLabels(s []byte) (map[string]string, []byte, error) {
	ls := map[string]string{}
	for {
		s = bytes.TrimLeft(s, " \t")
		if len(s) > 0 && s[0] == '}' {
			return ls, s[1:], nil
		}
		eq := bytes.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, nil, errors.New("bad label set")
		}
		name := string(bytes.TrimSpace(s[:eq]))
		s = s[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, nil, errors.New("unterminated label value")
		}
		ls[name] = val.String()
		s = bytes.TrimLeft(s[i+1:], " \t")
		if len(s) > 0 && s[0] == ',' {
			s = s[1:]
		}
	}
}
