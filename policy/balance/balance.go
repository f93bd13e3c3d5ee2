// Package balance holds the pure member selection algorithms of glbdns: round robin,
// weighted random sampling and rendezvous hashing. They know nothing of DNS, health or
// policy: each works on a slice of candidates that the caller has already filtered, and
// reorders it in place so that the chosen items come first. Working in place on the
// caller's reusable buffer is what keeps the query hot path free of allocations.
package balance

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
)

// Rand is the randomness the weighted method draws from. Production uses Global; tests
// pass a seeded *rand.Rand (math/rand/v2) so distributions are reproducible.
type Rand interface {
	// Uint64N returns a uniform random number in [0, n); n > 0.
	Uint64N(n uint64) uint64
}

// Global draws from math/rand/v2's top-level source: a per-goroutine ChaCha8 generator,
// lock-free, safe for concurrent use.
type Global struct{}

// Uint64N implements Rand.
func (Global) Uint64N(n uint64) uint64 { return rand.Uint64N(n) }

// RoundRobin is round-robin rotation driven by a lock-free atomic cursor: each query
// takes the next starting point, so N queries over k items give each item N/k answers.
type RoundRobin[T any] struct {
	cursor atomic.Uint64
}

// Pick rotates items in place so that the n items starting at the next cursor position
// come first, and returns them (fewer when len(items) < n).
func (r *RoundRobin[T]) Pick(items []T, n int) []T {
	k := len(items)
	if k == 0 || n <= 0 {
		return items[:0]
	}
	start := int((r.cursor.Add(1) - 1) % uint64(k))
	rotate(items, start)
	return items[:min(n, k)]
}

