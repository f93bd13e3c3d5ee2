// Package probe holds the health probers healthd runs against pool members, one file per
// protocol in the style of prometheus/blackbox_exporter: every protocol has the same
// signature (Preparer), is registered by check type in Default, takes its deadline from
// ctx and reads at most a bounded number of bytes. Unlike blackbox, whose probers return a
// bare bool, a probe returns a Result carrying the reason of a failure, because the health
// API publishes it to operators.
//
// A check is prepared once, when the scheduler learns it (caddy provisions a module the
// same way): Prepare compiles regexps, builds the request template, header set, TLS
// configuration and status ranges, or the DNS question, so that each probe only dials and
// matches. A check shared by many members is prepared once for all of them. Preparation
// trusts the check as the policy package compiled it, every default filled in; a check it
// cannot run (one the policy refuses, such as an unknown type or a bad regexp, or one
// net/http refuses, such as a method that is not a token) gives a Prober whose every
// probe fails with the reason, never a panic.
//
// A probe never outlives its context: Probe always applies the check's timeout, so a
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
	"syscall"
	"time"

	"github.com/glbdns/glbdns/policy"
)

// Target is where a probe connects: the member's address, or its host name for a
// host-name (CNAME) member, and the check's port. It is a value to pass, not to edit: a
// Target made by TargetOf keeps the address it computed (a literal computes it on every
// String call).
type Target struct {
	// Addr is the member's address; invalid for a host-name member.
	Addr netip.Addr
	// Host is the member's host name (a trailing dot is accepted and dropped when
	// dialing); used only when Addr is invalid.
	Host string
	// Port is the check's port.
	Port int

	dial string // String(), computed once by TargetOf: every probe of the member dials it
}

// TargetOf returns the target of check c on member m.
func TargetOf(m *policy.Member, c *policy.Check) Target {
	t := Target{Addr: m.Addr, Host: m.Host, Port: c.Port}
	t.dial = t.String()
	return t
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
	if t.dial != "" {
		return t.dial
	}
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
	// Panic holds the stack when the prober panicked (Probe recovered it), for the log.
	Panic string
	// Local is a probe that could not run because of this host, not the member: out of
	// file descriptors or buffers, no local port left, the run canceled. It is no verdict
	// on the member (OK is false, and means nothing), so that whoever exhausts this host's
	// resources cannot mark every backend down with it.
	Local bool
}

// Func is one prepared probe: it probes target once and must return by ctx's deadline.
type Func func(ctx context.Context, target Target) Result

// Preparer is the signature every protocol shares: it turns a compiled check into its
// Func, doing once all the work that does not depend on the member. An error means the
// check cannot run.
type Preparer func(c *policy.Check) (Func, error)

// Default maps each check type ("http", "https", "tcp", "dns") to its preparer, using the
// system's root certificates for HTTPS.
var Default = map[string]Preparer{
	"http":  HTTP{}.Prepare,
	"https": HTTP{}.Prepare,
	"tcp":   TCP,
	"dns":   DNS,
}

// errNoTimeout refuses a check without a timeout: its probe could hang for ever.
var errNoTimeout = errors.New("check has no timeout")

// Prober is a check prepared for probing: one per check, shared by the members that run
// it, safe for concurrent use.
type Prober struct {
	timeout time.Duration
	fn      Func
	err     error  // why the check cannot run (fn == nil)
	stack   string // the stack of a preparer's panic, for the log
}

// Prepare prepares c with the preparer registered for c.Type in preparers. It never fails:
// a check that cannot run (unknown type, no timeout, a preparer's error or panic) gives a
// Prober whose every probe fails with the reason, and Err returns it.
func Prepare(preparers map[string]Preparer, c *policy.Check) (p *Prober) {
	p = &Prober{timeout: c.Timeout}
	defer func() {
		if r := recover(); r != nil {
			p.fn, p.err, p.stack = nil, fmt.Errorf("prober panic: %v", r), string(debug.Stack())
		}
	}()
	prepare := preparers[c.Type]
	switch {
	case prepare == nil:
		p.err = fmt.Errorf("unknown check type %q", c.Type)
	case c.Timeout <= 0:
		p.err = errNoTimeout
	default:
		p.fn, p.err = prepare(c)
	}
	return p
}

// Err is why the check cannot run, or nil.
func (p *Prober) Err() error { return p.err }

// Probe runs one probe of target: it applies the check's timeout to ctx, turns a panic
// in the prober into a failed result (a buggy prober must not take the daemon down), and
// fills At and Latency.
func (p *Prober) Probe(ctx context.Context, target Target) (res Result) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			res = Result{Reason: fmt.Sprintf("prober panic: %v", r), Panic: string(debug.Stack())}
		}
		res.At = start
		res.Latency = time.Since(start)
	}()
	if p.err != nil {
		return Result{Reason: p.err.Error(), Panic: p.stack}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.fn(ctx, target)
}

// fail builds a failed Result from a reason.
func fail(format string, args ...any) Result {
	return Result{Reason: fmt.Sprintf(format, args...)}
}

// errReason shortens an error for the API: a deadline becomes "timeout" so that every
// prober reports a slow backend the same way.
func errReason(ctx context.Context, what string, err error) Result {
	if isLocal(err) || errors.Is(ctx.Err(), context.Canceled) {
		return Result{Reason: fmt.Sprintf("%s: local error: %v", what, err), Local: true}
	}
	if ctx.Err() == context.DeadlineExceeded || isTimeout(err) {
		return fail("%s: timeout", what)
	}
	return fail("%s: %v", what, err)
}

// isLocal reports whether err is this host's failure: a resource it ran out of, which
// says nothing of the member probed.
func isLocal(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
