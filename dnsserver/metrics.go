package dnsserver

// Metrics of the query path.
//
// The query path records into plain arrays of atomic counters indexed by small integers
// and never touches a prometheus.CounterVec (WithLabelValues hashes the label values and
// takes a lock on every call); a custom prometheus.Collector reads the arrays at scrape
// time and hands out const metrics. Counters are sharded (one copy of each array per
// shard, at least one shard per UDP worker) and every UDP worker records into its own
// shard, so that workers on different cores never write the same cache line: with a
// shared line every query pays the line's trip between cores (measured: 6 ns per query on
// distinct shards, 38-95 ns on one shared shard, BenchmarkMetricsPerQuery). TCP
// connections take shards in turn.
//
// Series exported by Server.Collector (every one of them is also listed in docs/metrics.md):
//
//	glbdns_dns_requests_total{zone,qtype,rcode,proto}  counter  replies sent; zone is the
//	    origin from the policy ("glb.example.com.") or "none" (outside every zone, or no
//	    question); qtype one of A AAAA CNAME MX TXT NS SOA SRV PTR CAA HTTPS SVCB ANY other;
//	    rcode one of NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED BADVERS BADCOOKIE other;
//	    proto udp or tcp. Only non-zero series are exported.
//	glbdns_dns_response_size_bytes{proto}              histogram of reply sizes (buckets as
//	    CoreDNS: 0 100 200 300 400 511 1023 2047 4095 8291 16000 32000 48000 64000)
//	glbdns_dns_truncated_responses_total               counter  UDP replies sent with TC=1
//	glbdns_dns_ecs_requests_total                      counter  replied queries with an ECS option
//	glbdns_dns_dropped_requests_total                  counter  messages not answered (shorter
//	    than a header, or a response)
//	glbdns_dns_rrl_limited_total{action}               counter  UDP replies rate limiting dropped
//	    (action="drop") or sent as an empty TC=1 reply ("slip"), rrl.go
//	glbdns_dns_cookies_total{cookie}                   counter  queries with a COOKIE option:
//	    client_only, valid (exempt from rate limiting) or bad (BADCOOKIE over UDP), cookie.go
//	glbdns_dns_panics_total                            counter  panics recovered (Server.Panics)
//	glbdns_policy_answers_total{service,pool,member}   counter  times the member was put in an
//	    answer of the service (A/AAAA record or CNAME); carried across reloads by identity
//	glbdns_policy_members{pool}                        gauge    members of the pool
//	glbdns_policy_members_usable{pool}                 gauge    members usable: up (health view, no drain in force), weight > 0
//
// There is no glbdns_dns_request_duration_seconds: timing a query costs two clock reads
// and a histogram update per query (about 5% of a 1µs query) for a figure that the
// clients' own latency measures better; response size and rcode say more per nanosecond.
//
// # Recording
//
// Both paths record a reply sent exactly once, after it is written, with Server.record
// (reply.go), which calls
//
//	s.metrics.observe(sh, zoneSlot, qtype, rcode, proto, len(reply), truncated, ecs)
//
// where sh is the shard of the loop answering (handle's argument), zoneSlot is the state's
// slot for the zone the question fell in (st.zoneIndex(z); 0 when none, or no question),
// qtype the question's type (any value; rare ones fold into "other"), rcode the reply's
// rcode, proto protoUDP or protoTCP, truncated whether TC=1 was set, ecs whether the query
// carried an ECS option. A message that gets no reply is s.metrics.dropped(sh). Every
// member put in an answer is s.metrics.answered(sh, st.answers, svc, member), with the
// answer counters of the state the query was answered from and the service whose
// selection chose the member. None of them locks or allocates.

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/zones"
)

// proto is the transport a query came over (the proto label).
type proto uint8

const (
	protoUDP proto = iota
	protoTCP
	numProtos
)

var protoNames = [numProtos]string{"udp", "tcp"}

