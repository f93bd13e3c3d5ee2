package probe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/glbdns/glbdns/policy"
)

func TestPrometheusValue(t *testing.T) {
	body := []byte(`# HELP active_connections Open connections.
# TYPE active_connections gauge
active_connections{listener="http",state="open"} 12
active_connections{listener="https",state="open"} 3 1700000000000
active_connections{listener="http",state="idle"} 40
active_connections_total 99
other{label="a \"quoted\" value, with comma"} 7
`)
	for _, c := range []struct {
		name, metric string
		labels       map[string]string
		want         float64
		err          error
	}{
		{"sum of all", "active_connections", nil, 55, nil},
		{"matched", "active_connections", map[string]string{"state": "open"}, 15, nil},
		{"two labels", "active_connections", map[string]string{"state": "open", "listener": "https"}, 3, nil},
		{"prefix is another metric", "active_connections_total", nil, 99, nil},
		{"escaped", "other", map[string]string{"label": `a "quoted" value, with comma`}, 7, nil},
		{"no match", "active_connections", map[string]string{"state": "closed"}, 0, ErrLoadMissing},
		{"absent", "nothing", nil, 0, ErrLoadMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := PrometheusValue(body, c.metric, c.labels)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("got %v, %v; want %v, %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestLoadReaderRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			w.Write([]byte("conns{pool=\"a\"} 4\nconns{pool=\"b\"} 5\n"))
		case "/json":
			w.Write([]byte(`{"server": {"connections": 17, "name": "x"}, "s": "2.5"}`))
		case "/number":
			w.Write([]byte(" 42\n"))
		case "/negative":
			w.Write([]byte("-1"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	m := &policy.Member{Addr: netip.MustParseAddr("127.0.0.1")}
	sig := func(typ, path string) policy.LoadSignal {
		return policy.LoadSignal{Type: typ, Scheme: "http", Port: port, Path: path, Interval: time.Second, Timeout: 500 * time.Millisecond}
	}
	for _, c := range []struct {
		name    string
		sig     policy.LoadSignal
		want    float64
		wantErr string
	}{
		{"prometheus", func() policy.LoadSignal {
			s := sig("prometheus", "/metrics")
			s.Metric, s.Labels = "conns", map[string]string{"pool": "b"}
			return s
		}(), 5, ""},
		{"json", func() policy.LoadSignal { s := sig("json", "/json"); s.Field = "server.connections"; return s }(), 17, ""},
		{"json string", func() policy.LoadSignal { s := sig("json", "/json"); s.Field = "s"; return s }(), 2.5, ""},
		{"json not a number", func() policy.LoadSignal { s := sig("json", "/json"); s.Field = "server.name"; return s }(), 0, `field "server.name" is not a number`},
		{"json missing", func() policy.LoadSignal { s := sig("json", "/json"); s.Field = "server.x"; return s }(), 0, `field "server.x": no such value`},
		{"number", sig("number", "/number"), 42, ""},
		{"negative", sig("number", "/negative"), 0, "value -1 is not a load"},
		{"status", sig("number", "/nothing"), 0, "unexpected status 404"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lr, err := NewLoadReader(&c.sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lr.Read(context.Background(), m)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
