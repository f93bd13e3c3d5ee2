package policy

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"
	"github.com/zclconf/go-cty/cty"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/balance"
)

var poolSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "region"}, {Name: "location"}, {Name: "bias"}, {Name: "method"}, {Name: "min_healthy"},
		{Name: "unknown_is"}, {Name: "port"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "member", LabelNames: []string{"name"}},
		{Type: "check", LabelNames: []string{"name"}},
		{Type: "load"},
		{Type: "cold_start"},
	},
}

var memberSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "address"}, {Name: "host"}, {Name: "weight"}, {Name: "port"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "check", LabelNames: []string{"name"}}},
}

// checkAttrs lists every check attribute; which ones apply depends on the check type
// (api.CheckAttrs, which the Terraform provider checks at plan time too).
var checkAttrs = api.CheckAttrs

var checkSchema = func() *hcl.BodySchema {
	seen := map[string]bool{}
	s := &hcl.BodySchema{}
	for _, t := range []string{"", "http", "https", "tcp", "dns"} {
		for _, n := range checkAttrs[t] {
			if !seen[n] {
				seen[n] = true
				s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
			}
		}
	}
	return s
}()

// maxWeight bounds weights so that the sum over any service fits easily in 64 bits.
const maxWeight = 1 << 24

// defaultStatus is api.DefaultExpectStatus, any success or redirect.
var defaultStatus = func() StatusRange {
	lo, hi, err := parseStatus(api.DefaultExpectStatus)
	if err != nil {
		panic(err) // a constant of ours
	}
	return StatusRange{int(lo), int(hi)}
}()

// parseStatus reads an expect_status string (api.ParseStatus).
func parseStatus(s string) (lo, hi int64, err error) { return api.ParseStatus(s) }

// rawCheck is a check block's attributes, kept undecoded so that a member's override can
// be laid over its pool's check before compiling.
type rawCheck struct {
	name  string
	attrs hcl.Attributes
	rng   hcl.Range // the block header the check is reported at
}

func (c *compilation) rawCheck(blk *hcl.Block) *rawCheck {
	content, diags := bodyContent(blk.Body, checkSchema)
	c.add(diags)
	return &rawCheck{name: blk.Labels[0], attrs: content.Attributes, rng: blk.DefRange}
}

func (c *compilation) pool(blk *hcl.Block) {
	name := blk.Labels[0]
	if p := c.snap.PoolByName[name]; p != nil {
		c.errf(blk.LabelRanges[0], "Duplicate pool", "Pool %q is already declared at %s.", name, posString(*c.poolRng[name]))
		return
	}
	if name == "" || strings.Contains(name, "/") {
		c.errf(blk.LabelRanges[0], "Invalid pool name", "A pool name must be non-empty and must not contain \"/\".")
		return
	}
	content, diags := bodyContent(blk.Body, poolSchema)
	c.add(diags)
	p := &Pool{Name: name, File: blk.DefRange.Filename, MinHealthy: 1}
	if a := content.Attributes["region"]; a != nil {
		p.Region, _ = c.str(a)
	}
	c.steeringAttrs(p, content.Attributes)
	if a := content.Attributes["port"]; a != nil {
		if v, ok := c.integer(a, 1, 65535); ok {
			p.Port = uint16(v)
		}
	}
	if a := content.Attributes["unknown_is"]; a != nil {
		if v, ok := c.str(a); ok && c.oneOf(a, v, "up", "down") {
			p.UnknownIs = map[string]UnknownIs{"up": UnknownUp, "down": UnknownDown}[v]
		}
	}
	var raws []*rawCheck
	checkRng := map[string]hcl.Range{}
	for _, cb := range content.Blocks.OfType("check") {
		if prev, dup := checkRng[cb.Labels[0]]; dup {
			c.errf(cb.LabelRanges[0], "Duplicate check", "Pool %q already has a check %q at %s.", name, cb.Labels[0], posString(prev))
			continue
		}
		checkRng[cb.Labels[0]] = cb.LabelRanges[0]
		rc := c.rawCheck(cb)
		raws = append(raws, rc)
		if ch := c.check(rc); ch != nil {
			p.Checks = append(p.Checks, ch)
		}
	}
	for i, lb := range content.Blocks.OfType("load") {
		if i > 0 {
			c.errf(lb.DefRange, "Duplicate load block", "Pool %q already has a load block; a pool has one load signal.", name)
			continue
		}
		p.Load = c.loadSignal(p, lb)
	}
	memberRng := map[string]hcl.Range{}
	for _, mb := range content.Blocks.OfType("member") {
		mname := mb.Labels[0]
		if prev, dup := memberRng[mname]; dup {
			c.errf(mb.LabelRanges[0], "Duplicate member", "Pool %q already has a member %q at %s.", name, mname, posString(prev))
			continue
		}
		memberRng[mname] = mb.LabelRanges[0]
		if m := c.member(p, mb, raws); m != nil {
			m.Load = p.Load.forMember(m)
			m.Index = len(c.snap.Members)
			c.snap.Members = append(c.snap.Members, m)
			p.Members = append(p.Members, m)
		}
	}
	for i, cb := range content.Blocks.OfType("cold_start") {
		if i > 0 {
			c.errf(cb.DefRange, "Duplicate cold_start block", "Pool %q already has a cold_start block.", name)
			continue
		}
		p.ColdStart = c.coldStart(p, cb)
	}
	if a := content.Attributes["min_healthy"]; a != nil && p.MinHealthyPercent == 0 && p.MinHealthy > len(p.Members) {
		c.errf(a.Expr.Range(), "Invalid min_healthy", "Pool %q has %d members, so it could never have %d usable ones and would never count as up.", name, len(p.Members), p.MinHealthy)
	}
	c.snap.Pools = append(c.snap.Pools, p)
	c.snap.PoolByName[name] = p
	c.poolRng[name] = &blk.LabelRanges[0]
}