// rotate moves items[start] to the front keeping the cyclic order (three reversals, no
// scratch space).
func rotate[T any](s []T, start int) {
	if start == 0 {
		return
	}
	reverse(s[:start])
	reverse(s[start:])
	reverse(s)
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// Weighted is weighted random sampling without replacement: n successive draws, each
// choosing among the items not yet chosen in proportion to their weights.
type Weighted[T any] struct {
	// Rand is the source of randomness (Global in production).
	Rand Rand
	// Weight of an item; items of weight 0 are never chosen unless every item weighs 0,
	// in which case the items are drawn uniformly.
	Weight func(T) uint64
}

// Pick reorders items in place so the chosen items come first and returns them: at most
// n, and only items of positive weight (unless all weigh 0).
func (w Weighted[T]) Pick(items []T, n int) []T {
	k := len(items)
	if k == 0 || n <= 0 {
		return items[:0]
	}
	var total uint64
	for _, it := range items {
		total += w.Weight(it)
	}
	if total == 0 {
		// Every item is drained: draw uniformly (the caller decided to fail open).
		n = min(n, k)
		for i := range n {
			j := i + int(w.Rand.Uint64N(uint64(k-i)))
			items[i], items[j] = items[j], items[i]
		}
		return items[:n]
	}
	chosen := 0
	for chosen < n && total > 0 {
		r := w.Rand.Uint64N(total)
		j := chosen
		for ; j < k-1; j++ {
			wt := w.Weight(items[j])
			if r < wt {
				break
			}
			r -= wt
		}
		total -= w.Weight(items[j])
		items[chosen], items[j] = items[j], items[chosen]
		chosen++
	}
	return items[:chosen]
}

// Rendezvous is highest-random-weight (rendezvous) hashing: every item scores
// Score(key, ID(item)) and the highest scores win, so removing one of k items moves only
// the keys it held (about 1/k) and they return when it comes back.
//
// With Weight set it is weighted rendezvous hashing (Schindelhauer and Schomaker, "Weighted
// distributed hash tables", 2005; the form Resch gives in "New Hashing Algorithms for
// Data Storage", 2015): the score is w / -ln(u), u the item's Score mapped into (0, 1).
// -ln(u) is exponentially distributed, so an item wins a key with probability w/Σw, and
// since an item's score for a key depends on nothing but the key, the item and its own
// weight, removing an item still moves only the keys it held. When all weights are equal
// the order is exactly the unweighted one (w/-ln(u) rises with u, and a tie between equal
// floats falls back to the integer score), so giving a pool weights moves no client of
// a pool whose weights are all the same.
type Rendezvous[T any] struct {
	// ID is the item's stable identity hash (KeyHash of "pool/member"), fixed across
	// reloads and processes.
	ID func(T) uint64
	// Weight, when not nil, weights the items; an item of weight 0 counts as 1 (the
	// caller filters out weight 0 items unless it fails open with all of them).
	Weight func(T) uint64
}

// scoreBuf is how many weighted scores Pick keeps on its stack: beyond that it computes
// them again in every round of its selection, which costs logarithms but no allocation.
const scoreBuf = 32

// Pick reorders items in place so the n best-scoring items for key come first, best
// first, and returns them.
func (h Rendezvous[T]) Pick(key uint64, items []T, n int) []T {
	k := len(items)
	n = min(n, k)
	if h.Weight != nil && h.equalWeights(items) {
		h.Weight = nil // the same order as weighted, without a logarithm per item
	}
	var buf [scoreBuf]float64
	var ws []float64 // the weighted scores of items, when they fit buf
	if h.Weight != nil && k <= scoreBuf {
		ws = buf[:k]
		for i, it := range items {
			ws[i] = h.weighted(key, it)
		}
	}
	for i := range n {
		best := i
		for j := i + 1; j < k; j++ {
			if h.beats(key, items, ws, j, best) {
				best = j
			}
		}
		items[i], items[best] = items[best], items[i]
		if ws != nil {
			ws[i], ws[best] = ws[best], ws[i]
		}
	}
	return items[:n]
}

// equalWeights reports whether every item has the weight of the first (as weighted counts
// them: 0 as 1).
func (h Rendezvous[T]) equalWeights(items []T) bool {
	for i := 1; i < len(items); i++ {
		if max(h.Weight(items[i]), 1) != max(h.Weight(items[0]), 1) {
			return false
		}
	}
	return true
}

// beats reports whether items[j] ranks above items[b]: the higher weighted score (when
// weighted), then the higher integer score, then the lower ID, so that the order is total
// and the same on every node.
func (h Rendezvous[T]) beats(key uint64, items []T, ws []float64, j, b int) bool {
	if h.Weight != nil {
		var sj, sb float64
		if ws != nil {
			sj, sb = ws[j], ws[b]
		} else {
			sj, sb = h.weighted(key, items[j]), h.weighted(key, items[b])
		}
		if sj != sb {
			return sj > sb
		}
	}
	idj, idb := h.ID(items[j]), h.ID(items[b])
	if s, t := Score(key, idj), Score(key, idb); s != t {
		return s > t
	}
	return idj < idb
}

// weighted is the item's weighted score for key: w / -ln(u), u = Score in (0, 1).
func (h Rendezvous[T]) weighted(key uint64, it T) float64 {
	return WeightedScore(Score(key, h.ID(it)), max(h.Weight(it), 1))
}

// WeightedScore maps a rendezvous score s and a weight w > 0 to w / -ln(u), where u is s
// as a number in (0, 1): the top 53 bits, offset by half a step so that u is never 0 nor 1.
func WeightedScore(s, w uint64) float64 {
	u := (float64(s>>11) + 0.5) * 0x1p-53
	return float64(w) / -math.Log(u)
}

// FNV-1a 64 parameters (http://www.isthe.com/chongo/tech/comp/fnv/). FNV-1a is used
// rather than hash/maphash because maphash is seeded per process: rendezvous scores must
// be identical on every glbdns node and across restarts, or clients would move.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// KeyHash is FNV-1a 64 of b: deterministic across processes and machines.
func KeyHash(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// StringHash is KeyHash of a string, without converting it to bytes.
func StringHash(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// Score combines a key hash and an item identity hash into a rendezvous score. FNV alone
// mixes its last bytes poorly, so the pair goes through the splitmix64 finalizer (a
// bijection with full avalanche): scores of one key over different items are
// independent, which is what makes rendezvous hashing balanced.
func Score(key, id uint64) uint64 {
	x := key ^ (id * 0x9e3779b97f4a7c15)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
