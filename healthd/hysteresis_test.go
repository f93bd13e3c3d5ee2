package healthd

import (
	"testing"

	"github.com/glbdns/glbdns/api"
)

func TestHysteresis(t *testing.T) {
	// Each step is a probe result ('+' success, '-' failure) and the status after it
	// ('?' unknown, 'U' up, 'D' down).
	tests := []struct {
		name       string
		rise, fall int
		results    string
		want       string
	}{
		{name: "rise from unknown", rise: 2, fall: 3, results: "++", want: "?U"},
		{name: "fall from unknown", rise: 2, fall: 3, results: "---", want: "??D"},
		{name: "single success does not decide", rise: 2, fall: 3, results: "+-+-+-", want: "??????"},
		{name: "up needs fall failures", rise: 2, fall: 3, results: "++--+---", want: "?UUUUUUD"},
		{name: "down needs rise successes", rise: 2, fall: 3, results: "---+-++", want: "??DDDDU"},
		{name: "flapping stays up", rise: 2, fall: 3, results: "++-+-+--+", want: "?UUUUUUUU"},
		{name: "rise 1 fall 1 follows every probe", rise: 1, fall: 1, results: "+-+--+", want: "UDUDDU"},
		{name: "policy defaults", rise: api.DefaultCheckRise, fall: api.DefaultCheckFall, results: "+--+---", want: "??????D"},
		{name: "thresholds below 1 count as 1", rise: 0, fall: -1, results: "+-+", want: "UDU"},
		{name: "long outage then recovery", rise: 3, fall: 2, results: "+++-----++++", want: "??UUDDDDDDUU"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Hysteresis{Rise: tc.rise, Fall: tc.fall}
			prev := h.Status
			for i, r := range tc.results {
				changed := h.Observe(r == '+')
				got := map[api.Status]byte{api.StatusUnknown: '?', api.StatusUp: 'U', api.StatusDown: 'D'}[h.Status]
				if got != tc.want[i] {
					t.Fatalf("after result %d (%q): status %v, want %q", i, tc.results[:i+1], h.Status, tc.want[i])
				}
				if changed != (h.Status != prev) {
					t.Fatalf("after result %d: changed = %v, status %v -> %v", i, changed, prev, h.Status)
				}
				if h.Successes != 0 && h.Failures != 0 {
					t.Fatalf("after result %d: both counters set (%d, %d)", i, h.Successes, h.Failures)
				}
				prev = h.Status
			}
		})
	}
}

func TestCombine(t *testing.T) {
	tests := []struct {
		name string
		in   []api.Status
		want api.Status
	}{
		{"all up", []api.Status{api.StatusUp, api.StatusUp}, api.StatusUp},
		{"one down", []api.Status{api.StatusUp, api.StatusDown, api.StatusUnknown}, api.StatusDown},
		{"one unknown", []api.Status{api.StatusUp, api.StatusUnknown}, api.StatusUnknown},
		{"no checks", nil, api.StatusUp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := combine(tc.in); got != tc.want {
				t.Errorf("combine(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	for _, s := range []api.Status{api.StatusUnknown, api.StatusUp, api.StatusDown} {
		b, _ := s.MarshalText()
		var got api.Status
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("round trip of %v: got %v, %v", s, got, err)
		}
	}
	var s api.Status
	if err := s.UnmarshalText([]byte("sideways")); err == nil {
		t.Error("UnmarshalText(sideways) succeeded")
	}
}