func (c *compilation) member(p *Pool, blk *hcl.Block, poolChecks []*rawCheck) *Member {
	content, diags := bodyContent(blk.Body, memberSchema)
	c.add(diags)
	m := &Member{Pool: p.Name, Name: blk.Labels[0], Weight: api.DefaultWeight, Port: p.Port}
	if m.Name == "" || strings.Contains(m.Name, "/") {
		c.errf(blk.LabelRanges[0], "Invalid member name", "A member name must be non-empty and must not contain \"/\".")
		return nil
	}
	m.idHash = balance.StringHash(m.ID())
	aa, ha := content.Attributes["address"], content.Attributes["host"]
	switch {
	case aa != nil && ha != nil:
		c.errf(ha.NameRange, "Conflicting member attributes", "Member %q sets both address and host; a member is either an address (A/AAAA) or a host name (CNAME).", m.Name)
	case aa == nil && ha == nil:
		c.errf(blk.DefRange, "Missing member address", "Member %q needs an address or a host.", m.Name)
	case aa != nil:
		if s, ok := c.str(aa); ok {
			if addr, ok := api.ParseMemberAddress(s); !ok {
				c.errf(aa.Expr.Range(), "Invalid address", "%q is not an IPv4 or IPv6 address.", s)
			} else {
				m.Addr = addr
			}
		}
	default:
		if s, ok := c.str(ha); ok {
			h := fqdn(s)
			if !api.ValidMemberHost(s) {
				c.errf(ha.Expr.Range(), "Invalid host", "%q is not a valid host name.", s)
			} else {
				m.Host = h
			}
		}
	}
	if a := content.Attributes["weight"]; a != nil {
		if w, ok := c.integer(a, 0, maxWeight); ok {
			m.Weight = uint32(w)
		}
	}
	if a := content.Attributes["port"]; a != nil {
		if v, ok := c.integer(a, 1, 65535); ok {
			m.Port = uint16(v)
		}
	}
	// The member's checks: its pool's, each overlaid with the member's block of the same
	// name; a member check with a new name applies to this member only.
	overrides := map[string]*rawCheck{}
	var extra []*rawCheck
	for _, cb := range content.Blocks.OfType("check") {
		if _, dup := overrides[cb.Labels[0]]; dup {
			c.errf(cb.LabelRanges[0], "Duplicate check", "Member %q already has a check %q.", m.Name, cb.Labels[0])
			continue
		}
		rc := c.rawCheck(cb)
		overrides[rc.name] = rc
		known := false
		for _, pc := range poolChecks {
			known = known || pc.name == rc.name
		}
		if !known {
			extra = append(extra, rc)
		}
	}
	for _, pc := range poolChecks {
		rc := pc
		if o := overrides[pc.name]; o != nil {
			merged := &rawCheck{name: pc.name, attrs: hcl.Attributes{}, rng: o.rng}
			for k, v := range pc.attrs {
				merged.attrs[k] = v
			}
			for k, v := range o.attrs {
				merged.attrs[k] = v
			}
			rc = merged
		} else if ch := c.findCheck(p, pc.name); ch != nil {
			m.Checks = append(m.Checks, ch) // shared, immutable
			continue
		}
		if ch := c.check(rc); ch != nil {
			m.Checks = append(m.Checks, ch)
		}
	}
	for _, rc := range extra {
		if ch := c.check(rc); ch != nil {
			m.Checks = append(m.Checks, ch)
		}
	}
	if m.Addr.IsValid() == (m.Host != "") {
		return nil // error reported
	}
	return m
}

