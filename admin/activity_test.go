package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// TestActivity: a pool is dated when a service using it answered since the last reading,
// not before, and a pool no service answered has no date; the answer lists every pool.
func TestActivity(t *testing.T) {
	a, srv, hs := newAdmin(t)
	read := func() map[string]*time.Time {
		code, body := get(t, hs.URL+"/v1/activity")
		if code != 200 {
			t.Fatalf("GET /v1/activity: %d %s", code, body)
		}
		var act api.Activity
		if err := json.Unmarshal([]byte(body), &act); err != nil {
			t.Fatal(err)
		}
		if act.Since.IsZero() {
			t.Errorf("no since: %s", body)
		}
		out := map[string]*time.Time{}
		for _, p := range act.Pools {
			out[p.Pool] = p.LastAnswered
		}
		return out
	}
	got := read()
	if len(got) != len(a.view().Snapshot().Pools) || got["web"] != nil || got["rr"] != nil {
		t.Fatalf("before any query: %v, want every pool undated", got)
	}
	before := time.Now()
	ask(t, srv, "rr.glb.example.com.", 3)
	got = read()
	if got["rr"] == nil || got["rr"].Before(before.Add(-time.Second)) || got["web"] != nil {
		t.Fatalf("after queries for rr: %v, want rr dated now and web undated", got)
	}
	first := *got["rr"]
	a.readActivity(first.Add(time.Hour)) // no answer since: the date stays
	if got = read(); !got["rr"].Equal(first) {
		t.Errorf("no answer since: rr dated %v, want %v", got["rr"], first)
	}
}

// TestActivityTokens: with an admin token, /v1/activity takes it or the report token, and
// nothing else.
func TestActivityTokens(t *testing.T) {
	a, _, _ := newAdmin(t)
	b := New(Config{Server: a.cfg.Server, Health: a.cfg.Health, Logger: a.log, Token: "adm", ReportToken: "rep"})
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	for tok, want := range map[string]int{"adm": 200, "rep": 200, "other": 403, "": 401} {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/activity", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
	// The report token reads nothing else.
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/state", nil)
	req.Header.Set("Authorization", "Bearer rep")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("GET /v1/state with the report token: %v %v, want 403", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}
