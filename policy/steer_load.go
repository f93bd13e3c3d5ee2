package policy

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/balance"
)

// This file compiles the steering half of the language: the geoip block, the pools'
// location/bias/method/min_healthy, the failover, geo and nearest service policies, and
// the entries every service's selection walks. Everything a query needs is precomputed
// here (rule tables indexed by country code, an ASN map, a prefix table sorted longest
// first, pool orders as index slices) so that Select only indexes.

var geoipSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "database"}, {Name: "asn_database"}},
}

var geoSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default_pools"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "rule"}},
}

var ruleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "countries"}, {Name: "continents"}, {Name: "asns"}, {Name: "networks"}, {Name: "pools", Required: true},
	},
}

// maxSteerPools bounds the pools of a steering service so that a pool order fits a
// fixed-size array on the stack (nearest sorts one per query without allocating).
const maxSteerPools = api.MaxSteerPools

// maxBias is half the Earth's circumference in km: a larger bias than any distance
// could only be a unit mistake.
const maxBias = 20000

// continents are MaxMind's continent codes, the ones geoip.Info.Continent holds.
var continents = map[string]string{"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
	"NA": "North America", "OC": "Oceania", "SA": "South America"}

// geoip decodes the top-level geoip block. Only the paths are recorded: the server opens
// and watches the databases, so that their updates need no policy reload.
func (c *compilation) geoip(blk *hcl.Block, dir string) {
	if c.geoipRng != nil {
		c.errf(blk.DefRange, "Duplicate geoip block", "A policy has at most one geoip block; one is already declared at %s.", posString(*c.geoipRng))
		return
	}
	rng := blk.DefRange
	c.geoipRng = &rng
	content, diags := bodyContent(blk.Body, geoipSchema)
	c.add(diags)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if a := content.Attributes["database"]; a != nil {
		if s, ok := c.str(a); ok {
			c.snap.geoCity = abs(s)
		}
	}
	if a := content.Attributes["asn_database"]; a != nil {
		if s, ok := c.str(a); ok {
			c.snap.geoASN = abs(s)
		}
	}
	if content.Attributes["database"] == nil && content.Attributes["asn_database"] == nil {
		c.errf(blk.DefRange, "Empty geoip block", "The geoip block needs a database (GeoIP2/GeoLite2 City or Country) or an asn_database (GeoLite2 ASN), or both.")
	}
}

// number decodes a number in [lo, hi].
func (d *decoder) number(a *hcl.Attribute, v cty.Value, rng hcl.Range, what string, lo, hi float64) (float64, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		d.errf(rng, "Invalid "+what, "The %s must be a number.", what)
		return 0, false
	}
	f, _ := n.AsBigFloat().Float64()
	if math.IsNaN(f) || f < lo || f > hi {
		d.errf(rng, "Invalid "+what, "The %s must be between %s and %s, not %s.", what, ftoa(lo), ftoa(hi), ftoa(f))
		return 0, false
	}
	return f, true
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// steeringAttrs decodes the pool attributes that steering services use.
func (c *compilation) steeringAttrs(p *Pool, at hcl.Attributes) {
	if a := at["location"]; a != nil {
		if items, ok := c.list(a); ok {
			if len(items) != 2 {
				c.errf(a.Expr.Range(), "Invalid location", "The location must be [latitude, longitude] in degrees, two numbers.")
			} else {
				lat, ok1 := c.number(a, items[0].v, items[0].rng, "latitude", -90, 90)
				lon, ok2 := c.number(a, items[1].v, items[1].rng, "longitude", -180, 180)
				p.Lat, p.Lon, p.HasLocation = lat, lon, ok1 && ok2
			}
		}
	}
	if a := at["bias"]; a != nil {
		if v, ok := c.value(a); ok {
			p.Bias, _ = c.number(a, v, a.Expr.Range(), "bias", -maxBias, maxBias)
		}
		if at["location"] == nil {
			c.errf(a.NameRange, "Bias without location", "Pool %q sets a bias, which adjusts the distance to its location, but has no location.", p.Name)
		}
	}
	if a := at["method"]; a != nil {
		if v, ok := c.str(a); ok && c.oneOf(a, v, "round_robin", "weighted", "client_subnet_hash", "least_connections") {
			p.Method, p.HasMethod = methodNames[v], true
		}
	}
	if a := at["min_healthy"]; a != nil {
		v, ok := c.value(a)
		if !ok {
			return
		}
		if v.Type() == cty.String {
			s := v.AsString()
			pct, isPct := strings.CutSuffix(strings.TrimSpace(s), "%")
			n, err := strconv.Atoi(strings.TrimSpace(pct))
			if !isPct || err != nil || n < 1 || n > 100 {
				c.errf(a.Expr.Range(), "Invalid min_healthy", "The min_healthy must be a whole number of members (1 or more) or a percentage from \"1%%\" to \"100%%\", not %q.", s)
				return
			}
			p.MinHealthyPercent = n
			return
		}
		if n, ok := c.integer(a, 1, maxWeight); ok {
			p.MinHealthy = int(n)
		}
	}
}

