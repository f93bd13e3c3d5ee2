// Command loadprof loads a policy the way glbdns does (policy.LoadPath) and reports the
// time, the heap it holds afterwards, and optionally a CPU profile of the load, to find
// where the start-up of a large policy goes.
//
//	go run ./bench/loadprof -policy /tmp/big/glb.hcl -cpuprofile /tmp/load.prof
//	go tool pprof -top /tmp/load.prof
//	go run ./bench/loadprof -policy /tmp/big/glb.hcl -memprofile /tmp/heap.prof
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/glbdns/glbdns/policy"
)

func main() {
	path := flag.String("policy", "/tmp/big/glb.hcl", "policy file or directory")
	cpu := flag.String("cpuprofile", "", "write a CPU profile of the load to this file")
	mem := flag.String("memprofile", "", "write a heap profile (after the load and a GC) to this file")
	flag.Parse()
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadprof:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadprof:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	snap, diags := policy.LoadPath(*path)
	took := time.Since(start)
	if diags.HasErrors() {
		fmt.Fprintln(os.Stderr, "loadprof:", diags.Error())
		os.Exit(1)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("loaded %s in %v: %d services, %d members; heap in use after GC %.1f MiB, total allocated %.1f MiB\n",
		*path, took.Round(time.Millisecond), len(snap.Services), len(snap.Members),
		float64(ms.HeapInuse)/(1<<20), float64(ms.TotalAlloc)/(1<<20))
	if *mem != "" {
		f, err := os.Create(*mem)
		if err == nil {
			err = pprof.WriteHeapProfile(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadprof:", err)
		}
	}
	runtime.KeepAlive(snap)
}