// minShards and maxShards bound the number of shards: at least one per UDP worker, a
// power of two, and never fewer than minShards so that TCP connections spread too.
const (
	minShards = 8
	maxShards = 256
)

// shardsFor is the number of shards for workers UDP workers.
func shardsFor(workers int) int {
	n := minShards
	for n < workers && n < maxShards {
		n <<= 1
	}
	return n
}

// qtype buckets: the types an authoritative load balancer is asked for; everything else
// is "other" (CoreDNS does the same), so that a scan of odd types cannot grow the series.
var qtypeNames = [...]string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR", "CAA", "HTTPS", "SVCB", "ANY", "other"}

const numQtypes = len(qtypeNames)
const qtypeOther = numQtypes - 1

// qtypeSmall maps types below 256 to their bucket (built once in init).
var qtypeSmall [256]uint8

func init() {
	for i := range qtypeSmall {
		qtypeSmall[i] = uint8(qtypeOther)
	}
	for i, n := range qtypeNames[:qtypeOther] {
		if t := dns.StringToType[n]; t < 256 {
			qtypeSmall[t] = uint8(i)
		}
	}
}

func qtypeIndex(t uint16) int {
	if t < 256 {
		return int(qtypeSmall[t])
	}
	if t == dns.TypeCAA {
		return 9
	}
	return qtypeOther
}

// rcode buckets: every rcode the server sends has its own; "other" guards the index.
var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "BADCOOKIE", "other"}

const numRcodes = len(rcodeNames)

func rcodeIndex(rc int) int {
	switch {
	case rc >= 0 && rc <= dns.RcodeRefused:
		return rc
	case rc == dns.RcodeBadVers:
		return 6
	case rc == dns.RcodeBadCookie:
		return 7
	}
	return numRcodes - 1
}

// sizeBuckets are the upper bounds of the response size histogram, CoreDNS's set: the
// 512-byte classic UDP limit and powers of two up to the 64 KiB TCP limit.
var sizeBuckets = [...]float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000}

const numSizeBuckets = len(sizeBuckets) + 1 // the last one is +Inf

func sizeIndex(n int) int {
	for i, b := range sizeBuckets {
		if float64(n) <= b {
			return i
		}
	}
	return numSizeBuckets - 1
}

// maxZoneSlots bounds the zone label's values: slot 0 is "none", the last is "other" for
// zones beyond the bound (a policy with a thousand zones is not the common case, and the
// bound keeps a misconfiguration from exploding the series).
const maxZoneSlots = 1024

// zoneCells is the number of request counters per zone and shard.
const zoneCells = numQtypes * numRcodes * int(numProtos)

// zoneBlock holds the request counters of one zone label: shards*zoneCells, shard-major
// so that shards are kilobytes apart and never share a cache line.
type zoneBlock struct {
	name string
	c    []atomic.Uint64
}

func (m *metrics) newZoneBlock(name string) *zoneBlock {
	return &zoneBlock{name: name, c: make([]atomic.Uint64, len(m.shards)*zoneCells)}
}

// shardCounters are the per-shard scalars and the size histogram; the padding keeps two
// shards off one cache line.
type shardCounters struct {
	size      [numProtos][numSizeBuckets]atomic.Uint64
	sizeSum   [numProtos]atomic.Uint64
	truncated atomic.Uint64
	ecs       atomic.Uint64
	dropped   atomic.Uint64
	limited   [3]atomic.Uint64 // by rrlVerdict: rrlDrop, rrlSlip
	cookies   [4]atomic.Uint64 // by cookieVerdict
	_         [64]byte
}