// Steering policies, by name in the service's policy attribute.
var steeringNames = map[string]Steering{"failover": SteerFailover, "geo": SteerGeo, "nearest": SteerNearest}

// String returns the steering policy's name ("" for none).
func (s Steering) String() string {
	for n, v := range steeringNames {
		if v == s {
			return n
		}
	}
	return ""
}

// entry is what the selection walk steps through, compiled for one service: candidate
// members per family, how many must be usable for the entry to count as up, and the
// method (with its own round-robin cursor) that chooses among them. A steering service
// has one per pool; a plain service has one holding all its pools' members, up while
// one is usable; the fallback pool is one too, with the service's method.
type entry struct {
	pool   *Pool // nil for a plain service's entry
	method Method
	cands  [numFamilies][]*Member
	need   [numFamilies]int
	rr     balance.RoundRobin[*Member]
}

// ascending holds 0, 1, ... maxSteerPools-1: a service's own order of its entries is its
// first len(entries). Shared, never modified.
var ascending = func() (a [maxSteerPools]uint8) {
	for i := range a {
		a[i] = uint8(i)
	}
	return a
}()

// poolOrder is the service's own order of its entries: the order of its pools.
func (s *Service) poolOrder() []uint8 { return ascending[:len(s.entries)] }

// needOf is how many of each family's members must be usable for an entry to count as
// up: minHealthy of them, or percent of them rounded up when percent > 0, at least 1
// and at most all (0 for a family without members, which the walk skips).
func needOf(cands *[numFamilies][]*Member, minHealthy, percent int) [numFamilies]int {
	var need [numFamilies]int
	for f, c := range cands {
		switch n := len(c); {
		case n == 0:
		case percent > 0:
			need[f] = max(1, (n*percent+99)/100)
		default:
			need[f] = min(max(minHealthy, 1), n)
		}
	}
	return need
}

