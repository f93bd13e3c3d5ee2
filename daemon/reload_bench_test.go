package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/policy"
)

// writeLargePolicy writes a policy of services services, each with its own pool of
// membersPer members, into dir, and returns its path.
func writeLargePolicy(tb testing.TB, dir string, services, membersPer int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`zone "big.test" {
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
		fmt.Fprintf(&b, "pool \"p%d\" {\n", i)
		for j := 0; j < membersPer; j++ {
			n := i*membersPer + j
			fmt.Fprintf(&b, "  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight  = %d\n  }\n", j, n>>16&255, n>>8&255, n&255, j+1)
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "service \"s%d.big.test\" {\n  policy = \"weighted\"\n  pools  = [\"p%d\"]\n}\n", i, i)
	}
	path := filepath.Join(dir, "big.hcl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkLoadLarge measures a reload of 10,000 services and 50,000 members: reading and
// compiling the policy, then installing the snapshot into a server (metrics included).
func BenchmarkLoadLarge(b *testing.B) {
	path := writeLargePolicy(b, b.TempDir(), 10000, 5)
	srv := dnsserver.New(dnsserver.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.ReportAllocs()
	for b.Loop() {
		snap, diags := policy.LoadPath(path)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		if len(snap.Members) != 50000 || len(snap.Services) != 10000 {
			b.Fatalf("%d members, %d services", len(snap.Members), len(snap.Services))
		}
		srv.SetSnapshot(snap)
	}
}

// BenchmarkInstallLarge isolates the server's part of a reload (SetSnapshot).
func BenchmarkInstallLarge(b *testing.B) {
	path := writeLargePolicy(b, b.TempDir(), 10000, 5)
	snaps := make([]*policy.Snapshot, 2)
	for i := range snaps {
		s, diags := policy.LoadPath(path)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		snaps[i] = s
	}
	srv := dnsserver.New(dnsserver.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		srv.SetSnapshot(snaps[i%2])
		i++
	}
}