func (c *compilation) findCheck(p *Pool, name string) *Check {
	for _, ch := range p.Checks {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

// check compiles and validates one (possibly merged) check; nil if it has errors.
func (c *compilation) check(rc *rawCheck) *Check {
	n0 := len(c.diags)
	ch := &Check{Name: rc.name, Interval: api.DefaultCheckInterval, Timeout: api.DefaultCheckTimeout, Rise: api.DefaultCheckRise, Fall: api.DefaultCheckFall}
	if ch.Type = c.checkType(rc); ch.Type == "" {
		return nil
	}
	allowed := c.checkAllowed(rc, ch.Type)
	c.checkPort(ch, rc)
	c.checkTiming(ch, rc)
	c.checkFields(ch, rc.attrs, allowed)
	switch ch.Type {
	case "http", "https":
		c.httpCheck(ch, rc.attrs)
	case "dns":
		c.dnsCheck(ch, rc)
	}
	if len(c.diags) > n0 {
		return nil
	}
	return ch
}

// checkType is the check's type: its type attribute, else its name when that is a type;
// "" (reported) when neither says.
func (c *compilation) checkType(rc *rawCheck) string {
	typ := ""
	switch rc.name {
	case "http", "https", "tcp", "dns":
		typ = rc.name
	}
	if a := rc.attrs["type"]; a != nil {
		if s, ok := c.str(a); ok && c.oneOf(a, s, "http", "https", "tcp", "dns") {
			typ = s
		}
	} else if typ == "" {
		c.errf(rc.rng, "Missing check type", "Check %q needs a type (\"http\", \"https\", \"tcp\" or \"dns\"); it defaults to the check's name only when that is one of these.", rc.name)
	}
	return typ
}

// checkAllowed returns the attributes a check of type typ may set, and reports the
// others: "path" on a tcp check is a mistake the operator wants to hear about, not an
// attribute to ignore silently.
func (c *compilation) checkAllowed(rc *rawCheck, typ string) map[string]bool {
	allowed := map[string]bool{}
	for _, n := range checkAttrs[""] {
		allowed[n] = true
	}
	for _, n := range checkAttrs[typ] {
		allowed[n] = true
	}
	for name, a := range rc.attrs {
		if !allowed[name] {
			c.errf(a.NameRange, "Unsupported argument", "The %q argument does not apply to a %s check.", name, typ)
		}
	}
	return allowed
}

// checkPort sets the port: the attribute, else the protocol's well-known port; a tcp
// check has none and must set it.
func (c *compilation) checkPort(ch *Check, rc *rawCheck) {
	switch ch.Type {
	case "http":
		ch.Port = 80
	case "https":
		ch.Port = 443
	case "dns":
		ch.Port = 53
	}
	if a := rc.attrs["port"]; a != nil {
		if v, ok := c.integer(a, 1, 65535); ok {
			ch.Port = int(v)
		}
	} else if ch.Type == "tcp" {
		c.errf(rc.rng, "Missing check port", "A tcp check needs a port.")
	}
}

// checkTiming decodes interval, timeout, rise and fall; the timeout must be shorter than
// the interval.
func (c *compilation) checkTiming(ch *Check, rc *rawCheck) {
	at := rc.attrs
	if a := at["interval"]; a != nil {
		ch.Interval, _ = c.duration(a)
	}
	if a := at["timeout"]; a != nil {
		ch.Timeout, _ = c.duration(a)
	}
	if ch.Interval > 0 && ch.Timeout > 0 && ch.Timeout >= ch.Interval {
		rng := rc.rng
		if a := at["timeout"]; a != nil {
			rng = a.Expr.Range()
		} else if a := at["interval"]; a != nil {
			rng = a.Expr.Range()
		}
		c.errf(rng, "Invalid timeout", "The timeout (%s) must be shorter than the interval (%s), or probes would overlap.", ch.Timeout, ch.Interval)
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"rise", &ch.Rise}, {"fall", &ch.Fall}} {
		if a := at[f.name]; a != nil {
			if v, ok := c.integer(a, 1, 1000); ok {
				*f.dst = int(v)
			}
		}
	}
}

// checkFields decodes the protocol attributes as written (strings, booleans, headers),
// those the check's type allows.
func (c *compilation) checkFields(ch *Check, at hcl.Attributes, allowed map[string]bool) {
	strs := []struct {
		name string
		dst  *string
	}{
		{"method", &ch.Method}, {"path", &ch.Path}, {"host", &ch.Host}, {"expect_body", &ch.ExpectBody},
		{"expect_body_regexp", &ch.ExpectBodyRegexp}, {"server_name", &ch.ServerName},
		{"send", &ch.Send}, {"expect", &ch.Expect}, {"qname", &ch.QName}, {"qtype", &ch.QType},
		{"expect_rcode", &ch.ExpectRcode}, {"expect_answer", &ch.ExpectAnswer},
	}
	for _, f := range strs {
		if a := at[f.name]; a != nil && allowed[f.name] {
			*f.dst, _ = c.str(a)
		}
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"insecure", &ch.Insecure}, {"follow_redirects", &ch.FollowRedirects}} {
		if a := at[f.name]; a != nil && allowed[f.name] {
			*f.dst, _ = c.boolean(a)
		}
	}
	if a := at["headers"]; a != nil && allowed["headers"] {
		ch.Headers, _ = c.strMap(a)
	}
}