// compileSteering builds the entries a service's walk goes through, and for a steering
// service its ordering: the geo rule tables or what nearest needs. content is the
// service block's content (for the geo block), poolsAttr its pools attribute.
func (c *compilation) compileSteering(s *Service, cands [numFamilies][]*Member, content *hcl.BodyContent, poolsAttr *hcl.Attribute, labelRng hcl.Range) {
	name := s.Name
	geoBlocks := content.Blocks.OfType("geo")
	if s.Steering != SteerGeo {
		for _, b := range geoBlocks {
			c.errf(b.DefRange, "Unexpected geo block", "Service %q has a geo block but its policy is not \"geo\".", name)
		}
	}
	if s.Steering == SteerNone {
		s.plain[0] = entry{method: s.Method, cands: cands, need: needOf(&cands, 1, 0)}
		s.entries = s.plain[:]
		return
	}
	if len(s.Pools) > maxSteerPools {
		c.errf(poolsAttr.Expr.Range(), "Too many pools", "A %s service steers between at most %d pools; %q lists %d.", s.Steering, maxSteerPools, name, len(s.Pools))
		return
	}
	index := map[*Pool]uint8{}
	s.entries = make([]entry, len(s.Pools))
	for i, p := range s.Pools {
		index[p] = uint8(i)
		e := &s.entries[i]
		e.pool, e.method, e.cands = p, s.Method, families([]*Pool{p})
		if p.HasMethod {
			e.method = p.Method
		}
		e.need = needOf(&e.cands, p.MinHealthy, p.MinHealthyPercent)
	}
	needsCity := false
	switch s.Steering {
	case SteerNearest:
		needsCity = true
		located := false
		for _, p := range s.Pools {
			located = located || p.HasLocation
		}
		if !located && len(s.Pools) > 0 {
			c.errf(poolsAttr.Expr.Range(), "No pool location", "Service %q orders its pools by distance (policy \"nearest\"), but none of its pools has a location.", name)
		}
	case SteerGeo:
		if len(geoBlocks) == 0 {
			c.errf(labelRng, "Missing geo block", "Service %q has policy \"geo\" but no geo block with rules.", name)
			return
		}
		for _, b := range geoBlocks[1:] {
			c.errf(b.DefRange, "Duplicate geo block", "Service %q has more than one geo block.", name)
		}
		s.geo = c.geoRules(s, geoBlocks[0], index)
		needsCity = s.geo.needCity
		if s.geo.needASN && c.snap.geoASN == "" && c.geoipRng != nil {
			c.errf(s.geo.asnRng, "Missing ASN database", "Service %q has rules on ASNs, but the geoip block names no asn_database.", name)
		}
	}
	if s.Steering == SteerFailover {
		return
	}
	s.NeedsGeo = true
	s.GeoCity = needsCity
	s.GeoASN = s.geo != nil && s.geo.needASN
	switch {
	case c.geoipRng == nil:
		c.errf(labelRng, "Missing geoip block", "Service %q has policy %q, which needs the client's location from GeoIP, but the policy has no geoip block.", name, s.Steering.String())
	case needsCity && c.snap.geoCity == "":
		c.errf(labelRng, "Missing GeoIP database", "Service %q needs a City database (policy %q), but the geoip block names no database.", name, s.Steering.String())
	}
}

// geoTable is a geo service's rules compiled for lookup. Rule i's pool order is
// orders[i]; orders[len(rules)] is the default order. Tables hold rule index + 1 (0: no
// rule).
type geoTable struct {
	rules     []geoRule
	orders    [][]uint8
	country   [26 * 26]uint16
	continent [26 * 26]uint16
	asn       map[uint32]uint16
	nets      []netRule // longest prefix first
	needCity  bool      // some rule matches countries or continents
	needASN   bool      // some rule matches ASNs
	asnRng    hcl.Range
	defaults  []string // default_pools as written (nil when absent)
}

// geoRule is one rule, as Explain describes it.
type geoRule struct {
	pos   string // file:line:col of the rule block
	pools []string
	// The match lists as written (nil when absent), for GeoRules.
	countries, continents, networks []string
	asns                            []uint32
}

// GeoRule is one rule of a geo service's geo block, as written (networks in canonical
// form). A nil list is an absent attribute.
type GeoRule struct {
	Networks   []string
	ASNs       []uint32
	Countries  []string
	Continents []string
	Pools      []string
}

// GeoRules returns the rules of a geo service in order, and its default_pools (nil when
// the geo block has none: the service's pools order applies). Other services have none.
func (s *Service) GeoRules() (rules []GeoRule, defaultPools []string) {
	if s.geo == nil {
		return nil, nil
	}
	for _, r := range s.geo.rules {
		rules = append(rules, GeoRule{Networks: r.networks, ASNs: r.asns, Countries: r.countries,
			Continents: r.continents, Pools: r.pools})
	}
	return rules, s.geo.defaults
}

type netRule struct {
	p    netip.Prefix
	rule uint16
}

// code2 indexes a two-letter upper-case code into a 26×26 table; -1 for anything else.
func code2(s string) int {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return -1
	}
	return int(s[0]-'A')*26 + int(s[1]-'A')
}

// geoRules compiles a geo service's geo block into its lookup tables. With errors the
// service is never inserted: the table is then only checked.
func (c *compilation) geoRules(s *Service, blk *hcl.Block, index map[*Pool]uint8) *geoTable {
	content, diags := bodyContent(blk.Body, geoSchema)
	c.add(diags)
	b := &geoBuilder{c: c, s: s, index: index, g: &geoTable{asn: map[uint32]uint16{}},
		countryRng: map[string]hcl.Range{}, continentRng: map[string]hcl.Range{},
		asnRng: map[uint32]hcl.Range{}, netRng: map[netip.Prefix]hcl.Range{}}
	g := b.g
	for _, rb := range content.Blocks.OfType("rule") {
		g.rules = append(g.rules, b.rule(rb))
	}
	if a := content.Attributes["default_pools"]; a != nil {
		o := b.order(a)
		g.defaults = b.names([]string{}, o)
		g.orders = append(g.orders, o)
	} else {
		g.orders = append(g.orders, s.poolOrder())
	}
	if len(g.rules) == 0 {
		c.errf(blk.DefRange, "Missing rules", "The geo block of service %q has no rule; use policy \"failover\" for one order for every client.", s.Name)
	}
	// Longest prefix first, so the first containing prefix is the longest match.
	sort.SliceStable(g.nets, func(i, j int) bool { return g.nets[i].p.Bits() > g.nets[j].p.Bits() })
	return g
}

