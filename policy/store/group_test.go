package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// countingBackend is a real backend that counts its writes and the documents in them.
type countingBackend struct {
	Backend
	mu      sync.Mutex
	applies []int
}

func (b *countingBackend) Apply(rev int64, changes []Change) (int64, error) {
	b.mu.Lock()
	b.applies = append(b.applies, len(changes))
	b.mu.Unlock()
	return b.Backend.Apply(rev, changes)
}

// queueWrites starts the writes while the store's lock is held, one after another as
// each is queued, and releases the lock: the next committer finds them all queued, in
// order. It returns their errors, in the order of writes.
func queueWrites(t *testing.T, s *Store, writes []func() error) []error {
	t.Helper()
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	s.mu.Lock()
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
		for tries := 0; ; tries++ {
			s.qmu.Lock()
			n := len(s.queue)
			s.qmu.Unlock()
			if n == i+1 {
				break
			}
			if tries == 10000 {
				s.mu.Unlock()
				t.Fatalf("write %d not queued after 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	s.mu.Unlock()
	wg.Wait()
	return errs
}

func newCountingStore(t *testing.T) (*Store, *countingBackend, *published) {
	t.Helper()
	s, _ := newStore(t)
	cb := &countingBackend{Backend: s.b}
	s.b = cb
	pub := &published{}
	s.Publish(pub.publish)
	return s, cb, pub
}

func TestGroupCommit(t *testing.T) {
	s, cb, pub := newCountingStore(t)
	var writes []func() error
	for i := range 10 {
		writes = append(writes, func() error {
			_, _, err := s.PutPool(webPool(fmt.Sprintf("g%d", i)), Precondition{Create: true})
			return err
		})
	}
	for i, err := range queueWrites(t, s, writes) {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if len(cb.applies) != 1 || cb.applies[0] != 10 || len(pub.snaps) != 1 {
		t.Fatalf("10 queued writes: backend writes %v, %d publications; want one of 10, one", cb.applies, len(pub.snaps))
	}
	for i := range 10 {
		if pub.snaps[0].PoolByName[fmt.Sprintf("g%d", i)] == nil {
			t.Errorf("pool g%d not in the published snapshot", i)
		}
		if _, err := s.GetPool(fmt.Sprintf("g%d", i)); err != nil {
			t.Errorf("pool g%d: %v", i, err)
		}
	}
}

// A write of a group that the others do not make invalid is refused alone; one that makes
// the group's policy invalid sends the group one at a time, each with its own verdict.
func TestGroupCommitVerdicts(t *testing.T) {
	s, cb, _ := newCountingStore(t)
	put := func(name string, pre Precondition) func() error {
		return func() error { _, _, err := s.PutPool(webPool(name), pre); return err }
	}
	errs := queueWrites(t, s, []func() error{
		put("a", Precondition{Create: true}),
		put("a", Precondition{Create: true}), // the first of the group made it
		put("b", Precondition{IfMatch: "*"}), // b does not exist
		put("c", Precondition{}),
	})
	if errs[0] != nil || !errors.Is(errs[1], ErrExists) || !errors.Is(errs[2], ErrPreconditionFailed) || errs[3] != nil {
		t.Fatalf("verdicts %v; want nil, ErrExists, ErrPreconditionFailed, nil", errs)
	}
	if len(cb.applies) != 1 || cb.applies[0] != 2 {
		t.Fatalf("backend writes %v; want one, of a and c", cb.applies)
	}

	cb.applies = nil
	errs = queueWrites(t, s, []func() error{
		put("d", Precondition{}),
		func() error {
			_, _, err := s.PutService(api.Service{Name: "x.glb.example.com", Pools: []string{"missing"}}, Precondition{})
			return err
		},
		put("e", Precondition{}),
	})
	if errs[0] != nil || !errors.Is(errs[1], ErrUnknownRef) || errs[2] != nil {
		t.Fatalf("verdicts %v; want nil, ErrUnknownRef, nil", errs)
	}
	if len(cb.applies) != 2 {
		t.Fatalf("backend writes %v; want d and e one at a time", cb.applies)
	}
	for _, name := range []string{"a", "c", "d", "e"} {
		if _, err := s.GetPool(name); err != nil {
			t.Errorf("pool %s: %v", name, err)
		}
	}
	if _, err := s.GetService("x.glb.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused service: %v, want ErrNotFound", err)
	}
}

// Two writes of one document in a group are one change: the later one.
func TestGroupCommitSameDocument(t *testing.T) {
	s, cb, _ := newCountingStore(t)
	second := webPool("w")
	second.Region = "eu"
	errs := queueWrites(t, s, []func() error{
		func() error { _, _, err := s.PutPool(webPool("w"), Precondition{}); return err },
		func() error { _, _, err := s.PutPool(second, Precondition{}); return err },
	})
	if errs[0] != nil || errs[1] != nil || len(cb.applies) != 1 || cb.applies[0] != 1 {
		t.Fatalf("errors %v, backend writes %v; want none, one of one document", errs, cb.applies)
	}
	if p, err := s.GetPool("w"); err != nil || p.Region != "eu" {
		t.Fatalf("pool w: %+v %v; want the second write's", p, err)
	}
	again, err := Open(s.policyPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := again.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	if p, err := again.GetPool("w"); err != nil || p.Region != "eu" {
		t.Fatalf("pool w read back from the folder: %+v %v; want the second write's", p, err)
	}
}
