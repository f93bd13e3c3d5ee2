// Package probe holds the health probers healthd runs against pool members, one file per
// protocol in the style of prometheus/blackbox_exporter: every prober has the same
// signature (Func), is registered by check type in Default, takes its deadline from ctx
// and reads at most a bounded number of bytes. Unlike blackbox, whose probers return a
// bare bool, a prober returns a Result carrying the reason of a failure, because the
// health API publishes it to operators.
//
// A prober never outlives its context: Run always applies the check's timeout, so a
// backend that accepts and then stays silent costs one timeout, never a stuck scheduler.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// DefaultTimeout bounds a probe whose check does not set a timeout. It matches the policy
// default (2s), so a check compiled without one behaves the same here.
const DefaultTimeout = 2 * time.Second

// Target is where a probe connects: the member's address, or its host name for a
// host-name (CNAME) member, and the check's port.
type Target struct {
	// Addr is the member's address; invalid for a host-name member.
	Addr netip.Addr
	// Host is the member's host name (a trailing dot is accepted and dropped when
	// dialing); used only when Addr is invalid.
	Host string
	// Port is the check's port.
	Port int
}

// TargetOf returns the target of check c on member m.
func TargetOf(m *policy.Member, c *policy.Check) Target {
	return Target{Addr: m.Addr, Host: m.Host, Port: c.Port}
}

// Hostname is the name or address literal to dial, without port or trailing dot.
func (t Target) Hostname() string {
	if t.Addr.IsValid() {
		return t.Addr.Unmap().String()
	}
	return strings.TrimSuffix(t.Host, ".")
}

// String is "host:port" ("[v6]:port" for IPv6), suitable for net.Dial.
func (t Target) String() string {
	return net.JoinHostPort(t.Hostname(), strconv.Itoa(t.Port))
}

// Phase is the duration of one step of a probe (blackbox splits probe time the same way:
// connect, tls, processing), so an operator can tell a slow handshake from a slow handler.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Result is the outcome of one probe.
type Result struct {
	// OK is true when the probe passed.
	OK bool
	// Reason says why a probe failed ("" when OK), short and suitable for the API.
	Reason string
	// Latency is the time from the start of the probe to its verdict.
	Latency time.Duration
	// At is when the probe started.
	At time.Time
	// Phases split Latency by step where the prober measures them (may be nil).
	Phases []Phase
	// Panic holds the stack when the prober panicked (Run recovered it), for the log.
	Panic string
}

// Func is the signature every prober shares. It must return by ctx's deadline.
type Func func(ctx context.Context, target Target, c *policy.Check) Result

// Default maps each check type ("http", "https", "tcp", "dns") to its prober, using the
// system's root certificates for HTTPS.
var Default = map[string]Func{
	"http":  HTTP{}.Probe,
	"https": HTTP{}.Probe,
	"tcp":   TCP,
	"dns":   DNS,
}

// Run runs one probe of check c against target with the prober registered for c.Type in
// probers: it applies c.Timeout (DefaultTimeout when unset) to ctx, turns a panic in the
// prober into a failed result (a buggy prober must not take the daemon down), and fills
// At and Latency.
func Run(ctx context.Context, probers map[string]Func, target Target, c *policy.Check) (res Result) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			res = Result{Reason: fmt.Sprintf("prober panic: %v", r), Panic: string(debug.Stack())}
		}
		res.At = start
		res.Latency = time.Since(start)
	}()
	fn := probers[c.Type]
	if fn == nil {
		return Result{Reason: fmt.Sprintf("unknown check type %q", c.Type)}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return fn(ctx, target, c)
}

// fail builds a failed Result from a reason and an optional error.
func fail(format string, args ...any) Result {
	return Result{Reason: fmt.Sprintf(format, args...)}
}

// errReason shortens an error for the API: a deadline becomes "timeout" so that every
// prober reports a slow backend the same way.
func errReason(ctx context.Context, what string, err error) Result {
	if ctx.Err() == context.DeadlineExceeded || isTimeout(err) {
		return fail("%s: timeout", what)
	}
	return fail("%s: %v", what, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
