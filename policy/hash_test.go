package policy

import (
	"fmt"
	"math/rand/v2"
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
		return hashSources(files, false, base, func(i int) bool { return mask&(1<<i) != 0 },
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

// TestAscending: Compiler.ascending says whether files are sorted with no two of one
// name, whatever the records it has, for random file lists against random records.
func TestAscending(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := make([]string, 30)
	for i := range names {
		names[i] = fmt.Sprintf("f%02d.hcl", i)
	}
	pick := func(sorted bool) []string {
		var out []string
		for _, n := range names {
			if r.IntN(3) > 0 {
				out = append(out, n)
			}
		}
		if !sorted && len(out) > 1 {
			i, j := r.IntN(len(out)), r.IntN(len(out))
			out[i], out[j] = out[j], out[i]
		}
		if r.IntN(8) == 0 && len(out) > 1 {
			k := r.IntN(len(out) - 1)
			out[k+1] = out[k] // two of one name
		}
		return out
	}
	for range 2000 {
		cc := &Compiler{}
		for _, n := range pick(true) {
			cc.files = append(cc.files, &fileRecord{name: n})
		}
		in := pick(r.IntN(2) == 0)
		files := make([]File, len(in))
		for i, n := range in {
			files[i] = File{Name: n}
		}
		want := true
		for i := 1; i < len(in); i++ {
			want = want && in[i-1] < in[i]
		}
		if got := cc.ascending(files); got != want {
			t.Fatalf("ascending(%v) with records %v = %v, want %v", in, cc.files, got, want)
		}
	}
}
