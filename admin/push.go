package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/policy/store"
)

// Bounds of a pushed report (POST /v1/health/report): the TTL a pusher may ask for, and
// the verdicts one report carries (maxBody bounds its bytes).
const (
	MinPushTTL     = time.Second
	MaxPushTTL     = time.Hour
	maxPushMembers = 10000
)

var pusherName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// pushAuthorized checks r's bearer token against the report token and the admin token:
// either may push; the report token may do nothing else but read GET /v1/activity.
func (a *Admin) pushAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if a.cfg.ReportToken == "" && a.cfg.Token == "" {
		writeError(w, http.StatusForbidden, "health push disabled: no report token (-report-token-file) nor admin token configured", "")
		return false
	}
	return a.reporterAuthorized(w, r, "wrong report token")
}

// reporterAuthorized checks that r carries the report token or the admin token, answering
// 401 or 403 (wrong) when it does not.
func (a *Admin) reporterAuthorized(w http.ResponseWriter, r *http.Request, wrong string) bool {
	sum, ok := bearer(w, r)
	if !ok {
		return false
	}
	report := a.cfg.ReportToken != "" && subtle.ConstantTimeCompare(sum[:], a.reportSum[:]) == 1
	admin := a.cfg.Token != "" && subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
	if !report && !admin {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glbdns", error="invalid_token"`)
		writeError(w, http.StatusForbidden, wrong, "")
		return false
	}
	return true
}

// pushReport is POST /v1/health/report: a pushed report, checked against the serving
// policy and recorded in the merged health (health.Health.Push).
func (a *Admin) pushReport(w http.ResponseWriter, r *http.Request) {
	if !a.pushAuthorized(w, r) {
		return
	}
	var pr api.PushedReport
	if !decode(w, r, &pr) {
		return
	}
	if !pusherName.MatchString(pr.Reporter) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reporter %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", pr.Reporter), "reporter")
		return
	}
	ttl, err := time.ParseDuration(pr.TTL)
	if err != nil || ttl < MinPushTTL || ttl > MaxPushTTL {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: want a duration from %v to %v, like \"30s\"", pr.TTL, MinPushTTL, MaxPushTTL), "ttl")
		return
	}
	if len(pr.Members) > maxPushMembers {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%d members: at most %d in one report", len(pr.Members), maxPushMembers), "members")
		return
	}
	v := a.view()
	if v == nil {
		writeError(w, http.StatusServiceUnavailable, "no policy serves yet: nothing to report on", "")
		return
	}
	snap := v.Snapshot()
	rep := &api.Report{Reporter: pr.Reporter, Members: make([]api.MemberReport, 0, len(pr.Members))}
	var unknown []string
	for i, m := range pr.Members {
		if m.Status != api.StatusUp && m.Status != api.StatusDown {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("members[%d] %s/%s: status must be up or down", i, m.Pool, m.Member), fmt.Sprintf("members[%d].status", i))
			return
		}
		p := snap.PoolByName[m.Pool]
		found := false
		for j := 0; p != nil && j < len(p.Members) && !found; j++ {
			found = p.Members[j].Name == m.Member
		}
		if !found {
			unknown = append(unknown, m.Pool+"/"+m.Member)
			continue
		}
		rep.Members = append(rep.Members, api.MemberReport{Pool: m.Pool, Member: m.Member, Status: m.Status, Reason: m.Reason})
	}
	if len(unknown) > 0 {
		more := ""
		if len(unknown) > 10 {
			unknown, more = unknown[:10], fmt.Sprintf(" (and %d more)", len(unknown)-10)
		}
		writeError(w, http.StatusBadRequest, "members not in the serving policy: "+strings.Join(unknown, ", ")+more, "members")
		return
	}
	now := time.Now()
	push := a.cfg.Push
	if push == nil {
		push = func(_ context.Context, name string, rep *api.Report, ttl time.Duration, at time.Time) error {
			return a.cfg.Health.Push(name, rep, ttl, at)
		}
	}
	if err := push(r.Context(), pr.Reporter, rep, ttl, now); err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, health.ErrTooManyPushers):
			status = http.StatusTooManyRequests
		case errors.Is(err, store.ErrInvalid):
			status = http.StatusBadRequest
		case errors.Is(err, store.ErrUnavailable):
			// This node counts the report; the others do not see it until etcd is back
			// and the pusher pushes again.
			w.Header().Set("Retry-After", "1")
			status = http.StatusServiceUnavailable
		default:
			a.log.Error("health push failed", "reporter", pr.Reporter, "err", err)
		}
		writeError(w, status, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, api.PushAccepted{Reporter: health.PushPrefix + pr.Reporter, Members: len(rep.Members), Expires: now.Add(ttl).UTC()})
}
