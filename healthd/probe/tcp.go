package probe

import (
	"context"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// TCP prepares a "tcp" check: the member must accept a connection and, when Expect is
// set, reply to Send (if any) with bytes starting with Expect before the deadline.
func TCP(c *policy.Check) (Func, error) {
	tc := &tcpCheck{expect: c.Expect}
	if c.Send != "" {
		tc.send = []byte(c.Send)
	}
	return tc.probe, nil
}

// tcpCheck is a tcp check prepared once: the bytes to send, and the reply's prefix.
type tcpCheck struct {
	send   []byte
	expect string
}

func (tc *tcpCheck) probe(ctx context.Context, target Target) Result {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return errReason(ctx, "connect", err)
	}
	defer conn.Close()
	phases := []Phase{{"connect", time.Since(start)}}
	if tc.send == nil && tc.expect == "" {
		return Result{OK: true, Phases: phases}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // the context's deadline bounds the exchange too
	}
	// Close the connection if ctx is cancelled before its deadline (daemon shutdown).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	res := tc.exchange(ctx, conn)
	res.Phases = phases
	return res
}

// exchange writes the check's bytes and reads the reply's first len(expect) bytes.
func (tc *tcpCheck) exchange(ctx context.Context, conn net.Conn) Result {
	if tc.send != nil {
		if _, err := conn.Write(tc.send); err != nil {
			return errReason(ctx, "send", err)
		}
	}
	if tc.expect == "" {
		return Result{OK: true}
	}
	buf := make([]byte, len(tc.expect))
	n, err := io.ReadFull(conn, buf)
	if err != nil {
		if n > 0 && string(buf[:n]) != tc.expect[:n] {
			return Result{Reason: "reply does not start with " + strconv.Quote(tc.expect)}
		}
		return errReason(ctx, "read reply", err)
	}
	if string(buf) != tc.expect {
		return Result{Reason: "reply " + strconv.Quote(string(buf)) + " does not start with " + strconv.Quote(tc.expect)}
	}
	return Result{OK: true}
}