// httpCheck defaults and validates an http or https check's request and expectations.
func (c *compilation) httpCheck(ch *Check, at hcl.Attributes) {
	if ch.Method == "" {
		ch.Method = api.DefaultHTTPMethod
	}
	ch.Method = strings.ToUpper(ch.Method)
	if ch.Path == "" {
		ch.Path = api.DefaultHTTPPath
	} else if !strings.HasPrefix(ch.Path, "/") {
		c.errf(at["path"].Expr.Range(), "Invalid path", "The path must start with \"/\", not %q.", ch.Path)
	}
	if a := at["expect_body_regexp"]; a != nil && ch.ExpectBodyRegexp != "" {
		if _, err := regexp.Compile(ch.ExpectBodyRegexp); err != nil {
			c.errf(a.Expr.Range(), "Invalid regular expression", "%v.", err)
		}
	}
	ch.ExpectStatus = []StatusRange{defaultStatus}
	if a := at["expect_status"]; a != nil {
		ch.ExpectStatus = c.statusRanges(a)
	}
}

// dnsCheck defaults and validates a dns check's question and expected rcode.
func (c *compilation) dnsCheck(ch *Check, rc *rawCheck) {
	at := rc.attrs
	if ch.QName == "" {
		c.errf(rc.rng, "Missing check qname", "A dns check needs a qname to ask.")
	} else if ch.QName = fqdn(ch.QName); !validName(ch.QName) {
		c.errf(at["qname"].Expr.Range(), "Invalid qname", "%q is not a valid domain name.", ch.QName)
	}
	if ch.QType == "" {
		ch.QType = "A"
	}
	ch.QType = strings.ToUpper(ch.QType)
	if _, ok := dns.StringToType[ch.QType]; !ok {
		c.errf(at["qtype"].Expr.Range(), "Invalid qtype", "%q is not a DNS record type.", ch.QType)
	}
	if ch.ExpectRcode == "" {
		ch.ExpectRcode = "NOERROR"
	}
	ch.ExpectRcode = strings.ToUpper(ch.ExpectRcode)
	if _, ok := dns.StringToRcode[ch.ExpectRcode]; !ok {
		c.errf(at["expect_rcode"].Expr.Range(), "Invalid expect_rcode", "%q is not a DNS rcode.", ch.ExpectRcode)
	}
}

// statusRanges decodes expect_status: numbers (301) and strings ("200-299", "404").
func (c *compilation) statusRanges(a *hcl.Attribute) []StatusRange {
	items, ok := c.list(a)
	if !ok {
		return nil
	}
	var out []StatusRange
	for _, it := range items {
		var lo, hi int64
		var err error
		switch {
		case it.v.IsNull():
			err = strconv.ErrSyntax
		case it.v.Type() == cty.Number:
			f := it.v.AsBigFloat()
			if !f.IsInt() {
				err = strconv.ErrSyntax
			}
			lo, _ = f.Int64()
			hi = lo
		case it.v.Type() == cty.String:
			lo, hi, err = parseStatus(it.v.AsString())
		default:
			err = strconv.ErrSyntax
		}
		if err != nil || !api.ValidStatusRange(lo, hi) {
			c.errf(it.rng, "Invalid expect_status", "Every expect_status element must be an HTTP status (100-599) or a range \"lo-hi\".")
			continue
		}
		out = append(out, StatusRange{Lo: int(lo), Hi: int(hi)})
	}
	return out
}
