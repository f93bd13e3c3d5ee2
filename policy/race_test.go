//go:build race

package policy

// raceEnabled scales down the randomized Compiler tests, whose snapshot comparisons the
// race detector slows down tenfold.
const raceEnabled = true
