package policy

import (
	"runtime"
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/balance"
	"github.com/glbdns/glbdns/zones"
)

var serviceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "policy"}, {Name: "pools", Required: true}, {Name: "ttl"}, {Name: "answers"},
		{Name: "when_all_down"}, {Name: "fallback"}, {Name: "hash_prefix_v4"}, {Name: "hash_prefix_v6"},
		{Name: "method"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "geo"}},
}

// maxAnswers keeps answers within a 512-byte UDP response with room to spare (16 AAAA
// records take ~450 bytes with name compression). answers = 0 lifts the bound (every
// usable member) and leaves the fit to the UDP limit: TC=1 and TCP. The service defaults
// are api's.
const maxAnswers = 16

// Address families of candidate members, indexing Service.cands.
const (
	famV4 = iota
	famV6
	famHost
	numFamilies
)

var methodNames = map[string]Method{"round_robin": RoundRobin, "weighted": Weighted, "client_subnet_hash": ClientSubnetHash, "least_connections": LeastConnections}
var allDownNames = map[string]AllDown{"all": AllDownAll, "servfail": AllDownServFail, "fallback": AllDownFallback}

// String returns the method's name in the policy language.
func (m Method) String() string {
	for n, v := range methodNames {
		if v == m {
			return n
		}
	}
	return "unknown"
}

// String returns the when_all_down value in the policy language.
func (a AllDown) String() string {
	for n, v := range allDownNames {
		if v == a {
			return n
		}
	}
	return "unknown"
}

// service compiles a service block. A service without errors waits in c.pending for its
// zone's file import; with errors it is dropped (the snapshot is never built).
func (c *compilation) service(blk *hcl.Block) {
	c.serviceFrom(blk, c.draft(blk))
}

// serviceDraft is a service block decoded on its own (draft): everything service makes
// of it but what depends on the services before it, the name's uniqueness.
type serviceDraft struct {
	contentDiags hcl.Diagnostics // the body's schema check, reported even for a bad name
	diags        hcl.Diagnostics // the rest, reported once the name is known to be new
	s            *Service        // nil when it has errors, or no zone
	zone         *zoneState
}

// serviceFrom takes the draft of a service block into the compilation, in file order:
// the name is checked against the services before it, then the service waits in
// c.pending, or its errors are reported.
func (c *compilation) serviceFrom(blk *hcl.Block, d *serviceDraft) {
	c.add(d.contentDiags)
	name := fqdn(blk.Labels[0])
	labelRng := blk.LabelRanges[0]
	if !validName(name) {
		c.errf(labelRng, "Invalid service name", "%q is not a valid domain name.", blk.Labels[0])
		return
	}
	if prev, dup := c.svcRng[name]; dup {
		c.errf(labelRng, "Duplicate service", "Service %q is already declared at %s.", name, posString(*prev))
		return
	}
	c.svcRng[name] = &blk.LabelRanges[0]
	c.add(d.diags)
	if d.s == nil {
		return // a Snapshot is never built, so do not insert half-checked services
	}
	// Inserted into its zone by insertServices, once the zone files are imported.
	c.pending = append(c.pending, pendingService{s: d.s, zone: d.zone, rng: &blk.LabelRanges[0]})
}

