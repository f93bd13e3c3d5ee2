package daemon

import (
	"runtime/debug"
	"testing"
)

// TestStartGCNested: holds that overlap (daemons starting at once in one process) end
// with the settings the first found, whatever order they end in.
func TestStartGCNested(t *testing.T) {
	before := debug.SetGCPercent(77)
	defer debug.SetGCPercent(before)
	a := startGC()
	b := startGC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("during the holds GOGC is %d, want off", got)
	}
	a()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("after the first hold ends, GOGC is %d; the second still holds", got)
	}
	b()
	if got := debug.SetGCPercent(77); got != 77 {
		t.Fatalf("after both, GOGC is %d, want 77", got)
	}
}