// metrics is the query path's counters. The zero value is not usable; see newMetrics.
type metrics struct {
	// off makes observe, dropped and answered return at once. It exists so that
	// benchmarks can measure what recording costs the query path (the NoMetrics
	// benchmarks): only _test.go files set it, before the server answers anything, and
	// in production it is always false, a branch predicted right every time on a word
	// next to the zone counters that observe reads anyway. It is not a feature: the
	// series must always be complete.
	off bool

	zones     [maxZoneSlots]atomic.Pointer[zoneBlock]
	shards    []shardCounters // a power of two of them, see shardsFor
	nextShard atomic.Uint32   // the shard of the next TCP connection, see connShard

	// mu guards the install-time data below (never taken by queries).
	mu        sync.Mutex
	zoneSlot  map[string]int // zone origin → slot
	nextSlot  int
	retired   map[answerKey]uint64 // counts of slots that left the policy, by identity
	panicsPtr *atomic.Uint64
}

// newMetrics returns the counters for a server with workers UDP workers.
func newMetrics(panics *atomic.Uint64, workers int) *metrics {
	m := &metrics{zoneSlot: map[string]int{}, nextSlot: 1, retired: map[answerKey]uint64{}, panicsPtr: panics}
	m.shards = make([]shardCounters, shardsFor(workers))
	m.zones[0].Store(m.newZoneBlock("none"))
	return m
}

// shard maps any number (a worker's index) to a shard.
func (m *metrics) shard(i int) int { return i & (len(m.shards) - 1) }

// connShard is the shard of a new TCP connection (or any caller without a worker index):
// the shards in turn, one atomic add per connection rather than per query.
func (m *metrics) connShard() int { return m.shard(int(m.nextShard.Add(1))) }

// observe records one reply sent, in shard sh. See "Recording" at the top of this file for
// the arguments.
func (m *metrics) observe(sh, zoneIdx int, qtype uint16, rcode int, pr proto, size int, truncated, ecs bool) {
	if m.off {
		return
	}
	sh = m.shard(sh)
	if zoneIdx < 0 || zoneIdx >= maxZoneSlots {
		zoneIdx = 0
	}
	if b := m.zones[zoneIdx].Load(); b != nil {
		b.c[sh*zoneCells+(qtypeIndex(qtype)*numRcodes+rcodeIndex(rcode))*int(numProtos)+int(pr)].Add(1)
	}
	sc := &m.shards[sh]
	sc.size[pr][sizeIndex(size)].Add(1)
	sc.sizeSum[pr].Add(uint64(size))
	if truncated {
		sc.truncated.Add(1)
	}
	if ecs {
		sc.ecs.Add(1)
	}
}

// limited records a reply that response-rate limiting dropped or slipped, in shard sh.
func (m *metrics) limited(sh int, v rrlVerdict) {
	if m.off {
		return
	}
	m.shards[m.shard(sh)].limited[v].Add(1)
}

// cookie records the verdict on a query's COOKIE option, in shard sh.
func (m *metrics) cookie(sh int, v cookieVerdict) {
	if m.off {
		return
	}
	m.shards[m.shard(sh)].cookies[v].Add(1)
}

// dropped records a message that got no reply, in shard sh.
func (m *metrics) dropped(sh int) {
	if m.off {
		return
	}
	m.shards[m.shard(sh)].dropped.Add(1)
}

// answered records in set, the answer counters of the state the query was answered from,
// that member was put in an answer of svc. svc and member come from that state's
// snapshot, for which set was built, so their indexes are set's: the bounds checks only
// keep a compiler bug from becoming a panic.
func (m *metrics) answered(sh int, set *answerSet, svc *policy.Service, member *policy.Member) {
	if m.off || set == nil {
		return
	}
	ref, mi := int(svc.Ref), member.Index
	if uint(ref) >= uint(len(set.svcs)) || uint(mi) >= uint(len(set.memberPool)) {
		return
	}
	sl := &set.svcs[ref]
	pi := set.memberPool[mi]
	for j, p := range sl.pools {
		if p == pi {
			set.c[m.shard(sh)*set.stride+int(sl.base[j]+set.memberPos[mi])].Add(1)
			return
		}
	}
}

