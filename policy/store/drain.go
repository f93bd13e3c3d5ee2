package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// drainsDoc is the managed document holding every drain.
const drainsDoc = "drains.json"

// maxDrain bounds a drain (api.MaxDrain, which the Terraform provider checks at plan time).
const maxDrain = api.MaxDrain

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
// down and it comes back by itself when the drain expires. Draining a drained member
// replaces its drain. Members of the operator's pools can be drained too. Errors:
// ErrUnknownRef (no such pool or member in the serving policy), ErrInvalid (duration).
func (s *Store) Drain(pool, member string, d time.Duration, reason string) (api.Drain, error) {
	if d <= 0 || d > maxDrain {
		return api.Drain{}, invalid("duration", "the duration must be positive and at most %s", maxDrain)
	}
	now := time.Now()
	dr := api.Drain{Pool: pool, Member: member, Until: now.Add(d).UTC().Round(time.Millisecond), Reason: reason}
	return dr, s.editDrains(now, func(snap *policy.Snapshot, m map[memberKey]api.Drain) error {
		if err := hasMember(snap, pool, member); err != nil {
			return err
		}
		m[memberKey{pool, member}] = dr
		return nil
	})
}

// hasMember says why snap (nil: nothing serves yet) has no member called member in pool.
func hasMember(snap *policy.Snapshot, pool, member string) error {
	var p *policy.Pool
	if snap != nil {
		p = snap.PoolByName[pool]
	}
	if p == nil {
		return &ValidationError{Reason: fmt.Sprintf("pool %q is not defined", pool), kind: ErrUnknownRef}
	}
	for _, m := range p.Members {
		if m.Name == member {
			return nil
		}
	}
	return &ValidationError{Reason: fmt.Sprintf("pool %q has no member %q", pool, member), kind: ErrUnknownRef}
}

// Undrain ends a member's drain now (ErrNotFound if it is not drained).
func (s *Store) Undrain(pool, member string) error {
	now := time.Now()
	return s.editDrains(now, func(_ *policy.Snapshot, m map[memberKey]api.Drain) error {
		k := memberKey{pool, member}
		if _, ok := m[k]; !ok {
			return fmt.Errorf("drain of %s/%s: %w", pool, member, ErrNotFound)
		}
		delete(m, k)
		return nil
	})
}

// editDrains writes the drains document: the drains in force at now, edited by edit
// (which may refuse), through write, so that two nodes' drains never overwrite each other.
// The serving snapshot is published again with the new drains.
func (s *Store) editDrains(now time.Time, edit func(snap *policy.Snapshot, m map[memberKey]api.Drain) error) error {
	return s.write(func(src *sources) (string, *mdoc, error) {
		cur, err := decodeDrains(src.m.data(drainsDoc))
		if err != nil {
			return "", nil, err
		}
		next := make(map[memberKey]api.Drain, len(cur.m)+1)
		for k, d := range cur.m {
			if now.Before(d.Until) {
				next[k] = d
			}
		}
		if err := edit(s.last, next); err != nil {
			return "", nil, err
		}
		list := make([]api.Drain, 0, len(next))
		for _, d := range next {
			list = append(list, d)
		}
		return drainsDoc, &mdoc{data: marshalDrains(list), kind: "drains"}, nil
	})
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
