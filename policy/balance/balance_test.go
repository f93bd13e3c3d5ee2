package balance

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRoundRobinRotates(t *testing.T) {
	var rr RoundRobin[int]
	for i, want := range [][]int{{0, 1}, {1, 2}, {2, 0}, {0, 1}} {
		items := []int{0, 1, 2}
		if got := rr.Pick(items, 2); !slices.Equal(got, want) {
			t.Errorf("query %d: %v, want %v", i, got, want)
		}
	}
	if got := rr.Pick(nil, 1); len(got) != 0 {
		t.Errorf("empty pick %v", got)
	}
}

func TestWeightedWithoutReplacement(t *testing.T) {
	w := Weighted[int]{Rand: rand.New(rand.NewPCG(3, 4)), Weight: func(i int) uint64 { return uint64(i) }}
	for range 500 {
		got := w.Pick([]int{0, 5, 1, 0, 2}, 4)
		// Only the three positive weights can be chosen, each once.
		if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, []int{1, 2, 5}) {
			t.Fatalf("picked %v, want 1, 2, 5 in some order", got)
		}
	}
	zero := Weighted[int]{Rand: rand.New(rand.NewPCG(3, 4)), Weight: func(int) uint64 { return 0 }}
	if got := zero.Pick([]int{7, 8, 9}, 2); len(got) != 2 || got[0] == got[1] {
		t.Errorf("all-zero pick %v, want 2 distinct items", got)
	}
}

func TestRendezvousTopN(t *testing.T) {
	h := Rendezvous[uint64]{ID: func(i uint64) uint64 { return StringHash(string(rune('a' + i))) }}
	key := KeyHash([]byte{192, 0, 2, 0, 24})
	all := h.Pick(key, []uint64{0, 1, 2, 3, 4}, 5)
	for i := 1; i < len(all); i++ {
		if Score(key, h.ID(all[i-1])) < Score(key, h.ID(all[i])) {
			t.Fatalf("not sorted by score: %v", all)
		}
	}
	// The order of the input does not matter.
	if got := h.Pick(key, []uint64{4, 3, 2, 1, 0}, 2); !slices.Equal(got, all[:2]) {
		t.Errorf("top 2 %v, want %v", got, all[:2])
	}
}

func TestKeyHashIsFNV1a(t *testing.T) {
	// Published FNV-1a 64 test vectors: the hash must never change, or every client
	// of every client_subnet_hash service would move on upgrade.
	for in, want := range map[string]uint64{"": 0xcbf29ce484222325, "a": 0xaf63dc4c8601ec8c, "foobar": 0x85944171f73967e8} {
		if got := KeyHash([]byte(in)); got != want || StringHash(in) != want {
			t.Errorf("KeyHash(%q) = %#x, want %#x", in, got, want)
		}
	}
}

// subnetKey is the key client_subnet_hash hashes for the i-th /24 of 10.0.0.0/8.
func subnetKey(i int) uint64 {
	return KeyHash([]byte{10, byte(i >> 8), byte(i), 0, 24})
}

type wItem struct {
	id string
	w  uint64
}

var wHRW = Rendezvous[wItem]{ID: func(it wItem) uint64 { return StringHash(it.id) }, Weight: func(it wItem) uint64 { return it.w }}

func TestWeightedRendezvousShares(t *testing.T) {
	const keys = 10000
	for _, tc := range []struct {
		name    string
		weights []uint64
	}{
		{"1-2-3-4", []uint64{1, 2, 3, 4}},
		{"1-1-1-1", []uint64{1, 1, 1, 1}},
		{"10-1", []uint64{10, 1}},
		{"100-300-600", []uint64{100, 300, 600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := make([]wItem, len(tc.weights))
			var total uint64
			for i, w := range tc.weights {
				items[i] = wItem{id: "pool/m" + string(rune('a'+i)), w: w}
				total += w
			}
			got := map[string]int{}
			buf := make([]wItem, len(items))
			for k := range keys {
				copy(buf, items)
				got[wHRW.Pick(subnetKey(k), buf, 1)[0].id]++
			}
			for _, it := range items {
				share, want := float64(got[it.id])/keys, float64(it.w)/float64(total)
				t.Logf("%s weight %d: %.2f%% (want %.2f%%)", it.id, it.w, 100*share, 100*want)
				if share < want-0.03 || share > want+0.03 {
					t.Errorf("%s: share %.4f, want %.4f ± 0.03", it.id, share, want)
				}
			}
		})
	}
}

func TestWeightedRendezvousMovesOnlyTheLeaver(t *testing.T) {
	const keys = 10000
	items := []wItem{{"p/a", 1}, {"p/b", 2}, {"p/c", 3}, {"p/d", 4}}
	for gone := range items {
		rest := slices.Delete(slices.Clone(items), gone, gone+1)
		moved, held := 0, 0
		for k := range keys {
			before := wHRW.Pick(subnetKey(k), slices.Clone(items), 1)[0]
			after := wHRW.Pick(subnetKey(k), slices.Clone(rest), 1)[0]
			if before == items[gone] {
				held++
				continue
			}
			if after != before {
				moved++
			}
		}
		t.Logf("removing %s (held %d of %d subnets): %d other subnets moved", items[gone].id, held, keys, moved)
		if moved != 0 {
			t.Errorf("removing %s moved %d subnets it did not hold", items[gone].id, moved)
		}
	}
}

func TestWeightedRendezvousEqualWeightsIsUnweighted(t *testing.T) {
	// Equal weights must give the unweighted order exactly, so that turning weights on
	// for client_subnet_hash moved no client of a pool of equal weights.
	plain := Rendezvous[wItem]{ID: wHRW.ID}
	items := []wItem{{"p/a", 5}, {"p/b", 5}, {"p/c", 5}, {"p/d", 5}, {"p/e", 5}}
	for k := range 2000 {
		a := wHRW.Pick(subnetKey(k), slices.Clone(items), 5)
		b := plain.Pick(subnetKey(k), slices.Clone(items), 5)
		if !slices.Equal(a, b) {
			t.Fatalf("key %d: weighted %v, unweighted %v", k, a, b)
		}
	}
}

func TestWeightedRendezvousLargeSet(t *testing.T) {
	// More items than Pick keeps scores for: the same order as computed with the buffer.
	items := make([]wItem, scoreBuf+8)
	for i := range items {
		items[i] = wItem{id: "p/" + string(rune('A'+i)), w: uint64(i%5 + 1)}
	}
	for k := range 200 {
		all := wHRW.Pick(subnetKey(k), slices.Clone(items), len(items))
		for i := 1; i < len(all); i++ {
			if wHRW.beats(subnetKey(k), all, nil, i, i-1) {
				t.Fatalf("key %d: not sorted at %d", k, i)
			}
		}
	}
}

func BenchmarkWeightedRendezvous(b *testing.B) {
	items := []wItem{{"p/a", 1}, {"p/b", 2}, {"p/c", 3}, {"p/d", 4}}
	buf := make([]wItem, len(items))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		copy(buf, items)
		wHRW.Pick(subnetKey(i), buf, 2)
	}
}