// answerKey is the identity of a per-member answer counter.
type answerKey struct{ Service, Pool, Member string }

// svcSlots locates a service's counters: for each candidate pool (its pools, then its
// fallback pool), the pool's index in Snapshot.Pools and its first slot.
type svcSlots struct {
	svc   *policy.Service // its name finds its counters in the next snapshot
	pools []int32
	ptrs  []*policy.Pool // the pools of pools, for comparing layouts across snapshots
	base  []int32
	n     int32 // counters of the service, from base[0]
}

// answerSet is the per-(service, pool, member) answer counters of one snapshot, held by
// the states serving it.
type answerSet struct {
	svcs       []svcSlots // by Service.Ref
	memberPool []int32    // by Member.Index: the pool's index in snap.Pools
	memberPos  []int32    // by Member.Index: position in its pool
	keys       []answerKey
	base       []uint64 // carried from earlier snapshots, by slot

	byKeyOnce sync.Once
	byKey     map[answerKey]int // by index, built on first use
	n         int
	stride    int             // n rounded up to whole cache lines: shards never share one
	c         []atomic.Uint64 // shards*stride, shard-major
}

func (a *answerSet) count(i int) uint64 {
	v := a.base[i]
	for sh := 0; sh*a.stride < len(a.c); sh++ {
		v += a.c[sh*a.stride+i].Load()
	}
	return v
}

// install prepares the counters for snap (a new snapshot being swapped in): zone slots for
// its zones and an answer set whose counts start where those of the same (service, pool,
// member) ended in prev, the set of the snapshot being replaced (nil for none), or in
// retired counts. It returns snap's zones in the order of snap.Zones.Zones(), their zone
// slots, and the answer set.
func (m *metrics) install(snap *policy.Snapshot, prev *answerSet) ([]*zones.Zone, []int, *answerSet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	zs := snap.Zones.Zones()
	slots := make([]int, len(zs))
	for i, z := range zs {
		slots[i] = m.zoneSlotLocked(z.Origin())
	}
	set := newAnswerSet(snap, len(m.shards))
	set.carry(prev, m.retired)
	return zs, slots, set
}

// carry starts set's counters where prev's (nil: none) of the same (service, pool, member)
// ended, or where retired keeps them, and retires the counters of prev that set lacks.
//
// A service whose counters are laid out as in prev (the same name, the same pools, each
// the same object or one with the same members: what the policy compiler gives for a
// service an API write did not touch, even when it had to copy it) has them in the same
// order: its range is copied, with no key compared. Only the services whose layout
// changed go through their keys, and the index of keys is built over those alone, since
// a key names its service and a service's name is in one snapshot once: so an API write
// into a large policy carries its counters in time proportional to the services.
func (set *answerSet) carry(prev *answerSet, retired map[answerKey]uint64) {
	var byName map[string]int // prev's services by name
	var carried []bool
	if prev != nil {
		byName = make(map[string]int, len(prev.svcs))
		for j := range prev.svcs {
			if sv := prev.svcs[j].svc; sv != nil {
				byName[sv.Name] = j
			}
		}
		carried = make([]bool, len(prev.svcs))
	}
	var changed []int // set's services whose layout changed
	for i := range set.svcs {
		sl := &set.svcs[i]
		if j, ok := byName[sl.svc.Name]; ok && sameLayout(&prev.svcs[j], sl) {
			ps := &prev.svcs[j]
			for k := range sl.n {
				set.base[int(sl.base[0])+int(k)] = prev.count(int(ps.base[0]) + int(k))
			}
			carried[j] = true
			continue
		}
		changed = append(changed, i)
	}
	old := map[answerKey]int{}
	for j := range carried {
		if !carried[j] {
			prev.eachKey(j, func(i int) { old[prev.keys[i]] = i })
		}
	}
	fresh := map[answerKey]bool{}
	for _, i := range changed {
		set.eachKey(i, func(k int) {
			key := set.keys[k]
			fresh[key] = true
			if j, ok := old[key]; ok {
				set.base[k] = prev.count(j)
			} else {
				set.base[k] = retired[key]
			}
		})
	}
	for key, j := range old {
		if !fresh[key] {
			retired[key] = prev.count(j)
		}
	}
}

