package policy

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// loadView is a Health with load readings, indexed by Member.Index (NaN: no fresh one).
type loadView []float64

func (v loadView) Up(*Member) bool { return true }

func (v loadView) Load(m *Member) (float64, bool) {
	if m.Index < len(v) && !math.IsNaN(v[m.Index]) {
		return v[m.Index], true
	}
	return 0, false
}

// herdParams describe the herding simulation: resolvers caching one answer each for the
// TTL, their clients opening connections at a steady rate, each connection lasting a
// random (exponential) time, and the backends' active connections read every interval
// and delivered a little later, as healthd and glbdns do.
type herdParams struct {
	resolvers int
	backends  int
	ttl       float64 // seconds a resolver caches an answer
	rate      float64 // connections per second, over all resolvers
	duration  float64 // mean connection lifetime, seconds
	interval  float64 // seconds between load readings of a backend
	delay     float64 // seconds from a reading to the answers that use it
	skew      float64 // σ of the log-normal spread of the resolvers' client populations
	warmup    float64 // seconds before measuring
	measure   float64 // seconds measured
	seed      uint64
}

// herdResult is the ratio of the most to the least loaded backend's active connections,
// sampled every second of the measurement: its mean, 99th percentile and maximum.
type herdResult struct{ mean, p99, max float64 }

// picker answers a resolver's query given the readings it may see.
type picker func(readings []float64) int

// simulateHerd runs the simulation with pick choosing each answer.
func simulateHerd(p herdParams, pick picker) herdResult {
	const dt = 0.1
	rng := rand.New(rand.NewPCG(p.seed, 7))
	rates := make([]float64, p.resolvers)
	var sum float64
	for i := range rates {
		rates[i] = math.Exp(p.skew * rng.NormFloat64())
		sum += rates[i]
	}
	for i := range rates {
		rates[i] *= p.rate / sum
	}
	answer := make([]int, p.resolvers)
	expiry := make([]float64, p.resolvers)
	for i := range expiry {
		answer[i] = rng.IntN(p.backends)
		expiry[i] = rng.Float64() * p.ttl // caches filled at random moments before the start
	}
	// ends[t%len][b]: connections of backend b ending at step t (lifetimes capped at len).
	wheel := int(10 * p.duration / dt)
	ends := make([][]int, wheel)
	for i := range ends {
		ends[i] = make([]int, p.backends)
	}
	active := make([]int, p.backends)
	// Each backend is read every interval at its own phase; history keeps the counts for
	// the delay.
	histLen := int((p.interval+p.delay)/dt) + 2
	history := make([][]int, histLen)
	for i := range history {
		history[i] = make([]int, p.backends)
	}
	readings := make([]float64, p.backends)
	var ratios []float64
	steps := int((p.warmup + p.measure) / dt)
	for step := range steps {
		now := float64(step) * dt
		copy(history[step%histLen], active)
		// The reading visible now: taken at the last reading moment at least delay ago.
		for b := range readings {
			phase := p.interval * float64(b) / float64(p.backends)
			at := math.Floor((now-p.delay-phase)/p.interval)*p.interval + phase
			back := int(math.Round((now - at) / dt))
			if at >= 0 && back < histLen {
				readings[b] = float64(history[(step-back+histLen)%histLen][b])
			}
		}
		for r := range p.resolvers {
			if now >= expiry[r] {
				answer[r] = pick(readings)
				expiry[r] = now + p.ttl
			}
			for n := poisson(rng, rates[r]*dt); n > 0; n-- {
				b := answer[r]
				active[b]++
				life := min(wheel-1, max(1, int(rng.ExpFloat64()*p.duration/dt)))
				ends[(step+life)%wheel][b]++
			}
		}
		for b, n := range ends[step%wheel] {
			active[b] -= n
			ends[step%wheel][b] = 0
		}
		if now >= p.warmup && step%int(1/dt) == 0 {
			lo, hi := slices.Min(active), slices.Max(active)
			ratios = append(ratios, float64(hi)/float64(max(lo, 1)))
		}
	}
	slices.Sort(ratios)
	var total float64
	for _, r := range ratios {
		total += r
	}
	return herdResult{mean: total / float64(len(ratios)), p99: ratios[len(ratios)*99/100], max: ratios[len(ratios)-1]}
}

