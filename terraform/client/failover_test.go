package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// refusedURL returns the URL of a loopback port that refuses connections: one that was
// bound and closed again.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return u
}

// fails answers every request with status and the API's error body.
func fails(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "from the first endpoint"})
	}
}

// closes reads the request and closes the connection without an answer.
func closes(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// cutsBody promises a body it does not send: the client's read of it fails.
func cutsBody(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"pools": [`))
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler) // the server closes the connection mid-body
}

// hangs never answers: it reads the request (after which the server notices the client
// closing the connection) and returns when the client has given up.
func hangs(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// answers is the second endpoint: a server that counts requests and answers each method
// as the admin API would.
type answers struct{ n atomic.Int32 }

func (s *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.n.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"0000000000000002"`)
	switch r.Method {
	case http.MethodGet:
		_, _ = w.Write([]byte(`{"pools": []}`))
	case http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"name": "p", "members": [], "managed": true, "version": "0000000000000002"}`))
	case http.MethodPut:
		_, _ = w.Write([]byte(`{"name": "p", "members": [], "managed": true, "version": "0000000000000002"}`))
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	}
}

// calls are one request of each method, through the client's API.
var calls = []struct {
	method string
	call   func(context.Context, *client.Client) error
}{
	{http.MethodGet, func(ctx context.Context, c *client.Client) error { _, err := c.ListPools(ctx); return err }},
	{http.MethodPost, func(ctx context.Context, c *client.Client) error {
		_, err := c.CreatePool(ctx, api.Pool{Name: "p"})
		return err
	}},
	{http.MethodPut, func(ctx context.Context, c *client.Client) error {
		_, err := c.PutPool(ctx, api.Pool{Name: "p"}, "0000000000000001")
		return err
	}},
	{http.MethodDelete, func(ctx context.Context, c *client.Client) error { return c.DeletePool(ctx, "p", "0000000000000001") }},
}

// TestFailoverDecision is the retry decision table of the package comment, against real
// servers: for each way the first endpoint fails and each method, whether the request
// reaches the second endpoint, and which endpoint the client then stays on.
func TestFailoverDecision(t *testing.T) {
	const (
		read  = 1 << iota // a GET moves on
		write             // a POST, PUT or DELETE moves on
		all   = read | write
		none  = 0
	)
	tests := []struct {
		name  string
		first func(t *testing.T) string // the first endpoint's URL
		next  int                       // which methods reach the second endpoint
		code  int                       // the status the caller sees when a request does not move on, 0 for none
	}{
		{"connection refused", func(t *testing.T) string { return refusedURL(t) }, all, 0},
		{"TLS handshake fails", func(t *testing.T) string {
			s := httptest.NewServer(fails(http.StatusOK)) // plain HTTP, addressed as https
			t.Cleanup(s.Close)
			return strings.Replace(s.URL, "http://", "https://", 1)
		}, all, 0},
		{"503", serve(fails(http.StatusServiceUnavailable)), read, http.StatusServiceUnavailable},
		{"502", serve(fails(http.StatusBadGateway)), read, http.StatusBadGateway},
		{"504", serve(fails(http.StatusGatewayTimeout)), read, http.StatusGatewayTimeout},
		{"connection closed after the request", serve(http.HandlerFunc(closes)), read, 0},
		{"body cut short", serve(http.HandlerFunc(cutsBody)), read, 0},
		{"no answer within the timeout", serve(http.HandlerFunc(hangs)), read, 0},
		{"500", serve(fails(http.StatusInternalServerError)), none, http.StatusInternalServerError},
		{"404", serve(fails(http.StatusNotFound)), none, http.StatusNotFound},
		{"409", serve(fails(http.StatusConflict)), none, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := tt.first(t)
			for _, m := range calls {
				t.Run(m.method, func(t *testing.T) {
					second := &answers{}
					s := httptest.NewServer(second)
					t.Cleanup(s.Close)
					// The hanging endpoint is given up on after 500ms; the second answers
					// at once.
					c, err := client.New([]string{first, s.URL}, token,
						client.WithTimeouts(client.Timeouts{Read: 500 * time.Millisecond, Write: 500 * time.Millisecond}))
					if err != nil {
						t.Fatal(err)
					}
					err = m.call(context.Background(), c)
					moves := tt.next&read != 0
					if m.method != http.MethodGet {
						moves = tt.next&write != 0
					}
					if moves {
						if err != nil || second.n.Load() != 1 || c.Current() != s.URL {
							t.Errorf("err %v, %d requests on the second endpoint, current %s; want success through %s",
								err, second.n.Load(), c.Current(), s.URL)
						}
						return
					}
					if err == nil || second.n.Load() != 0 || c.Current() != first {
						t.Fatalf("err %v, %d requests on the second endpoint, current %s; want an error from %s only",
							err, second.n.Load(), c.Current(), first)
					}
					if got := client.StatusCode(err); got != tt.code {
						t.Errorf("status %d (err %v); want %d", got, err, tt.code)
					}
					var ee *client.EndpointError
					if errors.As(err, &ee) {
						// Only a write that may have been applied stops with the rest untried.
						if len(ee.Attempts) != 1 || ee.Attempts[0].Endpoint != first ||
							!slices.Equal(ee.NotRetried, []string{s.URL}) || !strings.Contains(err.Error(), "may have been applied") {
							t.Errorf("err %q (%+v); want one attempt on %s and %s not retried", err, ee, first, s.URL)
						}
					} else if tt.code == 0 {
						t.Errorf("err %v (%T); want an *EndpointError", err, err)
					}
				})
			}
		})
	}
}

// serve starts a server with h and returns a function that gives its URL.
func serve(h http.Handler) func(t *testing.T) string {
	return func(t *testing.T) string {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return s.URL
	}
}

// TestEndpointErrorNamesEveryEndpoint checks that a request no endpoint answers fails with
// every endpoint tried, in order, and why each failed.
func TestEndpointErrorNamesEveryEndpoint(t *testing.T) {
	// The live servers first: a port closed before they bind could be given to one of them.
	unavailable, closed := serve(fails(http.StatusServiceUnavailable))(t), serve(http.HandlerFunc(closes))(t)
	refused := refusedURL(t)
	c, err := client.New([]string{refused, unavailable, closed}, token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPool(context.Background(), "web-eu")
	var ee *client.EndpointError
	if !errors.As(err, &ee) {
		t.Fatalf("err %v (%T); want an *EndpointError", err, err)
	}
	var got []string
	for _, a := range ee.Attempts {
		got = append(got, a.Endpoint)
	}
	if want := []string{refused, unavailable, closed}; !slices.Equal(got, want) || len(ee.NotRetried) != 0 {
		t.Errorf("attempts on %v, not retried %v; want %v, none", got, ee.NotRetried, want)
	}
	msg := err.Error()
	for _, want := range []string{"GET /v1/pools/web-eu: no endpoint answered: ",
		refused + ": dial tcp", "connection refused",
		unavailable + ": 503 from the first endpoint",
		closed + ": EOF"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if client.StatusCode(err) != http.StatusServiceUnavailable {
		t.Errorf("StatusCode %d; want 503, the only answer", client.StatusCode(err))
	}
	if c.Current() != refused {
		t.Errorf("current %s after no endpoint answered; want %s, unchanged", c.Current(), refused)
	}
}

// switchable answers as the admin API would (answers) until it is told to fail with 503.
type switchable struct {
	answers
	down atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		s.n.Add(1)
		fails(http.StatusServiceUnavailable)(w, r)
		return
	}
	s.answers.ServeHTTP(w, r)
}

// TestStickyEndpoint checks that the client stays on the endpoint that answered last: it
// does not go back to the first when that one recovers, a 4xx answer does not move it,
// and it moves round the list (from the last to the first) when its endpoint fails.
func TestStickyEndpoint(t *testing.T) {
	a, b := &switchable{}, &switchable{}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	t.Cleanup(sa.Close)
	t.Cleanup(sb.Close)
	c, err := client.New([]string{sa.URL, sb.URL}, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name         string
		aDown, bDown bool
		call         func() error
		wantA, wantB int32 // requests each has seen so far
		current      string
	}{
		{"first endpoint first", false, false, func() error { _, err := c.ListPools(ctx); return err }, 1, 0, sa.URL},
		{"503 moves a read on", true, false, func() error { _, err := c.ListPools(ctx); return err }, 2, 1, sb.URL},
		{"stays after the first recovers", false, false, func() error { _, err := c.ListPools(ctx); return err }, 2, 2, sb.URL},
		{"writes follow", false, false, func() error { _, err := c.CreatePool(ctx, api.Pool{Name: "p"}); return err }, 2, 3, sb.URL},
		{"round the list", false, true, func() error { _, err := c.ListPools(ctx); return err }, 3, 4, sa.URL},
	}
	for _, s := range steps {
		a.down.Store(s.aDown)
		b.down.Store(s.bDown)
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if a.n.Load() != s.wantA || b.n.Load() != s.wantB || c.Current() != s.current {
			t.Fatalf("%s: %d and %d requests, current %s; want %d and %d, current %s",
				s.name, a.n.Load(), b.n.Load(), c.Current(), s.wantA, s.wantB, s.current)
		}
	}

	// An answer that is not a node's failure (404) keeps the client where it is.
	nf := httptest.NewServer(fails(http.StatusNotFound))
	t.Cleanup(nf.Close)
	c, err = client.New([]string{nf.URL, sb.URL}, token)
	if err != nil {
		t.Fatal(err)
	}
	b.down.Store(false)
	if _, err := c.GetPool(ctx, "p"); !errors.Is(err, client.ErrNotFound) || c.Current() != nf.URL {
		t.Errorf("err %v, current %s; want ErrNotFound from %s, which stays current", err, c.Current(), nf.URL)
	}
}

// TestFailoverRealNodes runs two real glbdns nodes with the same operator policy, stops
// the first, and checks that a client of both creates, reads and deletes through the
// second: one that had been talking to the first (so its first request after the stop is
// a read, on a connection that may have been cut), and a new one whose first request is a
// write. It logs how long the first request takes to succeed on the second node.
func TestFailoverRealNodes(t *testing.T) {
	nodes := glbtest.StartNodes(t, 2, glbtest.Options{Token: token})
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	c := clientOf(t, a.URL, b.URL)
	if _, err := c.CreatePool(ctx, webEU()); err != nil || c.Current() != a.URL {
		t.Fatalf("create with both nodes up: %v, current %s; want it on %s", err, c.Current(), a.URL)
	}
	a.Stop()

	start := time.Now()
	pools, err := c.ListPools(ctx)
	took := time.Since(start)
	if err != nil || c.Current() != b.URL {
		t.Fatalf("list with the first node down: %v, current %s; want %s", err, c.Current(), b.URL)
	}
	// The nodes share no store (etcd does that), so the second has none of the first's pools.
	if len(pools) != 0 {
		t.Errorf("the second node lists %d pools; want 0", len(pools))
	}
	start = time.Now()
	if _, err := clientOf(t, b.URL).ListPools(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE failover read: %s from the request to its answer from the second node (first refused); %s sent to the second alone",
		took, time.Since(start))
	lifecycle(t, c)

	fresh := clientOf(t, a.URL, b.URL)
	start = time.Now()
	p, err := fresh.CreatePool(ctx, api.Pool{Name: "fresh", Members: []api.Member{{Name: "a", Address: "192.0.2.1"}}})
	took = time.Since(start)
	if err != nil || fresh.Current() != b.URL {
		t.Fatalf("create with the first node down: %v, current %s; want %s", err, fresh.Current(), b.URL)
	}
	t.Logf("MEASURE failover write: %s from the request to its answer from the second node (first refused)", took)
	if err := fresh.DeletePool(ctx, "fresh", p.Version); err != nil {
		t.Errorf("delete: %v", err)
	}
}

// clientOf returns a client of the endpoints.
func clientOf(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(endpoints, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lifecycle creates, reads, updates and deletes a pool through c.
func lifecycle(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	p, err := c.CreatePool(ctx, webEU())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := c.GetPool(ctx, "web-eu")
	if err != nil || got.Version != p.Version {
		t.Fatalf("get: %v, version %q; want %q", err, got.Version, p.Version)
	}
	upd := webEU()
	upd.Region = "europe"
	p, err = c.PutPool(ctx, upd, p.Version)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := c.DeletePool(ctx, "web-eu", p.Version); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GetPool(ctx, "web-eu"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get after delete: %v; want ErrNotFound", err)
	}
}

// TestNewEndpoints checks New's validation of the endpoint list and the normal form
// Endpoints reports.
func TestNewEndpoints(t *testing.T) {
	c, err := client.New([]string{"HTTP://Node-1.example:8053/", "https://node-2.example/glbdns/"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Endpoints(), []string{"http://node-1.example:8053", "https://node-2.example/glbdns"}; !slices.Equal(got, want) {
		t.Errorf("endpoints %v; want %v", got, want)
	}
	if c.Current() != "http://node-1.example:8053" {
		t.Errorf("current %s; want the first endpoint", c.Current())
	}
	for _, tt := range []struct {
		name string
		eps  []string
		want string
	}{
		{"none", nil, "no endpoint"},
		{"duplicate", []string{"http://a:1", "http://b:1", "http://A:1/"}, `endpoint "http://A:1/": the same as endpoint 0`},
		{"bad second", []string{"http://a:1", "a:1"}, `endpoint "a:1": no scheme`},
		{"ftp", []string{"ftp://a:1"}, `endpoint "ftp://a:1": want an http or https URL with a host`},
		{"query", []string{"http://a:1/?x=1"}, "want no query or fragment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := client.New(tt.eps, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q): %v; want an error containing %q", tt.eps, err, tt.want)
			}
		})
	}
}