// draft decodes a service block. It reads the compilation's pools, zones and geoip
// block, all compiled before any service, and writes nothing but c.diags, which it
// leaves as it found them: drafts of many services are made at once, each on a copy of
// the compilation of its own (draftServices).
func (c *compilation) draft(blk *hcl.Block) *serviceDraft {
	d := &serviceDraft{}
	name := fqdn(blk.Labels[0])
	labelRng := blk.LabelRanges[0]
	var content *hcl.BodyContent
	var diags hcl.Diagnostics
	if c.reuse != nil {
		content, diags = c.reuse.content(blk.Body, serviceSchema)
	} else {
		content, diags = bodyContent(blk.Body, serviceSchema)
	}
	d.contentDiags = diags
	if !validName(name) {
		return d
	}
	saved := c.diags
	c.diags = nil
	defer func() { c.diags = saved }()
	zone := c.serviceZone(name, labelRng)
	s := &Service{Name: name, File: blk.DefRange.Filename, TTL: api.DefaultTTL, Answers: api.DefaultAnswers,
		HashPrefix4: api.DefaultHashPrefixV4, HashPrefix6: api.DefaultHashPrefixV6, rand: balance.Global{}}
	at := content.Attributes
	c.serviceAttrs(s, at)
	pa := at["pools"]
	if pa != nil {
		cands := c.servicePools(s, pa, at["answers"])
		c.compileSteering(s, cands, content, pa, labelRng)
		c.serviceFallback(s, at)
		c.serviceSRV(s, pa)
		if len(d.contentDiags) == 0 && len(c.diags) == 0 {
			c.checkLeastConn(s, at)
		}
	}
	d.diags = c.diags
	if pa != nil && zone != nil && len(d.contentDiags) == 0 && len(c.diags) == 0 {
		s.Zone = zone.origin
		d.s, d.zone = s, zone
	}
	return d
}

// minDrafts is the number of service blocks to compile from source from which their
// drafts are made on every CPU (draftServices): below it, goroutines cost more than
// they save.
var minDrafts = 512 // a variable: tests compare with drafts off

