package policy

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
)

// Defaults of a cold_start block.
const (
	// DefaultColdTimeout is a cold probe's timeout: a function platform's cold start
	// (a container pulled and started, a runtime booted) takes seconds, not the
	// milliseconds a check's timeout is tuned for.
	DefaultColdTimeout = api.DefaultColdStartTimeout
	// DefaultIdleAfter is how long without answers makes a pool idle: PowerDNS stops its
	// ifurlup checks after an hour without queries (lua-health-checks-expire-delay).
	DefaultIdleAfter = time.Hour
	// DefaultIdleInterval is the probe interval of an idle pool: rare enough that the
	// probes do not keep a function warm, where platforms keep an idle instance for
	// minutes.
	DefaultIdleInterval = 10 * time.Minute
	// maxColdTimeout bounds a cold probe: healthd's probe slots are shared.
	maxColdTimeout = api.MaxColdStartTimeout
)

// ColdStart is a pool's cold_start block: its members may scale to zero (serverless
// endpoints), so healthd probes them so as neither to keep them warm nor to mark them down
// for a cold start. A pool is idle when no glbdns node it hears of answered one of its
// services for IdleAfter. A cold probe gets Timeout instead of its check's: every probe
// of an idle pool, the first probe of a check, and the first probe after the pool became
// active again. An idle pool's checks probe every IdleInterval instead of their interval.
// Immutable once compiled.
type ColdStart struct {
	Timeout, IdleAfter, IdleInterval time.Duration
}

var coldStartSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "timeout"}, {Name: "idle_after"}, {Name: "idle_interval"}},
}

// coldStart compiles p's cold_start block, once p's members (and their checks, with the
// members' overrides) are known: the cold timeout may not be shorter than a check's
// timeout, nor the idle interval than a check's interval, or the block would make probing
// quicker, not more patient.
func (c *compilation) coldStart(p *Pool, blk *hcl.Block) *ColdStart {
	n0 := len(c.diags)
	content, diags := bodyContent(blk.Body, coldStartSchema)
	c.add(diags)
	at := content.Attributes
	cs := &ColdStart{Timeout: DefaultColdTimeout, IdleAfter: DefaultIdleAfter, IdleInterval: DefaultIdleInterval}
	var timeout, interval time.Duration
	for _, m := range p.Members {
		for _, ch := range m.Checks {
			timeout, interval = max(timeout, ch.Timeout), max(interval, ch.Interval)
		}
	}
	rng := func(name string) hcl.Range {
		if a := at[name]; a != nil {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	if a := at["timeout"]; a != nil {
		cs.Timeout, _ = c.duration(a)
	}
	if a := at["idle_after"]; a != nil {
		cs.IdleAfter, _ = c.duration(a)
	}
	if a := at["idle_interval"]; a != nil {
		cs.IdleInterval, _ = c.duration(a)
	} else {
		cs.IdleInterval = max(cs.IdleInterval, interval)
	}
	switch {
	case len(c.diags) > n0:
	case cs.Timeout > maxColdTimeout:
		c.errf(rng("timeout"), "Invalid cold_start timeout", "The cold start timeout (%s) must be at most %s.", cs.Timeout, maxColdTimeout)
	case cs.Timeout < timeout:
		c.errf(rng("timeout"), "Invalid cold_start timeout", "The cold start timeout (%s) must not be shorter than the timeout of the pool's checks (%s).", cs.Timeout, timeout)
	case cs.IdleInterval < interval:
		c.errf(rng("idle_interval"), "Invalid cold_start idle_interval", "The idle interval (%s) must not be shorter than the interval of the pool's checks (%s): an idle pool is probed less often, not more.", cs.IdleInterval, interval)
	}
	if len(c.diags) > n0 {
		return nil
	}
	return cs
}
