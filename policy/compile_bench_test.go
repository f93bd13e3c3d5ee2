package policy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const managedHeader = "# Managed by the glbdns admin API: edits here are kept, but the API overwrites them.\n"

func poolDoc(i, members int) []byte {
	s := managedHeader + fmt.Sprintf("pool \"bench-%05d\" {\n", i)
	for m := range members {
		a := i*members + m
		s += fmt.Sprintf("  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight  = 1\n  }\n", m, a>>16&255, a>>8&255, a&255)
	}
	if i%10 == 0 {
		s += "  check \"http\" {\n    type     = \"http\"\n    port     = 8080\n    path     = \"/healthz\"\n    interval = \"5s\"\n  }\n"
	}
	return []byte(s + "}\n")
}

func serviceDoc(i, pools int) []byte {
	policy, list := "round_robin", fmt.Sprintf("[\"bench-%05d\"]", i%pools)
	if i%10 == 0 {
		policy, list = "failover", fmt.Sprintf("[\"bench-%05d\", \"bench-%05d\"]", i%pools, (i+1)%pools)
	}
	return []byte(managedHeader + fmt.Sprintf("service \"s%05d.glb.test\" {\n  policy         = %q\n  pools          = %s\n  ttl            = 30\n  answers        = 1\n  when_all_down  = \"all\"\n  hash_prefix_v4 = 24\n  hash_prefix_v6 = 56\n}\n", i, policy, list))
}

// managedPolicy writes the operator's policy (a zone with a small zone file) into dir and
// returns it with pools pool documents and services service documents, one file each as
// the store writes them.
func managedPolicy(tb testing.TB, dir string, pools, services int) []File {
	tb.Helper()
	zone := "$ORIGIN glb.test.\n$TTL 300\n"
	for i := range 100 {
		zone += fmt.Sprintf("h%d IN A 192.0.2.%d\n", i, i+1)
	}
	op := []byte("zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n  soa {\n    minimum = 60\n  }\n  record \"ns1\" {\n    type   = \"A\"\n    values = [\"192.0.2.53\"]\n  }\n  file = \"glb.test.zone\"\n}\n")
	for _, f := range []struct {
		name string
		data []byte
	}{{"glb.test.zone", []byte(zone)}, {"policy.hcl", op}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	files := []File{{Name: filepath.Join(dir, "policy.hcl"), Data: op}}
	for i := range pools {
		files = append(files, File{Name: filepath.Join(dir, "managed", fmt.Sprintf("pool-bench-%05d.hcl", i)), Data: poolDoc(i, 2)})
	}
	for i := range services {
		files = append(files, File{Name: filepath.Join(dir, "managed", fmt.Sprintf("service-s%05d.glb.test.hcl", i)), Data: serviceDoc(i, pools)})
	}
	return files
}

// BenchmarkLoadManaged10k measures Load of 10,000 managed pools and 10,000 managed
// services, one document each, and the operator's zone: what an admin API write cost
// before the store kept a Compiler.
func BenchmarkLoadManaged10k(b *testing.B) {
	files := managedPolicy(b, b.TempDir(), 10000, 10000)
	b.ReportAllocs()
	var snap *Snapshot
	for b.Loop() {
		var diags hcl.Diagnostics
		if snap, diags = Load(files); diags.HasErrors() {
			b.Fatal(diags.Error())
		}
	}
	reportLive(b, snap)
}

// BenchmarkCompilerFirstLoad measures a new Compiler's first Load of the policy of
// BenchmarkLoadManaged10k: all of Load's work, and the records kept for the next.
func BenchmarkCompilerFirstLoad(b *testing.B) {
	files := managedPolicy(b, b.TempDir(), 10000, 10000)
	b.ReportAllocs()
	var cc *Compiler
	var snap *Snapshot
	for b.Loop() {
		cc = &Compiler{}
		var diags hcl.Diagnostics
		if snap, diags = cc.Load(files); diags.HasErrors() {
			b.Fatal(diags.Error())
		}
	}
	reportLive(b, cc, snap)
}

// BenchmarkCompilerOneChange measures one Compiler.Load after one admin API write to a
// policy of 10,000 managed pools and 10,000 managed services (the store's shape, as
// BenchmarkLoadManaged10k): a pool's member changed, a pool's member added (the members
// of every later pool move, and the services that use them are copied), a service added
// (the references of every later service move, and the zone is built again), a pool
// added; the files sorted, as the store hands them over, or in a map's order. MiB-live is
// the heap that the Compiler's records and the last snapshot hold.
func BenchmarkCompilerOneChange(b *testing.B) {
	dir := b.TempDir()
	base := managedPolicy(b, dir, 10000, 10000)
	const mid = 5000 // documents half way: about half the pools or services come after
	poolAt := func(files []File, i int) *File { return &files[1+i] }
	for _, bc := range []struct {
		name string
		// edit returns the files after the n-th write.
		edit func(files []File, n int) []File
	}{
		{"pool-member-changed", func(files []File, n int) []File {
			// poolAt finds the pools by index: the edits append new documents only.
			data := poolDoc(mid, 2)
			if n%2 == 1 {
				data = bytes.Replace(data, []byte("address = \"10."), []byte("address = \"10.1"), 1)
			}
			poolAt(files, mid).Data = data
			return files
		}},
		{"pool-member-added", func(files []File, n int) []File {
			poolAt(files, mid).Data = poolDoc(mid, 2+n%2)
			return files
		}},
		{"service-added", func(files []File, n int) []File {
			name := fmt.Sprintf("s%05d-%d.glb.test", mid, n)
			doc := bytes.Replace(serviceDoc(mid+1, 10000), []byte(fmt.Sprintf("s%05d.glb.test", mid+1)), []byte(name), 1)
			return append(files, File{Name: filepath.Join(dir, "managed", "service-"+name+".hcl"), Data: doc})
		}},
		{"pool-added", func(files []File, n int) []File {
			name := fmt.Sprintf("bench-%05d-%d", mid, n)
			doc := bytes.Replace(poolDoc(mid, 2), []byte(fmt.Sprintf("bench-%05d", mid)), []byte(name), 1)
			return append(files, File{Name: filepath.Join(dir, "managed", "pool-"+name+".hcl"), Data: doc})
		}},
	} {
		for _, order := range []string{"sorted", "map"} {
			b.Run(bc.name+"/"+order, func(b *testing.B) {
				files := slices.Clone(base)
				cc := &Compiler{}
				if _, diags := cc.Load(files); diags.HasErrors() {
					b.Fatal(diags.Error())
				}
				b.ReportAllocs()
				var snap *Snapshot
				n := 0
				r := rand.New(rand.NewPCG(1, 2))
				for b.Loop() {
					b.StopTimer()
					n++
					files = bc.edit(files, n)
					// The store hands the files over sorted; other callers may not.
					in := slices.Clone(files)
					if order == "sorted" {
						slices.SortFunc(in, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
					} else {
						r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
					}
					b.StartTimer()
					var diags hcl.Diagnostics
					if snap, diags = cc.Load(in); diags.HasErrors() {
						b.Fatal(diags.Error())
					}
				}
				reportLive(b, cc, snap)
			})
		}
	}
}

// reportLive reports the heap that keep hold, once collected, as MiB-live.
func reportLive(b *testing.B, keep ...any) {
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live")
	runtime.KeepAlive(keep)
}
