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
