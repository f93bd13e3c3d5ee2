package policy

import (
	"fmt"
	"testing"
)

// TestHashSourcesCounted: the Hash is the same whether a file's leaf comes from leafAt or
// was counted in the base beforehand (as a Compiler counts its records'), for files of
// one name (the last counts) and a policy file that a zone file of the same name
// replaces; and it changes with the name or contents of any file that counts (not the
// first of two of one name, nor the policy file a zone file replaces).
func TestHashSourcesCounted(t *testing.T) {
	files := []File{{Name: "a.hcl", Data: []byte("a")}, {Name: "b.hcl", Data: []byte("b1")},
		{Name: "b.hcl", Data: []byte("b2")}, {Name: "c.zone", Data: []byte("c")}, {Name: "d.hcl", Data: []byte("d")}}
	zones := []string{"c.zone", "e.zone"}
	zoneData := func(p string) []byte { return []byte("zone " + p) }
	hash := func(files []File, mask int) ([]string, string) {
		var base leafSum
		for i := range files {
			if mask&(1<<i) != 0 {
				l := leafOf(files[i].Name, files[i].digest())
				base.add(&l)
			}
		}
		return hashSources(files, base, func(i int) bool { return mask&(1<<i) != 0 },
			func(i int) leaf { return leafOf(files[i].Name, files[i].digest()) }, zones, zoneData)
	}
	names, want := hash(files, 0)
	if got := fmt.Sprint(names); got != "[a.hcl b.hcl c.zone d.hcl e.zone]" {
		t.Errorf("names %s", got)
	}
	for mask := range 1 << len(files) {
		if _, got := hash(files, mask); got != want {
			t.Errorf("counted %05b: hash %s, want %s", mask, got, want)
		}
	}
	for i := range files {
		for _, f := range []File{{Name: files[i].Name + "x", Data: files[i].Data}, {Name: files[i].Name, Data: append([]byte("x"), files[i].Data...)}} {
			other := append([]File(nil), files...)
			other[i] = f
			if _, got := hash(other, 0); got == want && i != 1 && i != 3 {
				t.Errorf("file %d changed to %q %q: the same hash", i, f.Name, f.Data)
			}
		}
	}
}