// draftServices makes the drafts of the service blocks of the units without a record
// (every one, at a start), on GOMAXPROCS goroutines, each on its own copy of the
// compilation, when there are at least minDrafts: decoding them is most of a large
// policy's compile, and each reads only what the pools, zones and geoip block made.
// serviceAt then takes each draft in order. Diagnostics are sorted at the end (finish),
// so the result is Load's exactly.
func (c *compilation) draftServices() {
	type job struct {
		u *unit
		i int
	}
	var jobs []job
	for _, u := range c.units {
		if u.old != nil || !u.parsed {
			continue
		}
		for i := range u.count(kindService) {
			jobs = append(jobs, job{u, i})
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(jobs) < minDrafts || workers < 2 {
		return
	}
	c.stats.drafted = len(jobs)
	for _, j := range jobs {
		if j.u.drafts == nil {
			j.u.drafts = make([]*serviceDraft, j.u.count(kindService))
		}
	}
	var wg sync.WaitGroup
	per := (len(jobs) + workers - 1) / workers
	for lo := 0; lo < len(jobs); lo += per {
		part := jobs[lo:min(lo+per, len(jobs))]
		w := *c // its own diags and content storage; the rest is only read
		w.diags, w.reuse = nil, &reusableContent{}
		wg.Go(func() {
			for _, j := range part {
				j.u.drafts[j.i] = w.draft(j.u.blocks[kindService][j.i])
			}
		})
	}
	wg.Wait()
}

// serviceZone is the zone a service name lives in: the longest declared origin above
// it; nil (reported) when there is none.
func (c *compilation) serviceZone(name string, rng hcl.Range) *zoneState {
	zone := c.zoneOf(name)
	if zone == nil {
		c.errf(rng, "Service outside every zone", "Service %q is not in any declared zone; glbdns is authoritative only for its zones.", name)
	}
	return zone
}

// zoneOf is the zone a name lives in: the longest declared origin above it, or nil.
func (c *compilation) zoneOf(name string) *zoneState {
	var zone *zoneState
	for _, z := range c.zones {
		if dns.IsSubDomain(z.origin, name) && (zone == nil || len(z.origin) > len(zone.origin)) {
			zone = z
		}
	}
	return zone
}

// serviceAttrs decodes the service's scalar attributes: policy, method, ttl, answers,
// when_all_down and the hash prefixes.
func (c *compilation) serviceAttrs(s *Service, at hcl.Attributes) {
	if a := at["policy"]; a != nil {
		if v, ok := c.str(a); ok && c.oneOf(a, v, "round_robin", "weighted", "client_subnet_hash", "least_connections", "failover", "geo", "nearest") {
			s.Method = methodNames[v]
			s.Steering = steeringNames[v]
		}
	}
	if a := at["method"]; a != nil {
		if s.Steering == SteerNone {
			c.errf(a.NameRange, "Unexpected method", "The method attribute sets the member method inside pools of a failover, geo or nearest service; service %q's policy is already its method.", s.Name)
		} else if v, ok := c.str(a); ok && c.oneOf(a, v, "round_robin", "weighted", "client_subnet_hash", "least_connections") {
			s.Method = methodNames[v]
		}
	}
	if a := at["ttl"]; a != nil {
		s.TTL, _ = c.ttl(a)
	}
	if a := at["answers"]; a != nil {
		if v, ok := c.integer(a, 0, maxAnswers); ok {
			s.Answers = int(v)
		}
	}
	if a := at["when_all_down"]; a != nil {
		if v, ok := c.str(a); ok && c.oneOf(a, v, "all", "servfail", "fallback") {
			s.WhenAllDown = allDownNames[v]
		}
	}
	if a := at["hash_prefix_v4"]; a != nil {
		if v, ok := c.integer(a, 0, 32); ok {
			s.HashPrefix4 = int(v)
		}
	}
	if a := at["hash_prefix_v6"]; a != nil {
		if v, ok := c.integer(a, 0, 128); ok {
			s.HashPrefix6 = int(v)
		}
	}
}

// servicePools resolves the pools attribute pa and returns the pools' members by family,
// checking that they are of one kind (addresses or host names) and that a host-name
// service answers one CNAME. answers is the answers attribute (nil when absent).
func (c *compilation) servicePools(s *Service, pa, answers *hcl.Attribute) [numFamilies][]*Member {
	names, rngs, _ := c.strList(pa)
	var seen map[*Pool]bool // for long lists only: most services list a few pools
	if len(names) > 16 {
		seen = make(map[*Pool]bool, len(names))
	}
	for i, n := range names {
		p := c.snap.PoolByName[n]
		switch {
		case p == nil:
			c.errf(rngs[i], "Unknown pool", "Service %q refers to pool %q, which is not defined.", s.Name, n)
		case seen[p] || seen == nil && slices.Contains(s.Pools, p):
			c.errf(rngs[i], "Duplicate pool reference", "Service %q lists pool %q twice.", s.Name, n)
		default:
			if seen != nil {
				seen[p] = true
			}
			s.Pools = append(s.Pools, p)
		}
	}
	if len(names) == 0 && len(rngs) == 0 {
		c.errf(pa.Expr.Range(), "Missing pools", "Service %q needs at least one pool.", s.Name)
	}
	cands := families(s.Pools)
	for f, m := range cands {
		s.hasFam[f] = len(m) > 0
	}
	nAddr := len(cands[famV4]) + len(cands[famV6])
	s.cname = len(cands[famHost]) > 0
	switch {
	case s.cname && nAddr > 0:
		c.errf(pa.Expr.Range(), "Mixed member kinds",
			"Service %q mixes host-name members (answered as CNAME) with address members (answered as A/AAAA); a CNAME cannot coexist with other data at a name (RFC 1034 section 3.6.2).", s.Name)
	case !s.cname && nAddr == 0 && len(s.Pools) == len(names):
		c.errf(pa.Expr.Range(), "Service has no members", "The pools of service %q hold no members, so it could only answer NODATA.", s.Name)
	case s.cname && s.Answers != 1 && answers != nil:
		c.errf(answers.Expr.Range(), "Invalid answers", "Service %q answers with a CNAME, and a name holds at most one CNAME (RFC 2181 section 10.1); answers must be 1.", s.Name)
	}
	return cands
}

// serviceFallback resolves the fallback pool, which when_all_down = "fallback" needs and
// nothing else allows, into its walk entry (the service's method, a cursor of its own).
func (c *compilation) serviceFallback(s *Service, at hcl.Attributes) {
	fa := at["fallback"]
	switch {
	case s.WhenAllDown == AllDownFallback && fa == nil:
		c.errf(at["when_all_down"].Expr.Range(), "Missing fallback", "Service %q answers from a fallback pool when all members are down, but sets no fallback pool.", s.Name)
	case s.WhenAllDown != AllDownFallback && fa != nil:
		c.errf(fa.NameRange, "Unexpected fallback", "The fallback pool is used only with when_all_down = \"fallback\".")
	case fa != nil:
		fn, ok := c.str(fa)
		if !ok {
			return
		}
		if s.Fallback = c.snap.PoolByName[fn]; s.Fallback == nil {
			c.errf(fa.Expr.Range(), "Unknown pool", "Service %q refers to pool %q, which is not defined.", s.Name, fn)
			return
		}
		s.fallback = &entry{pool: s.Fallback, method: s.Method, cands: families([]*Pool{s.Fallback})}
		fbHost := len(s.fallback.cands[famHost]) > 0
		fbAddr := len(s.fallback.cands[famV4])+len(s.fallback.cands[famV6]) > 0
		if (fbHost && (fbAddr || !s.cname)) || (fbAddr && s.cname) {
			c.errf(fa.Expr.Range(), "Mixed member kinds", "Fallback pool %q must hold the same kind of members (addresses or host names) as the service's pools.", fn)
		}
	}
}

// pendingService is a compiled service waiting for its zone's file import.
type pendingService struct {
	s    *Service
	zone *zoneState
	rng  *hcl.Range // the label
	// shared says that s is the service of a previous snapshot (from a Compiler's
	// record), not to be modified: a new Ref takes a copy.
	shared bool
	// u and i locate the service's block: u's i-th service.
	u *unit
	i int
}

// insertServices inserts the compiled services into their zones, in declaration order,
// each under its Ref (assignRefs), its index in Snapshot.Services. A zone reused from a
// Compiler's record holds them already, under the same references, and one extended
// from it holds those of records (buildRecordedZones).
func (c *compilation) insertServices() {
	if c.stableRefs {
		c.snap.Services = make([]*Service, len(c.pending))
	}
	if c.cc == nil || c.cc.files == nil { // a first Load: zones compiled from their blocks
		counts := make(map[*zoneState]int, len(c.zones))
		for k := range c.pending {
			counts[c.pending[k].zone]++
		}
		for zs, n := range counts {
			if zs.z != nil && !zs.reused && !zs.extended && zs.old == nil {
				zs.z.Reserve(n) // their names, inserted next, one map and no regrowth
			}
		}
	}
	for k := range c.pending {
		p := &c.pending[k]
		ref := zones.ServiceRef(len(c.snap.Services))
		if c.stableRefs {
			ref = c.refs[k]
		}
		switch {
		case !p.shared:
			p.s.Ref = ref
		case p.s.Ref != ref:
			p.s, p.shared = p.s.clone(ref, nil), false
			c.stats.copiedServices++
		}
		if z := p.zone; !z.reused {
			if z.z == nil {
				continue // it could not be built (reported)
			}
			if !z.extended || !p.shared { // an extended zone holds the shared ones
				if err := z.z.InsertService(p.s.Name, ref); err != nil {
					c.zoneErr(*p.rng, p.s.Name, err)
					continue
				}
			}
			if c.cc != nil {
				z.inserted = append(z.inserted, insertedService{name: p.s.Name, ref: ref})
			}
		}
		if c.stableRefs {
			c.snap.Services[ref] = p.s
		} else {
			c.snap.Services = append(c.snap.Services, p.s)
		}
	}
	if c.stableRefs && c.diags.HasErrors() {
		// A service left out leaves its slot empty; no snapshot is made, but the checks
		// that follow still read Services.
		c.snap.Services = slices.DeleteFunc(c.snap.Services, func(s *Service) bool { return s == nil })
	}
	c.checkSRVTargets()
}

// clone returns a copy of s for another snapshot, with reference ref, each pool replaced
// by pool(p) when pool is not nil, and the walk's entries built again for them: the
// members of renumbered pools are other objects, and a copy's round-robin cursors start
// at zero, as a Load's do. Everything else (the geo tables, which index the pools by
// position) is shared: it is never modified.
func (s *Service) clone(ref zones.ServiceRef, pool func(*Pool) *Pool) *Service {
	n := &Service{Ref: ref, Name: s.Name, File: s.File, Zone: s.Zone, Method: s.Method, Steering: s.Steering,
		NeedsGeo: s.NeedsGeo, GeoCity: s.GeoCity, GeoASN: s.GeoASN, Pools: s.Pools, TTL: s.TTL, Answers: s.Answers,
		WhenAllDown: s.WhenAllDown, Fallback: s.Fallback, HashPrefix4: s.HashPrefix4, HashPrefix6: s.HashPrefix6,
		hasFam: s.hasFam, cname: s.cname, geo: s.geo, rand: s.rand}
	if pool != nil {
		n.Pools = make([]*Pool, len(s.Pools))
		for i, p := range s.Pools {
			n.Pools[i] = pool(p)
		}
		if s.Fallback != nil {
			n.Fallback = pool(s.Fallback)
		}
	}
	// setEntry sets ne to e for n: its pool mapped and, when that is another object, its
	// candidates gathered from it (from pools, for a plain service's one entry) again.
	setEntry := func(ne, e *entry, pools []*Pool) {
		ne.pool, ne.method, ne.cands, ne.need = e.pool, e.method, e.cands, e.need
		if pool != nil {
			if e.pool != nil {
				ne.pool = pool(e.pool)
				pools = []*Pool{ne.pool}
			}
			ne.cands = families(pools)
		}
	}
	if s.Steering == SteerNone {
		setEntry(&n.plain[0], &s.plain[0], n.Pools)
		n.entries = n.plain[:]
	} else {
		n.entries = make([]entry, len(s.entries))
		for i := range s.entries {
			setEntry(&n.entries[i], &s.entries[i], nil)
		}
	}
	if s.fallback != nil {
		n.fallback = &entry{}
		setEntry(n.fallback, s.fallback, nil)
	}
	if pool == nil {
		n.srv = s.srv
	} else {
		n.buildSRV() // checked when s was compiled; the members are other objects now
	}
	return n
}

// families splits the pools' members (in pool order, then member order) by family, each
// family's slice allocated at its size. One pool whose members are all of one family
// lends its Members, capped so that an append copies: the candidates of a plain service
// over one pool, and of every entry of a steering service, cost no slice of their own.
// Nothing writes to candidates (the walk appends them to its own buffer).
func families(pools []*Pool) [numFamilies][]*Member {
	var f [numFamilies][]*Member
	var n [numFamilies]int
	for _, p := range pools {
		for _, m := range p.Members {
			n[family(m)]++
		}
	}
	for fam, k := range n {
		if k == 0 {
			continue
		}
		if len(pools) == 1 && k == len(pools[0].Members) {
			f[fam] = pools[0].Members[:k:k]
			return f
		}
		f[fam] = make([]*Member, 0, k)
	}
	for _, p := range pools {
		for _, m := range p.Members {
			fam := family(m)
			f[fam] = append(f[fam], m)
		}
	}
	return f
}

// family is the member's address family: famHost, famV4 or famV6.
func family(m *Member) int {
	switch {
	case m.Host != "":
		return famHost
	case m.Addr.Is4():
		return famV4
	}
	return famV6
}
