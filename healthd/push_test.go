package healthd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// TestPushed: the pushed body keeps the up and down verdicts, a down one with its reason
// (the member's, else its last failed probe's), and leaves the unknown ones out.
func TestPushed(t *testing.T) {
	r := api.Report{Reporter: "cron", Members: []api.MemberReport{
		{Pool: "web", Member: "a", Status: api.StatusUp},
		{Pool: "web", Member: "b", Status: api.StatusDown, Reason: "connect: connection refused"},
		{Pool: "web", Member: "c", Status: api.StatusUnknown},
		{Pool: "web", Member: "d", Status: api.StatusDown, LastResult: &api.ResultReport{Reason: "http status 503"}},
	}}
	p := Pushed(r, 90*time.Second)
	if p.Reporter != "cron" || p.TTL != "1m30s" || len(p.Members) != 3 {
		t.Fatalf("pushed %+v", p)
	}
	want := []api.PushedMember{{Pool: "web", Member: "a", Status: api.StatusUp},
		{Pool: "web", Member: "b", Status: api.StatusDown, Reason: "connect: connection refused"},
		{Pool: "web", Member: "d", Status: api.StatusDown, Reason: "http status 503"}}
	for i := range want {
		if p.Members[i] != want[i] {
			t.Errorf("member %d: %+v, want %+v", i, p.Members[i], want[i])
		}
	}
}

// TestPush: Push posts the body with the token and returns glbdns's answer; a refusal is
// an error with the status and glbdns's reason.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body api.PushedReport
		if r.URL.Path != "/v1/health/report" || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"wrong report token"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(api.PushAccepted{Reporter: "push:" + body.Reporter, Members: len(body.Members)})
	}))
	defer srv.Close()
	body := api.PushedReport{Reporter: "cron", TTL: "1m", Members: []api.PushedMember{{Pool: "web", Member: "a", Status: api.StatusUp}}}
	acc, err := Push(context.Background(), srv.Client(), srv.URL+"/", "good", body)
	if err != nil || acc.Reporter != "push:cron" || acc.Members != 1 {
		t.Errorf("push: %+v, %v", acc, err)
	}
	if _, err := Push(context.Background(), srv.Client(), srv.URL, "bad", body); err == nil ||
		!strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "wrong report token") {
		t.Errorf("push with a wrong token: %v, want the 403 and its reason", err)
	}
}
