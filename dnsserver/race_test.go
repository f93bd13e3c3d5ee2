//go:build race

package dnsserver

// raceEnabled says the race detector is on. Its sync.Pool drops a quarter of what is Put
// back, so a test counting allocations per query sees the pooled scratch made afresh.
const raceEnabled = true
