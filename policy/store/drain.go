package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/glbdns/glbdns/api"
)

// drainsDoc is the managed document holding every drain.
const drainsDoc = "drains.json"

// maxDrain bounds a drain: a member out for longer than a year should be removed or given
// weight 0 instead, where the policy shows it.
const maxDrain = 366 * 24 * time.Hour

type memberKey struct{ pool, member string }

// drainSet is an immutable set of drains, swapped whole.
type drainSet struct {
	m map[memberKey]api.Drain
}

func decodeDrains(data []byte) (*drainSet, error) {
	ds := &drainSet{m: map[memberKey]api.Drain{}}
	if data == nil {
		return ds, nil
	}
	var doc api.DrainList
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode drains: %w", err)
	}
	for _, d := range doc.Drains {
		ds.m[memberKey{d.Pool, d.Member}] = d
	}
	return ds, nil
}

// list is every drain of the set, sorted by pool and member.
func (ds *drainSet) list() []api.Drain {
	out := make([]api.Drain, 0, len(ds.m))
	for _, d := range ds.m {
		out = append(out, d)
	}
	sortDrains(out)
	return out
}

// Drain takes a member out of the answers until now+d: once published, health counts it as
// down and it comes back by itself when the drain expires. Draining a drained
// member replaces its drain. Members of the operator's pools can be drained too. Errors:
// ErrUnknownRef (no such pool or member in the current policy), ErrInvalid (duration).
func (s *Store) Drain(pool, member string, d time.Duration, reason string) (api.Drain, error) {
	if d <= 0 || d > maxDrain {
		return api.Drain{}, invalid("duration", "the duration must be positive and at most %s", maxDrain)
	}
	v := s.objects.Load()
	if _, ok := v.pools[pool]; !ok {
		return api.Drain{}, &ValidationError{Reason: fmt.Sprintf("pool %q is not defined", pool), kind: ErrUnknownRef}
	}
	if !v.members[memberKey{pool, member}] {
		return api.Drain{}, &ValidationError{Reason: fmt.Sprintf("pool %q has no member %q", pool, member), kind: ErrUnknownRef}
	}
	now := time.Now()
	dr := api.Drain{Pool: pool, Member: member, Until: now.Add(d).UTC().Round(time.Millisecond), Reason: reason}
	return dr, s.editDrains(now, func(m map[memberKey]api.Drain) error {
		m[memberKey{pool, member}] = dr
		return nil
	})
}

// Undrain ends a member's drain now (ErrNotFound if it is not drained).
func (s *Store) Undrain(pool, member string) error {
	now := time.Now()
	return s.editDrains(now, func(m map[memberKey]api.Drain) error {
		k := memberKey{pool, member}
		if _, ok := m[k]; !ok {
			return fmt.Errorf("drain of %s/%s: %w", pool, member, ErrNotFound)
		}
		delete(m, k)
		return nil
	})
}

// editDrains re-reads the drains, drops the expired ones, applies edit, persists, and
// publishes the serving snapshot with the new drains.
func (s *Store) editDrains(now time.Time, edit func(map[memberKey]api.Drain) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	docs, err := s.b.ReadAll()
	if err != nil {
		return err
	}
	cur, err := decodeDrains(docs[drainsDoc])
	if err != nil {
		return err
	}
	next := make(map[memberKey]api.Drain, len(cur.m)+1)
	for k, d := range cur.m {
		if now.Before(d.Until) {
			next[k] = d
		}
	}
	if err := edit(next); err != nil {
		return err
	}
	list := make([]api.Drain, 0, len(next))
	for _, d := range next {
		list = append(list, d)
	}
	if err := s.b.Put(drainsDoc, marshalDrains(list)); err != nil {
		return err
	}
	ds := &drainSet{m: next}
	s.drains.Store(ds)
	if s.last == nil {
		return nil // nothing serves yet: the first Load publishes the drains
	}
	return s.publishLocked(s.last, ds)
}

// GetDrain returns a member's drain (ErrNotFound if it is not drained at now).
func (s *Store) GetDrain(pool, member string, now time.Time) (api.Drain, error) {
	d, ok := s.drains.Load().m[memberKey{pool, member}]
	if !ok || !now.Before(d.Until) {
		return api.Drain{}, fmt.Errorf("drain of %s/%s: %w", pool, member, ErrNotFound)
	}
	return d, nil
}

// Drains returns the drains in force at now, sorted by pool and member.
func (s *Store) Drains(now time.Time) []api.Drain {
	ds := s.drains.Load()
	out := make([]api.Drain, 0, len(ds.m))
	for _, d := range ds.m {
		if now.Before(d.Until) {
			out = append(out, d)
		}
	}
	sortDrains(out)
	return out
}
