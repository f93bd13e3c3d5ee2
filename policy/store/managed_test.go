package store

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// TestDocFilesFollowWrites: the sorted list of the policy documents that a managed value
// merges from the one it was cloned from and its changes is the list made from its
// documents, after random adds, replacements and removals (drains and documents that do
// not decode left out), and the values it was cloned from keep theirs.
func TestDocFilesFollowWrites(t *testing.T) {
	s := &Store{b: &DirBackend{Dir: "/managed"}}
	full := func(m *managed) []policy.File {
		var out []policy.File
		m.docs.each(func(_ string, d *mdoc) {
			if d.inPolicy() {
				out = append(out, d.file())
			}
		})
		slices.SortFunc(out, func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
	docs := map[string][]byte{}
	for i := range 50 {
		docs[fmt.Sprintf("pool-p%d.hcl", i)] = encodePool(poolNamed(fmt.Sprintf("p%d", i)))
	}
	docs[drainsDoc] = []byte(`{"drains": []}`)
	m := s.decodeManaged(docs, 0, nil)
	r := rand.New(rand.NewPCG(1, 2))
	var history []*managed
	var lists [][]policy.File
	for step := range 200 {
		next := m.clone()
		for range 1 + r.IntN(3) {
			name := fmt.Sprintf("pool-p%d.hcl", r.IntN(70))
			switch r.IntN(4) {
			case 0:
				next.remove(name)
			case 1:
				d := s.decodeDoc(name, []byte("pool {"))
				next.add(name, d)
			default:
				d := s.decodeDoc(name, encodePool(poolNamed(fmt.Sprintf("q%d", step))))
				next.add(name, d)
			}
		}
		if r.IntN(5) == 0 {
			next.docFiles() // listed, then changed again
			name := fmt.Sprintf("pool-p%d.hcl", r.IntN(70))
			next.add(name, s.decodeDoc(name, encodePool(poolNamed(name))))
		}
		if got, want := next.docFiles(), full(next); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: docFiles has %d files, want %d", step, len(got), len(want))
		}
		history, lists = append(history, next), append(lists, slices.Clone(next.docFiles()))
		m = next
	}
	for i, h := range history {
		if !reflect.DeepEqual(h.docFiles(), lists[i]) {
			t.Fatalf("the list of value %d changed after later writes", i)
		}
	}
}

func poolNamed(name string) api.Pool {
	p := api.Pool{Name: name, Members: []api.Member{{Name: "a", Address: "192.0.2.1"}}}
	normalizePool(&p)
	return p
}