// sameLayout reports whether two services' counters are the same keys in the same order:
// the same candidate pools (the same objects, or pools of the same name and members).
func sameLayout(a, b *svcSlots) bool {
	if a.n != b.n || len(a.ptrs) != len(b.ptrs) {
		return false
	}
	for i, p := range a.ptrs {
		q := b.ptrs[i]
		if p == q {
			continue
		}
		if p.Name != q.Name || len(p.Members) != len(q.Members) {
			return false
		}
		for k, m := range p.Members {
			if m.Name != q.Members[k].Name {
				return false
			}
		}
	}
	return true
}

// eachKey calls f with the index of every counter of service i.
func (set *answerSet) eachKey(i int, f func(int)) {
	sl := &set.svcs[i]
	for k := range sl.n {
		f(int(sl.base[0]) + int(k))
	}
}

// zoneSlotLocked is the zone slot of origin, given one (with its counters) on first sight;
// beyond maxZoneSlots zones share the last, "other". m.mu is held.
func (m *metrics) zoneSlotLocked(origin string) int {
	if slot, ok := m.zoneSlot[origin]; ok {
		return slot
	}
	slot := maxZoneSlots - 1
	if m.nextSlot < maxZoneSlots-1 {
		slot = m.nextSlot
		m.nextSlot++
		m.zones[slot].Store(m.newZoneBlock(origin))
	} else if m.zones[slot].Load() == nil {
		m.zones[slot].Store(m.newZoneBlock("other"))
	}
	m.zoneSlot[origin] = slot
	return slot
}

// newAnswerSet lays out the answer counters of snap, all at zero, for shards shards: for
// each service the members of each of its candidate pools (its pools, then its fallback
// pool), each pool once.
func newAnswerSet(snap *policy.Snapshot, shards int) *answerSet {
	set := &answerSet{svcs: make([]svcSlots, len(snap.Services)),
		memberPool: make([]int32, len(snap.Members)), memberPos: make([]int32, len(snap.Members))}
	poolIdx := make(map[*policy.Pool]int32, len(snap.Pools))
	for i, p := range snap.Pools {
		poolIdx[p] = int32(i)
		for j, mem := range p.Members {
			if mem.Index >= 0 && mem.Index < len(set.memberPool) {
				set.memberPool[mem.Index], set.memberPos[mem.Index] = int32(i), int32(j)
			}
		}
	}
	for i, svc := range snap.Services {
		sl := &set.svcs[i]
		sl.svc = svc
		first := len(set.keys)
		for _, p := range append(svc.Pools[:len(svc.Pools):len(svc.Pools)], svc.Fallback) {
			pi, ok := poolIdx[p]
			if !ok || slices.Contains(sl.pools, pi) {
				continue // no pool (a nil fallback), or one already counted
			}
			sl.pools = append(sl.pools, pi)
			sl.ptrs = append(sl.ptrs, p)
			sl.base = append(sl.base, int32(len(set.keys)))
			for _, mem := range p.Members {
				set.keys = append(set.keys, answerKey{svc.Name, p.Name, mem.Name})
			}
		}
		sl.n = int32(len(set.keys) - first)
	}
	set.n = len(set.keys)
	set.stride = (set.n + 7) &^ 7 // 8 counters of 8 bytes per 64-byte line
	set.c = make([]atomic.Uint64, shards*set.stride)
	set.base = make([]uint64, set.n)
	return set
}

// index is the counter of key, or -1; its map is built on first use (the status page's),
// not for every snapshot installed.
func (set *answerSet) index(key answerKey) int {
	set.byKeyOnce.Do(func() {
		set.byKey = make(map[answerKey]int, set.n)
		for i, k := range set.keys {
			set.byKey[k] = i
		}
	})
	if i, ok := set.byKey[key]; ok {
		return i
	}
	return -1
}

