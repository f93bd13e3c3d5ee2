package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/api"
)

// LoadSignal is how healthd reads a member's load (its active connections) for the
// least_connections method: every Interval, an HTTP(S) GET of Path on the member's Port,
// whose body is read as Type says. It is a pool's load block with its defaults filled in,
// shared by the pool's members (immutable).
type LoadSignal struct {
	// Type is how the body is read: "prometheus" (the text exposition format: the sum of
	// the samples of Metric whose labels match Labels), "json" (the number at the dotted
	// path Field) or "number" (the whole body is one number).
	Type string
	// Scheme is "http" or "https": the scheme of the pool's first http(s) check, else
	// "http".
	Scheme string
	// Port defaults to the port of the member's first http(s) check (the pool's, with
	// the member's override), else 80.
	Port int
	// Path defaults to "/metrics" for prometheus, else the path of the pool's first
	// http(s) check, else "/".
	Path string
	// Metric and Labels select the samples of a prometheus signal; Labels must all match
	// (equality).
	Metric string
	Labels map[string]string
	// Field is the dotted path of a json signal ("a.b.connections").
	Field string
	// Interval between readings and Timeout of one; default the first http(s) check's,
	// else the check defaults (5s, 2s).
	Interval, Timeout time.Duration
	// Insecure skips TLS verification for https, as the check it defaults from does.
	Insecure bool

	// fromCheck: scheme and port came from a check (not set in the load block), so a
	// member whose check overrides the port is read on its own port (forMember).
	fromCheck bool
}

// forMember is the load signal of member m of the pool: the pool's, or a copy on the
// scheme and port of m's first http(s) check when the block set neither and m's check
// overrides them.
func (l *LoadSignal) forMember(m *Member) *LoadSignal {
	if l == nil || !l.fromCheck {
		return l
	}
	for _, ch := range m.Checks {
		if ch.Type == "http" || ch.Type == "https" {
			if ch.Port == l.Port && ch.Type == l.Scheme {
				return l
			}
			c := *l
			c.Scheme, c.Port = ch.Type, ch.Port
			return &c
		}
	}
	return l
}

var loadSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "port"}, {Name: "path"}, {Name: "metric"}, {Name: "labels"},
		{Name: "field"}, {Name: "interval"}, {Name: "timeout"}, {Name: "scheme"},
	},
}

// loadSignal compiles a pool's load block: every attribute it sets, the others from the
// pool's first http or https check (port, path, scheme, timing), else from the defaults.
func (c *compilation) loadSignal(p *Pool, blk *hcl.Block) *LoadSignal {
	n0 := len(c.diags)
	content, diags := bodyContent(blk.Body, loadSchema)
	c.add(diags)
	at := content.Attributes
	l := &LoadSignal{Type: "prometheus", Scheme: "http", Port: 80, Path: "/",
		Interval: api.DefaultCheckInterval, Timeout: api.DefaultCheckTimeout}
	for _, ch := range p.Checks {
		if ch.Type == "http" || ch.Type == "https" {
			l.Scheme, l.Port, l.Path, l.Interval, l.Timeout, l.Insecure = ch.Type, ch.Port, ch.Path, ch.Interval, ch.Timeout, ch.Insecure
			l.fromCheck = at["port"] == nil && at["scheme"] == nil
			break
		}
	}
	if a := at["type"]; a != nil {
		v, ok := c.str(a)
		if !ok || !c.oneOf(a, v, "prometheus", "json", "number") {
			return nil // what else the block needs depends on the type
		}
		l.Type = v
	}
	if a := at["scheme"]; a != nil {
		if v, ok := c.str(a); ok && c.oneOf(a, v, "http", "https") {
			l.Scheme = v
		}
	}
	if l.Type == "prometheus" {
		l.Path = "/metrics"
	}
	if a := at["port"]; a != nil {
		if v, ok := c.integer(a, 1, 65535); ok {
			l.Port = int(v)
		}
	}
	if a := at["path"]; a != nil {
		if v, ok := c.str(a); ok {
			if !strings.HasPrefix(v, "/") {
				c.errf(a.Expr.Range(), "Invalid path", "The path must start with \"/\", not %q.", v)
			}
			l.Path = v
		}
	}
	c.loadTiming(l, blk, at)
	c.loadSelector(l, blk, at)
	if len(c.diags) > n0 {
		return nil
	}
	return l
}