// geoBuilder is the state of compiling one geo block: the table being filled, and where
// each country, continent, ASN and network was first matched, for "already matched by
// the rule at" details (a client can match only one rule of each kind).
type geoBuilder struct {
	c            *compilation
	s            *Service
	index        map[*Pool]uint8 // the service's pools, to their index in s.entries
	g            *geoTable
	countryRng   map[string]hcl.Range
	continentRng map[string]hcl.Range
	asnRng       map[uint32]hcl.Range
	netRng       map[netip.Prefix]hcl.Range
}

// rule compiles one rule block into the tables, as rule number len(g.rules)+1.
func (b *geoBuilder) rule(rb *hcl.Block) geoRule {
	rc, diags := bodyContent(rb.Body, ruleSchema)
	b.c.add(diags)
	ri := uint16(len(b.g.rules) + 1)
	at := rc.Attributes
	rule := geoRule{pos: posString(rb.DefRange)}
	var o []uint8
	if a := at["pools"]; a != nil {
		o = b.order(a)
		rule.pools = b.names(nil, o)
	}
	b.g.orders = append(b.g.orders, o)
	if at["countries"] == nil && at["continents"] == nil && at["asns"] == nil && at["networks"] == nil {
		b.c.errf(rb.DefRange, "Empty rule", "A geo rule needs at least one of countries, continents, asns or networks.")
	}
	if a := at["countries"]; a != nil {
		rule.countries = b.countries(a, ri)
	}
	if a := at["continents"]; a != nil {
		rule.continents = b.continents(a, ri)
	}
	if a := at["asns"]; a != nil {
		rule.asns = b.asns(a, ri)
	}
	if a := at["networks"]; a != nil {
		rule.networks = b.networks(a, ri)
	}
	return rule
}

// order resolves the pools list of a rule, or default_pools, to indexes into s.entries.
func (b *geoBuilder) order(a *hcl.Attribute) []uint8 {
	names, rngs, _ := b.c.strList(a)
	var out []uint8
	seen := map[string]bool{}
	for i, n := range names {
		p := b.c.snap.PoolByName[n]
		idx, inService := b.index[p]
		switch {
		case p == nil:
			b.c.errf(rngs[i], "Unknown pool", "Service %q refers to pool %q, which is not defined.", b.s.Name, n)
		case !inService:
			b.c.errf(rngs[i], "Pool not in service", "Pool %q is not one of the pools of service %q; add it to the service's pools.", n, b.s.Name)
		case seen[n]:
			b.c.errf(rngs[i], "Duplicate pool reference", "The pool order lists pool %q twice.", n)
		default:
			seen[n] = true
			out = append(out, idx)
		}
	}
	if len(names) == 0 && len(rngs) == 0 {
		b.c.errf(a.Expr.Range(), "Missing pools", "A pool order needs at least one pool.")
	}
	return out
}

// names appends the names of an order's pools to dst.
func (b *geoBuilder) names(dst []string, order []uint8) []string {
	for _, i := range order {
		dst = append(dst, b.s.Pools[i].Name)
	}
	return dst
}

// countries enters a rule's ISO 3166-1 alpha-2 codes into the country table and returns
// them as written.
func (b *geoBuilder) countries(a *hcl.Attribute, ri uint16) []string {
	return b.codes(a, ri, "country", &b.g.country, b.countryRng, func(code string, rng hcl.Range) bool {
		if code2(code) >= 0 {
			return true
		}
		hint := ""
		if code2(strings.ToUpper(code)) >= 0 {
			hint = fmt.Sprintf("; write %q", strings.ToUpper(code))
		}
		b.c.errf(rng, "Invalid country code", "%q is not an ISO 3166-1 alpha-2 country code (two upper-case letters such as \"GB\")%s.", code, hint)
		return false
	})
}

