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
// Series exported by Tap.Collector (dnstap.go), registered only when the query log is on:
//
//	glbdns_dnstap_frames_total                         counter  dnstap frames written
//	glbdns_dnstap_dropped_total                        counter  sampled queries not logged
//	    (the queue was full, or the output was down)
//	glbdns_dnstap_errors_total                         counter  failed writes, connections, opens
//	glbdns_dnstap_queue_length                         gauge    sampled queries waiting for the writer
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
			b := sl.blk
			b.c[m.shard(sh)*b.stride+b.off+int(b.first[j]+set.memberPos[mi])].Add(1)
			return
		}
	}
}

// answerKey is the identity of a per-member answer counter.
type answerKey struct{ Service, Pool, Member string }

// svcSlots locates a service's counters in one snapshot: its block, and for each
// candidate pool (its pools, then its fallback, each pool once) the pool as this
// snapshot has it, for answered to find the pool of a member.
type svcSlots struct {
	svc   *policy.Service
	blk   *answerBlock
	pools []int32        // the Member.Index of each candidate pool's first member (-1: none)
	ptrs  []*policy.Pool // the candidate pools, for comparing layouts across snapshots
	at    int            // the position of the block's first counter in the set's order
}

// answerBlock is the answer counters of one service: for each of its candidate pools, one
// per member, in order. A block is shared by every snapshot in which its service has the
// same layout (the same name and candidate pools, each the same object or one of the same
// members: what the policy compiler gives for a service an API write did not touch, even
// when it had to copy it), so that installing a snapshot makes blocks only for the
// services that changed, and the others count on in the counters they had, whichever
// snapshot a query was answered from. The counters live in an arena of shards*stride
// counters, shard-major (shards never share a cache line), at off: a snapshot installed
// whole lays all its blocks out in one arena, as densely as one array; the few blocks of
// a write get an arena of their own.
type answerBlock struct {
	keys   []answerKey
	first  []int32 // the first counter of each candidate pool
	base   []uint64
	c      []atomic.Uint64 // the arena
	stride int
	off    int
}

// count is counter k of the block: what it carried in and every shard's.
func (b *answerBlock) count(k int) uint64 {
	v := b.base[k]
	for i := b.off + k; i < len(b.c); i += b.stride {
		v += b.c[i].Load()
	}
	return v
}

// answerSet is the per-(service, pool, member) answer counters of one snapshot, held by
// the states serving it: one block per service, in the order of Snapshot.Services.
type answerSet struct {
	svcs       []svcSlots // by Service.Ref
	memberPool []int32    // by Member.Index: the Member.Index of its pool's first member
	memberPos  []int32    // by Member.Index: position in its pool

	byKeyOnce sync.Once
	byKey     map[answerKey]int // by position in the set's order, built on first use
	n         int
}

// each calls f with every counter of the set, in order: its position, key and count.
func (set *answerSet) each(f func(i int, key answerKey, n uint64)) {
	for s := range set.svcs {
		sl := &set.svcs[s]
		for k, key := range sl.blk.keys {
			f(sl.at+k, key, sl.blk.count(k))
		}
	}
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
	set := newAnswerSet(snap, prev, len(m.shards), m.retired)
	return zs, slots, set
}