// poisson draws from a Poisson distribution of a small mean (Knuth's method).
func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// herdPolicy is the simulation's policy: four backends of weight 1 in one pool.
const herdPolicy = `
pool "p" {
  member "b0" {
    address = "192.0.2.10"
  }
  member "b1" {
    address = "192.0.2.11"
  }
  member "b2" {
    address = "192.0.2.12"
  }
  member "b3" {
    address = "192.0.2.13"
  }
  load {
    type   = "number"
    path   = "/load"
    interval = "2s"
    timeout  = "1s"
  }
}

service "lc.glb.example.com" {
  policy = "least_connections"
  pools  = ["p"]
  ttl    = 30
}

service "rr.glb.example.com" {
  policy = "round_robin"
  pools  = ["p"]
  ttl    = 30
}
`

// TestHerding simulates 200 resolvers in front of 4 backends (herdParams below) and
// compares least_connections with round robin, with always answering the least loaded
// backend and with power-of-two-choices (reading as least_connections does). It logs the ratio of the most to
// the least loaded backend's connections in steady state, sampled every second (mean,
// 99th percentile, maximum), and requires least_connections to keep the mean within 1.3
// and to beat both others on mean and p99. The resolvers' client populations are
// log-normal (σ = 1): the largest resolvers pin a few per cent of all connections to one
// backend for a TTL, which no DNS answer can undo, so the p99 stays above the mean
// (about 1.3 with this seed; 1.28–1.38 over seeds 1–3 and intervals 1s, 2s, 5s). Rerun with
//
//	go test -run TestHerding -v ./policy/
func TestHerding(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	p := herdParams{resolvers: 200, backends: 4, ttl: 30, rate: 200, duration: 60, interval: 2, delay: 1,
		skew: 1, warmup: 600, measure: 1800, seed: 1}
	snap := load(t, herdPolicy)
	lcSvc, rrSvc := service(t, snap, "lc.glb.example.com."), service(t, snap, "rr.glb.example.com.")
	index := map[*Member]int{}
	for i, m := range snap.Pools[0].Members {
		index[m] = i
	}
	var buf []*Member
	viaService := func(s *Service) picker {
		return func(readings []float64) int {
			sel := s.Select(client4("198.51.100.1"), 1, loadView(readings), buf[:0])
			buf = sel.Members[:0]
			return index[sel.Members[0]]
		}
	}
	leastLoaded := func(readings []float64) int {
		best := 0
		for b, l := range readings {
			if l < readings[best] {
				best = b
			}
		}
		return best
	}
	p2cRand := rand.New(rand.NewPCG(3, 3))
	powerOfTwo := func(readings []float64) int { // the better of two drawn at random
		a, b := p2cRand.IntN(len(readings)), p2cRand.IntN(len(readings))
		if readings[b] < readings[a] {
			return b
		}
		return a
	}
	results := map[string]herdResult{}
	for _, c := range []struct {
		name string
		pick picker
	}{{"least_connections", viaService(lcSvc)}, {"round_robin", viaService(rrSvc)}, {"always_least_loaded", leastLoaded}, {"power_of_two", powerOfTwo}} {
		r := simulateHerd(p, c.pick)
		results[c.name] = r
		t.Logf("%-20s most/least loaded backend: mean %.3f  p99 %.3f  max %.3f", c.name, r.mean, r.p99, r.max)
	}
	lc, rr, least := results["least_connections"], results["round_robin"], results["always_least_loaded"]
	if lc.mean > 1.3 {
		t.Errorf("least_connections: the most loaded backend carries %.3f times the least loaded (mean), want at most 1.3", lc.mean)
	}
	if lc.mean >= rr.mean || lc.mean >= least.mean || lc.p99 >= rr.p99 || lc.p99 >= least.p99 {
		t.Errorf("least_connections (mean %.3f, p99 %.3f) does not beat round robin (%.3f, %.3f) and always-least-loaded (%.3f, %.3f)",
			lc.mean, lc.p99, rr.mean, rr.p99, least.mean, least.p99)
	}
}
