package policy

// Loads is a Health that also carries the members' load readings, which the
// least_connections method reads. The health view of the DNS server implements it; a
// Health that does not (AllUp) makes least_connections answer as weighted.
type Loads interface {
	Health
	// Load returns m's load (its active connections, merged over the fresh reporters)
	// and whether there is a fresh reading. It must be as cheap as Up: one slice index.
	Load(m *Member) (load float64, fresh bool)
}

// leastConnHeadroom is the capacity least_connections assumes of a member, per unit of
// weight, as a multiple of the pool's mean load per unit of weight. The share of answers
// falls linearly with load: with 1.5, a member at the mean gets its weighted share, an
// idle one three times it, one 25% above the mean half of it, one at 1.5 times the mean
// none. In the herding simulation (leastconn_sim_test.go: 200 resolvers, 4 backends, TTL
// 30s, connections of 60s, readings every 1-5s) 1.5 beat 2 and 3 (gentler) and
// power-of-two-choices at every interval and seed tried; 1.25 did as well at a 2s
// interval but reacts twice as hard to a stale reading, so 1.5 keeps a margin.
const leastConnHeadroom = 1.5

// leastConnSlack is added to every fresh reading, per unit of weight, before comparing:
// a handful of connections is noise (the load reading's own connection, a health check,
// one idle keep-alive), and without it an idle pool of weights 3, 1, 1 reading one
// connection each would send every answer to the member of weight 3 (a third of a
// connection per unit against one). With 5, that pool answers about as weighted (66%,
// 17%, 17%), while at hundreds of connections the slack is lost in the readings.
const leastConnSlack = 5

// leastConn is least_connections: weighted random sampling without replacement in
// proportion to spare capacity, weight × max(0, headroom − (load/weight + slack)/mean) /
// (headroom − 1), where mean is the mean of load/weight + slack over the members with a
// fresh reading, weighted by weight. A member without a fresh reading counts as at the mean
// (its weighted share); when no member has a fresh reading, or all have the same load per
// unit of weight (all idle), it is plain weighted.
//
// Why not "the least loaded member": an answer is cached by a resolver for its TTL and
// reaches all of that resolver's clients, and the readings are an interval old, so every
// resolver asking within one interval would herd onto the same member, overload it and
// leave it on the next reading. Sampling in proportion to spare capacity moves traffic
// by as much as the load differs, and every member keeps a share while it has room.
//
// It reads the health view about twice per candidate and allocates nothing.
func (s *Service) leastConn(items []*Member, n int, h Health) []*Member {
	lh, _ := h.(Loads)
	var sumLoad, sumWeight float64
	if lh != nil {
		for _, m := range items {
			if l, ok := lh.Load(m); ok {
				sumLoad += l + leastConnSlack*float64(m.Weight)
				sumWeight += float64(m.Weight)
			}
		}
	}
	if sumWeight <= 0 {
		w := weightOf
		w.Rand = s.rand
		return w.Pick(items, n)
	}
	mean := sumLoad / sumWeight
	// The shares of up to len(stack) candidates are computed once, on the stack, and
	// swapped with their members; a larger pool recomputes them per draw.
	var stack [32]float64
	var shares []float64
	k := len(items)
	if k <= len(stack) {
		shares = stack[:k]
		for i, m := range items {
			shares[i] = spareShare(m, lh, mean)
		}
	}
	share := func(i int) float64 {
		if shares != nil {
			return shares[i]
		}
		return spareShare(items[i], lh, mean)
	}
	chosen := 0
	for chosen < n && chosen < k {
		var total float64
		for i := chosen; i < k; i++ {
			total += share(i)
		}
		if total <= 0 {
			// Every member left is at or beyond the headroom: draw the rest by weight.
			w := weightOf
			w.Rand = s.rand
			return items[:chosen+len(w.Pick(items[chosen:], n-chosen))]
		}
		r := total * float64(s.rand.Uint64N(1<<53)) / (1 << 53)
		j, last := chosen, chosen
		for ; j < k; j++ {
			sh := share(j)
			if sh > 0 {
				last = j
			}
			if r < sh {
				break
			}
			r -= sh
		}
		if j == k {
			j = last // rounding ran r past the total: the last member with a share
		}
		items[chosen], items[j] = items[j], items[chosen]
		if shares != nil {
			shares[chosen], shares[j] = shares[j], shares[chosen]
		}
		chosen++
	}
	return items[:chosen]
}

// spareShare is m's share of answers under least_connections (see leastConn).
func spareShare(m *Member, lh Loads, mean float64) float64 {
	w := float64(m.Weight)
	l, ok := lh.Load(m)
	if !ok || w == 0 {
		return w
	}
	return w * max(0, leastConnHeadroom-(l/w+leastConnSlack)/mean) / (leastConnHeadroom - 1)
}