// sameLayout reports whether two services' counters are the same keys in the same order:
// the same candidate pools (the same objects, or pools of the same name and members).
func sameLayout(a, b []*policy.Pool) bool {
	if len(a) != len(b) {
		return false
	}
	for i, p := range a {
		q := b[i]
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

// newAnswerSet lays out the answer counters of snap for shards shards: for each service
// the members of each of its candidate pools (its pools, then its fallback pool), each
// pool once. A service laid out as in prev (nil: none) keeps its block; the others get
// new ones, whose counts start where prev's of the same key ended, or where retired keeps
// them; the counters of prev that snap lacks are retired.
//
// Services are matched with prev's by name, walking both in order: a write adds, removes
// or changes one service and leaves the order of the others, so a look at the next one
// or two finds every match, and only a policy reordered otherwise (an edit of the
// operator's files) builds an index of prev by name. An API write into a large policy
// thus installs its counters in time linear in the services, with no key hashed but
// those of the services that changed.
func newAnswerSet(snap *policy.Snapshot, prev *answerSet, shards int, retired map[answerKey]uint64) *answerSet {
	set := &answerSet{svcs: make([]svcSlots, len(snap.Services)),
		memberPool: make([]int32, len(snap.Members)), memberPos: make([]int32, len(snap.Members))}
	firstOf := func(p *policy.Pool) int32 {
		if len(p.Members) == 0 {
			return -1
		}
		return int32(p.Members[0].Index)
	}
	for _, p := range snap.Pools {
		for j, mem := range p.Members {
			if mem.Index >= 0 && mem.Index < len(set.memberPool) {
				set.memberPool[mem.Index], set.memberPos[mem.Index] = firstOf(p), int32(j)
			}
		}
	}
	ncand := 0
	for _, svc := range snap.Services {
		ncand += len(svc.Pools) + 1
	}
	pools, ptrs := make([]int32, 0, ncand), make([]*policy.Pool, 0, ncand)
	var old []svcSlots
	if prev != nil {
		old = prev.svcs
	}
	carried := make([]bool, len(old))
	var byName map[string]int // prev's services by name, when the walk loses its way
	var changed []int         // set's services that need a new block
	j := 0
	for i, svc := range snap.Services {
		sl := &set.svcs[i]
		sl.svc = svc
		start := len(ptrs)
		for _, p := range svc.Pools {
			if !slices.Contains(ptrs[start:], p) {
				ptrs = append(ptrs, p)
			}
		}
		if p := svc.Fallback; p != nil && !slices.Contains(ptrs[start:], p) {
			ptrs = append(ptrs, p)
		}
		sl.ptrs = ptrs[start:len(ptrs):len(ptrs)]
		for _, p := range sl.ptrs {
			pools = append(pools, firstOf(p))
		}
		sl.pools = pools[start:len(pools):len(pools)]
		match := -1
		switch {
		case old == nil:
		case j < len(old) && old[j].svc.Name == svc.Name:
			match = j
		case j+1 < len(old) && old[j+1].svc.Name == svc.Name:
			match = j + 1 // old[j] was removed
		case j < len(old) && i+1 < len(snap.Services) && snap.Services[i+1].Name == old[j].svc.Name:
			// svc was added
		default:
			if byName == nil {
				byName = make(map[string]int, len(old))
				for k := range old {
					byName[old[k].svc.Name] = k
				}
			}
			if k, ok := byName[svc.Name]; ok {
				match = k
			}
		}
		if match >= 0 {
			j = match + 1
			if sameLayout(old[match].ptrs, sl.ptrs) {
				sl.blk = old[match].blk
				carried[match] = true
			}
		}
		if sl.blk == nil {
			changed = append(changed, i)
		}
	}
	for i := range set.svcs {
		set.svcs[i].at = set.n
		if b := set.svcs[i].blk; b != nil {
			set.n += len(b.keys)
		} else {
			for _, p := range set.svcs[i].ptrs {
				set.n += len(p.Members)
			}
		}
	}
	if len(changed) == 0 && len(carried) == len(set.svcs) && !slices.Contains(carried, false) {
		return set
	}
	// The counts of prev's blocks that no service of snap keeps, by key.
	gone := map[answerKey]uint64{}
	for k := range old {
		if !carried[k] {
			b := old[k].blk
			for c, key := range b.keys {
				gone[key] = b.count(c)
			}
		}
	}
	// One arena for the new blocks.
	total := 0
	for _, i := range changed {
		for _, p := range set.svcs[i].ptrs {
			total += len(p.Members)
		}
	}
	stride := (total + 7) &^ 7 // 8 counters of 8 bytes per 64-byte line
	arena := make([]atomic.Uint64, shards*stride)
	keys := make([]answerKey, 0, total)
	base := make([]uint64, total)
	firsts := make([]int32, 0, len(changed)+total)
	blocks := make([]answerBlock, len(changed))
	for n, i := range changed {
		sl := &set.svcs[i]
		b := &blocks[n]
		b.c, b.stride, b.off = arena, stride, len(keys)
		fstart := len(firsts)
		for _, p := range sl.ptrs {
			firsts = append(firsts, int32(len(keys)-b.off))
			for _, mem := range p.Members {
				keys = append(keys, answerKey{sl.svc.Name, p.Name, mem.Name})
			}
		}
		b.first = firsts[fstart:len(firsts):len(firsts)]
		b.keys = keys[b.off:len(keys):len(keys)]
		b.base = base[b.off:len(keys):len(keys)]
		for c, key := range b.keys {
			if v, ok := gone[key]; ok {
				b.base[c] = v
				delete(gone, key)
			} else {
				b.base[c] = retired[key]
			}
		}
		sl.blk = b
	}
	for key, v := range gone {
		retired[key] = v
	}
	return set
}

// index is the position of key's counter in the set's order, or -1; its map is built on
// first use (the status page's), not for every snapshot installed.
func (set *answerSet) index(key answerKey) int {
	set.byKeyOnce.Do(func() {
		set.byKey = make(map[answerKey]int, set.n)
		for s := range set.svcs {
			sl := &set.svcs[s]
			for k, key := range sl.blk.keys {
				set.byKey[key] = sl.at + k
			}
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
	set.each(func(_ int, key answerKey, n uint64) { m.retired[key] = n })
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
	set.each(func(i int, _ answerKey, n uint64) { a.Counts[i] = n })
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
		descDropped, descLimited, descCookies, descPanics, descAnswers, descMembers, descUsable, descXDPDropped} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.metrics.collectRequests(ch)
	c.metrics.collectShards(ch)
	(*Server)(c).collectXDP(ch)
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
		set.each(func(_ int, k answerKey, n uint64) {
			ch <- prometheus.MustNewConstMetric(descAnswers, prometheus.CounterValue, float64(n), k.Service, k.Pool, k.Member)
		})
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