// retire keeps the counts of set, whose snapshot stops serving with none after it, for
// the next snapshot that has the same counters.
func (m *metrics) retire(set *answerSet) {
	if set == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range set.keys {
		m.retired[k] = set.count(i)
	}
}

// AnswerCounts is one reading of the per-(service, pool, member) answer counters, for
// status pages: cumulative counts that never go backwards across reloads.
type AnswerCounts struct {
	set *answerSet
	// Counts holds the cumulative count of each counter.
	Counts []uint64
}

// AnswerCounts reads the answer counters of the serving snapshot now.
func (s *Server) AnswerCounts() AnswerCounts {
	st := s.state.Load()
	if st == nil || st.answers == nil {
		return AnswerCounts{}
	}
	set := st.answers
	a := AnswerCounts{set: set, Counts: make([]uint64, set.n)}
	for i := range a.Counts {
		a.Counts[i] = set.count(i)
	}
	return a
}

// Index returns the position in Counts of the counter of member of pool answering for
// service (names as in the snapshot: service FQDN, pool and member names), or -1.
func (a AnswerCounts) Index(service, pool, member string) int {
	if a.set == nil {
		return -1
	}
	return a.set.index(answerKey{service, pool, member})
}

// Get returns the cumulative count of a counter by identity, and whether it exists.
func (a AnswerCounts) Get(service, pool, member string) (uint64, bool) {
	if i := a.Index(service, pool, member); i >= 0 {
		return a.Counts[i], true
	}
	return 0, false
}

// Collector returns the prometheus.Collector of the server's metrics (the series listed at
// the top of metrics.go). Register it with one registry.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

var (
	descRequests = prometheus.NewDesc("glbdns_dns_requests_total",
		"DNS replies sent, by zone (\"none\" outside every zone), query type, rcode and transport.",
		[]string{"zone", "qtype", "rcode", "proto"}, nil)
	descSize = prometheus.NewDesc("glbdns_dns_response_size_bytes",
		"Size of the DNS replies sent, by transport.", []string{"proto"}, nil)
	descTruncated = prometheus.NewDesc("glbdns_dns_truncated_responses_total",
		"UDP replies sent truncated (TC=1) because the answer did not fit.", nil, nil)
	descECS = prometheus.NewDesc("glbdns_dns_ecs_requests_total",
		"Replied queries that carried an EDNS Client Subnet option.", nil, nil)
	descDropped = prometheus.NewDesc("glbdns_dns_dropped_requests_total",
		"Messages that got no reply (shorter than a header, or a response).", nil, nil)
	descLimited = prometheus.NewDesc("glbdns_dns_rrl_limited_total",
		"UDP replies response-rate limiting held back: dropped, or slipped as an empty TC=1 reply.", []string{"action"}, nil)
	descCookies = prometheus.NewDesc("glbdns_dns_cookies_total",
		"Queries with a DNS COOKIE option, by what it proved: client_only (no server cookie), valid (ours, fresh: exempt from rate limiting), bad (answered BADCOOKIE over UDP).", []string{"cookie"}, nil)
	descPanics = prometheus.NewDesc("glbdns_dns_panics_total",
		"Panics recovered in the DNS server (read loops, connections, queries).", nil, nil)
	descAnswers = prometheus.NewDesc("glbdns_policy_answers_total",
		"Times a member was put in an answer of a service.", []string{"service", "pool", "member"}, nil)
	descMembers = prometheus.NewDesc("glbdns_policy_members",
		"Members of the pool in the serving policy.", []string{"pool"}, nil)
	descUsable = prometheus.NewDesc("glbdns_policy_members_usable",
		"Members of the pool the health view counts usable (up, no drain in force) with a weight above 0.", []string{"pool"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descSize, descTruncated, descECS,
		descDropped, descLimited, descCookies, descPanics, descAnswers, descMembers, descUsable} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.metrics.collectRequests(ch)
	c.metrics.collectShards(ch)
	if st := c.state.Load(); st != nil { // one state: answer counters and pools of one snapshot
		collectPolicy(ch, st)
	}
}

// collectRequests sends the request counters of every zone slot, the shards summed.
func (m *metrics) collectRequests(ch chan<- prometheus.Metric) {
	var cells [zoneCells]uint64
	for slot := range m.zones {
		b := m.zones[slot].Load()
		if b == nil {
			continue
		}
		clear(cells[:])
		for i := range b.c {
			cells[i%zoneCells] += b.c[i].Load()
		}
		for i, v := range cells {
			if v == 0 {
				continue
			}
			p := i % int(numProtos)
			r := (i / int(numProtos)) % numRcodes
			q := i / int(numProtos) / numRcodes
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v),
				b.name, qtypeNames[q], rcodeNames[r], protoNames[p])
		}
	}
}