// continents enters a rule's continent codes into the continent table and returns them
// as written.
func (b *geoBuilder) continents(a *hcl.Attribute, ri uint16) []string {
	return b.codes(a, ri, "continent", &b.g.continent, b.continentRng, func(code string, rng hcl.Range) bool {
		if continents[code] != "" {
			return true
		}
		b.c.errf(rng, "Invalid continent code", "%q is not a continent code; use one of AF, AN, AS, EU, NA, OC, SA (upper case).", code)
		return false
	})
}

// codes enters the two-letter codes of a list attribute into table as rule ri, skipping
// those valid refuses (it reports them) and those an earlier rule matched. It returns the
// list as written.
func (b *geoBuilder) codes(a *hcl.Attribute, ri uint16, one string, table *[26 * 26]uint16, seen map[string]hcl.Range, valid func(code string, rng hcl.Range) bool) []string {
	b.g.needCity = true
	codes, rngs, _ := b.c.strList(a)
	for i, code := range codes {
		if !valid(code, rngs[i]) {
			continue
		}
		if prev, dup := seen[code]; dup {
			b.c.errf(rngs[i], "Duplicate "+one, "%q is already matched by the rule at %s.", code, posString(prev))
			continue
		}
		seen[code] = rngs[i]
		table[code2(code)] = ri
	}
	return append([]string{}, codes...)
}

// asns enters a rule's AS numbers into the ASN map and returns the valid ones.
func (b *geoBuilder) asns(a *hcl.Attribute, ri uint16) []uint32 {
	b.g.needASN = true
	if b.g.asnRng.Filename == "" {
		b.g.asnRng = a.NameRange
	}
	out := []uint32{}
	items, ok := b.c.list(a)
	if !ok {
		return out
	}
	for _, it := range items {
		n, ok := b.c.number(a, it.v, it.rng, "ASN", 1, math.MaxUint32)
		if !ok {
			continue
		}
		if n != math.Trunc(n) {
			b.c.errf(it.rng, "Invalid ASN", "An ASN is a whole number, not %g.", n)
			continue
		}
		asn := uint32(n)
		out = append(out, asn)
		if prev, dup := b.asnRng[asn]; dup {
			b.c.errf(it.rng, "Duplicate ASN", "AS%d is already matched by the rule at %s.", asn, posString(prev))
			continue
		}
		b.asnRng[asn] = it.rng
		b.g.asn[asn] = ri
	}
	return out
}

// networks enters a rule's CIDR prefixes into the prefix table and returns them in
// canonical form.
func (b *geoBuilder) networks(a *hcl.Attribute, ri uint16) []string {
	cidrs, rngs, _ := b.c.strList(a)
	out := []string{}
	for i, cidr := range cidrs {
		p, err := netip.ParsePrefix(cidr)
		switch {
		case err != nil || p.Addr().Zone() != "":
			b.c.errf(rngs[i], "Invalid network", "%q is not a CIDR prefix such as \"198.51.100.0/24\" or \"2001:db8::/32\".", cidr)
			continue
		case p.Addr().Is4In6():
			b.c.errf(rngs[i], "Invalid network", "%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix (clients are matched as IPv4).", cidr)
			continue
		case p != p.Masked():
			b.c.errf(rngs[i], "Invalid network", "%q has bits set past its prefix length; did you mean %q?", cidr, p.Masked().String())
			continue
		}
		if prev, dup := b.netRng[p]; dup {
			b.c.errf(rngs[i], "Duplicate network", "%s is already matched by the rule at %s.", p, posString(prev))
			continue
		}
		out = append(out, p.String())
		b.netRng[p] = rngs[i]
		b.g.nets = append(b.g.nets, netRule{p: p, rule: ri})
	}
	return out
}

// describe names the rule for Explain: "rule 2 at policy.hcl:14:5 (countries)".
func (g *geoTable) describe(rule int, kind matchKind) string {
	if rule >= len(g.rules) {
		return "no rule matched: default_pools"
	}
	return fmt.Sprintf("rule %d at %s (%s)", rule+1, g.rules[rule].pos, kind)
}