// loadTiming decodes interval and timeout; the timeout must be shorter than the interval,
// or readings would overlap.
func (c *compilation) loadTiming(l *LoadSignal, blk *hcl.Block, at hcl.Attributes) {
	if a := at["interval"]; a != nil {
		l.Interval, _ = c.duration(a)
	}
	if a := at["timeout"]; a != nil {
		l.Timeout, _ = c.duration(a)
	}
	if l.Timeout >= l.Interval && l.Interval > 0 && l.Timeout > 0 {
		rng := blk.DefRange
		if a := at["timeout"]; a != nil {
			rng = a.Expr.Range()
		}
		c.errf(rng, "Invalid timeout", "The load timeout (%s) must be shorter than its interval (%s), or readings would overlap.", l.Timeout, l.Interval)
	}
}

// loadSelector decodes what picks the number out of the body: metric and labels for
// prometheus, field for json, nothing for number. An attribute of another type is an
// error, as for checks.
func (c *compilation) loadSelector(l *LoadSignal, blk *hcl.Block, at hcl.Attributes) {
	allowed := map[string][]string{"prometheus": {"metric", "labels"}, "json": {"field"}, "number": nil}[l.Type]
	for _, n := range []string{"metric", "labels", "field"} {
		a := at[n]
		if a == nil {
			continue
		}
		ok := false
		for _, x := range allowed {
			ok = ok || x == n
		}
		if !ok {
			c.errf(a.NameRange, "Unsupported argument", "The %q argument does not apply to a %s load signal.", n, l.Type)
		}
	}
	switch l.Type {
	case "prometheus":
		if a := at["metric"]; a == nil {
			c.errf(blk.DefRange, "Missing load metric", "A prometheus load signal needs the metric to read (metric = \"active_connections\").")
		} else if v, ok := c.str(a); ok {
			if !validMetricName(v) {
				c.errf(a.Expr.Range(), "Invalid metric", "%q is not a Prometheus metric name.", v)
			}
			l.Metric = v
		}
		if a := at["labels"]; a != nil {
			l.Labels, _ = c.strMap(a)
		}
	case "json":
		if a := at["field"]; a == nil {
			c.errf(blk.DefRange, "Missing load field", "A json load signal needs the dotted path of the number to read (field = \"connections.active\").")
		} else if v, ok := c.str(a); ok {
			if !api.ValidLoadField(v) {
				c.errf(a.Expr.Range(), "Invalid field", "%q is not a dotted path such as \"a.b\".", v)
			}
			l.Field = v
		}
	}
}

// validMetricName is the Prometheus metric name syntax (api.ValidMetricName).
func validMetricName(s string) bool { return api.ValidMetricName(s) }

// checkLeastConn refuses a service that balances some pool by least_connections when the
// pool has no load signal: it could never do what it says. The error is at the pool's
// name in the service's pools list (or the fallback attribute), where the operator
// chose the pairing.
func (c *compilation) checkLeastConn(s *Service, at hcl.Attributes) {
	rngOf := map[*Pool]hcl.Range{}
	if pa := at["pools"]; pa != nil {
		if names, rngs, ok := c.strList(pa); ok {
			for i, n := range names {
				if p := c.snap.PoolByName[n]; p != nil && i < len(rngs) {
					rngOf[p] = rngs[i]
				}
			}
		}
	}
	if fa := at["fallback"]; fa != nil && s.fallback != nil {
		rngOf[s.fallback.pool] = fa.Expr.Range()
	}
	check := func(e *entry, pools []*Pool) {
		if e.method != LeastConnections {
			return
		}
		for _, p := range pools {
			if p.Load != nil {
				continue
			}
			rng, ok := rngOf[p]
			if !ok {
				continue
			}
			c.errf(rng, "Pool without load signal", "Service %q balances pool %q by least_connections, but the pool (%s) has no load block, so glbdns would never learn its members' connections; add a load block to the pool%s.",
				s.Name, p.Name, posString(*c.poolRng[p.Name]), methodHint(s, p))
		}
	}
	if s.Steering == SteerNone {
		check(&s.entries[0], s.Pools)
	} else {
		for i := range s.entries {
			check(&s.entries[i], []*Pool{s.entries[i].pool})
		}
	}
	if s.fallback != nil {
		check(s.fallback, []*Pool{s.fallback.pool})
	}
}

// methodHint says where else the method could be changed.
func methodHint(s *Service, p *Pool) string {
	switch {
	case s.Steering == SteerNone:
		return " or choose another policy"
	case p.HasMethod && p.Method == LeastConnections:
		return " or set another method in it"
	}
	return fmt.Sprintf(" or set another method for it (method = %q in the pool)", "weighted")
}