// collectShards sends the per-shard scalars and the size histograms, the shards summed.
func (m *metrics) collectShards(ch chan<- prometheus.Metric) {
	var trunc, ecs, dropped uint64
	var limited [3]uint64
	var cookies [4]uint64
	for sh := range m.shards {
		s := &m.shards[sh]
		trunc += s.truncated.Load()
		ecs += s.ecs.Load()
		dropped += s.dropped.Load()
		for i := range limited {
			limited[i] += s.limited[i].Load()
		}
		for i := range cookies {
			cookies[i] += s.cookies[i].Load()
		}
	}
	ch <- prometheus.MustNewConstMetric(descLimited, prometheus.CounterValue, float64(limited[rrlDrop]), "drop")
	ch <- prometheus.MustNewConstMetric(descLimited, prometheus.CounterValue, float64(limited[rrlSlip]), "slip")
	for v, name := range map[cookieVerdict]string{cookieClientOnly: "client_only", cookieValid: "valid", cookieBad: "bad"} {
		ch <- prometheus.MustNewConstMetric(descCookies, prometheus.CounterValue, float64(cookies[v]), name)
	}
	for p := proto(0); p < numProtos; p++ {
		var count, sum uint64
		buckets := make(map[float64]uint64, len(sizeBuckets))
		var cum uint64
		for i := 0; i < numSizeBuckets; i++ {
			var v uint64
			for sh := range m.shards {
				v += m.shards[sh].size[p][i].Load()
			}
			cum += v
			if i < len(sizeBuckets) {
				buckets[sizeBuckets[i]] = cum
			}
		}
		count = cum
		for sh := range m.shards {
			sum += m.shards[sh].sizeSum[p].Load()
		}
		ch <- prometheus.MustNewConstHistogram(descSize, count, float64(sum), buckets, protoNames[p])
	}
	ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.CounterValue, float64(trunc))
	ch <- prometheus.MustNewConstMetric(descECS, prometheus.CounterValue, float64(ecs))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(m.panicsPtr.Load()))
}

// collectPolicy sends the answer counters and the pool gauges of the state st.
func collectPolicy(ch chan<- prometheus.Metric, st *state) {
	if set := st.answers; set != nil {
		for i, k := range set.keys {
			ch <- prometheus.MustNewConstMetric(descAnswers, prometheus.CounterValue, float64(set.count(i)),
				k.Service, k.Pool, k.Member)
		}
	}
	if st.snap == nil {
		return
	}
	for _, p := range st.snap.Pools {
		usable := 0
		for _, mem := range p.Members {
			if mem.Weight > 0 && st.health.Up(mem) {
				usable++
			}
		}
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(len(p.Members)), p.Name)
		ch <- prometheus.MustNewConstMetric(descUsable, prometheus.GaugeValue, float64(usable), p.Name)
	}
}
