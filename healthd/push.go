package healthd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/glbdns/glbdns/api"
)

// PushTimeout bounds one push of a report to one glbdns node (healthd -once -push).
const PushTimeout = 5 * time.Second

// Pushed is r as the body of glbdns's POST /v1/health/report, counting for ttl: its up
// and down verdicts, each down one with the reason of its last failed probe. A member
// still unknown is left out; glbdns then keeps the pusher's last verdict on it, so an
// undecided run does not undo the previous one.
func Pushed(r api.Report, ttl time.Duration) api.PushedReport {
	p := api.PushedReport{Reporter: r.Reporter, TTL: ttl.String(), Members: make([]api.PushedMember, 0, len(r.Members))}
	for _, m := range r.Members {
		if m.Status != api.StatusUp && m.Status != api.StatusDown {
			continue
		}
		pm := api.PushedMember{Pool: m.Pool, Member: m.Member, Status: m.Status}
		if m.Status == api.StatusDown {
			pm.Reason = m.Reason
			if pm.Reason == "" && m.LastResult != nil {
				pm.Reason = m.LastResult.Reason
			}
		}
		p.Members = append(p.Members, pm)
	}
	return p
}

// Push posts body to the glbdns admin API at base (http://host:port) with the report
// token, within PushTimeout, and returns glbdns's answer; an error carries the status and
// glbdns's reason.
func Push(ctx context.Context, hc *http.Client, base, token string, body api.PushedReport) (api.PushAccepted, error) {
	var acc api.PushAccepted
	data, err := json.Marshal(body)
	if err != nil {
		return acc, err
	}
	ctx, cancel := context.WithTimeout(ctx, PushTimeout)
	defer cancel()
	url := strings.TrimSuffix(base, "/") + "/v1/health/report"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return acc, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return acc, fmt.Errorf("push to %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // an answer is small; bound a wrong server's
	if err != nil {
		return acc, fmt.Errorf("push to %s: %s: %w", url, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return acc, fmt.Errorf("push to %s: %s: %s", url, resp.Status, e.Error)
		}
		return acc, fmt.Errorf("push to %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(b, &acc); err != nil {
		return acc, fmt.Errorf("push to %s: answer: %w", url, err)
	}
	return acc, nil
}
