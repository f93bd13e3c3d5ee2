package policy

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// writeLargePolicy writes, into dir, the policy shape of daemon's
// BenchmarkLoadLarge: one zone, and services services each with its own pool of
// membersPer weighted members, all in one big.hcl. It returns the file's path.
func writeLargePolicy(tb testing.TB, dir string, services, membersPer int) string {
	tb.Helper()
	path := filepath.Join(dir, "big.hcl")
	writeBuffered(tb, path, func(w *bufio.Writer) {
		w.WriteString(`zone "big.test" {
  nameservers = ["ns1.big.test"]
  soa {
    minimum = 60
  }
  record "ns1" {
    type = "A"
    values = ["192.0.2.53"]
  }
}
`)
		for i := 0; i < services; i++ {
			fmt.Fprintf(w, "pool \"p%d\" {\n", i)
			for j := 0; j < membersPer; j++ {
				n := i*membersPer + j
				fmt.Fprintf(w, "  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight  = %d\n  }\n", j, n>>16&255, n>>8&255, n&255, j+1)
			}
			w.WriteString("}\n")
			fmt.Fprintf(w, "service \"s%d.big.test\" {\n  policy = \"weighted\"\n  pools  = [\"p%d\"]\n}\n", i, i)
		}
	})
	return path
}

// writeHugePolicy writes, into dir, the shape of bench/genpolicy: one zone importing an
// RFC 1035 master file of names static A records, and services services spread over
// services/100 pools of 4 members, cycling through the three member methods. It
// returns the path of glb.hcl.
func writeHugePolicy(tb testing.TB, dir string, names, services int) string {
	tb.Helper()
	const zone = "big.test"
	pools := max(services/100, 1)
	writeBuffered(tb, filepath.Join(dir, zone+".zone"), func(w *bufio.Writer) {
		fmt.Fprintf(w, "$ORIGIN %s.\n$TTL 300\n", zone)
		for i := range names {
			n := i % 131072 // 198.18.0.0/15, the RFC 2544 benchmarking range
			fmt.Fprintf(w, "h%d IN A 198.%d.%d.%d\n", i, 18+n>>16, (n>>8)&0xFF, n&0xFF)
		}
	})
	methods := []string{"weighted", "round_robin", "client_subnet_hash"}
	path := filepath.Join(dir, "glb.hcl")
	writeBuffered(tb, path, func(w *bufio.Writer) {
		fmt.Fprintf(w, "zone %q {\n  nameservers = [\"ns1.%s\"]\n  ttl = 300\n  soa {\n    rname = \"hostmaster.%s\"\n    serial = 1\n    minimum = 60\n  }\n", zone, zone, zone)
		fmt.Fprintf(w, "  record \"ns1\" {\n    type = \"A\"\n    values = [\"192.0.2.53\"]\n  }\n  file = %q\n}\n\n", zone+".zone")
		for p := range pools {
			fmt.Fprintf(w, "pool \"p%d\" {\n", p)
			for m := range 4 {
				a := p*4 + m
				fmt.Fprintf(w, "  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight = %d\n  }\n", m, a>>16&0xFF, a>>8&0xFF, a&0xFF, 4-m)
			}
			w.WriteString("}\n")
		}
		for s := range services {
			fmt.Fprintf(w, "service \"s%d.%s\" {\n  policy = %q\n  pools = [\"p%d\"]\n  ttl = 30\n}\n", s, zone, methods[s%len(methods)], s%pools)
		}
	})
	return path
}

func writeBuffered(tb testing.TB, path string, fill func(w *bufio.Writer)) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fill(w)
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkLoadLarge10k measures LoadPath on 10,000 services and 50,000 members in one
// file (the reload target: under 1 s on 2 cores).
func BenchmarkLoadLarge10k(b *testing.B) {
	path := writeLargePolicy(b, b.TempDir(), 10000, 5)
	b.ReportAllocs()
	for b.Loop() {
		snap, diags := LoadPath(path)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		if len(snap.Members) != 50000 || len(snap.Services) != 10000 {
			b.Fatalf("%d members, %d services", len(snap.Members), len(snap.Services))
		}
	}
}

// BenchmarkLoadHuge measures LoadPath on 1,000,000 static names (a zone file) and
// 100,000 services (the start-up target: under 10 s and 2 GiB RSS). Run it with
// -benchtime=1x; it is skipped with -short.
func BenchmarkLoadHuge(b *testing.B) {
	if testing.Short() {
		b.Skip("huge policy skipped with -short")
	}
	path := writeHugePolicy(b, b.TempDir(), 1_000_000, 100_000)
	b.ReportAllocs()
	var snap *Snapshot
	for b.Loop() {
		var diags hcl.Diagnostics
		snap, diags = LoadPath(path)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		if len(snap.Services) != 100_000 || snap.Zones.Zones()[0].Names() != 1_000_000+100_000+2 {
			b.Fatalf("%d services, %d names", len(snap.Services), snap.Zones.Zones()[0].Names())
		}
	}
	// The heap the snapshot holds, the bulk of a server's RSS once loaded.
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-live")
	runtime.KeepAlive(snap)
}
