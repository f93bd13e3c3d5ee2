package probe

import (
	"context"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// TCP probes a "tcp" check: the member must accept a connection and, when Expect is set,
// reply to Send (if any) with bytes starting with Expect before the deadline.
func TCP(ctx context.Context, target Target, c *policy.Check) Result {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return errReason(ctx, "connect", err)
	}
	defer conn.Close()
	res := Result{Phases: []Phase{{"connect", time.Since(start)}}}
	if c.Send == "" && c.Expect == "" {
		res.OK = true
		return res
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // the context's deadline bounds the exchange too
	}
	// Close the connection if ctx is cancelled before its deadline (daemon shutdown).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.Send != "" {
		if _, err := io.WriteString(conn, c.Send); err != nil {
			r := errReason(ctx, "send", err)
			r.Phases = res.Phases
			return r
		}
	}
	if c.Expect == "" {
		res.OK = true
		return res
	}
	buf := make([]byte, len(c.Expect))
	n, err := io.ReadFull(conn, buf)
	if err != nil {
		if n > 0 && string(buf[:n]) != c.Expect[:n] {
			res.Reason = "reply does not start with " + strconv.Quote(c.Expect)
			return res
		}
		r := errReason(ctx, "read reply", err)
		r.Phases = res.Phases
		return r
	}
	if string(buf) != c.Expect {
		res.Reason = "reply " + strconv.Quote(string(buf)) + " does not start with " + strconv.Quote(c.Expect)
		return res
	}
	res.OK = true
	return res
}
