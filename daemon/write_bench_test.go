package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/store"
)

// writeManagedObjects fills the managed folder of the policy at path with n pools of two
// members ("bench-0", "bench-2", ... : the even numbers) and a weighted service over each
// ("s0.glb.test", ...), one document each, written as the admin API writes them.
func writeManagedObjects(tb testing.TB, path string, n int) {
	tb.Helper()
	dir := store.DefaultManagedDir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	const header = "# Managed by the glbdns admin API: edits here are kept, but the API overwrites them.\n"
	for i := range n {
		k := 2 * i
		pool := fmt.Sprintf("%spool \"bench-%d\" {\n  member \"a\" {\n    address = \"192.0.2.%d\"\n  }\n  member \"b\" {\n    address = \"198.51.100.%d\"\n  }\n}\n",
			header, k, k%250+1, k%250+1)
		svc := fmt.Sprintf("%sservice \"s%d.glb.test\" {\n  policy = \"weighted\"\n  pools  = [\"bench-%d\"]\n}\n", header, k, k)
		for name, data := range map[string]string{fmt.Sprintf("pool-bench-%d.hcl", k): pool, fmt.Sprintf("service-s%d.glb.test.hcl", k): svc} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkAPIWriteAt is an admin API write end to end but for HTTP, at 2,000 and 20,000
// objects, from one writer (bench/apiwrite.sh's sequential run): a new pool of two
// members, then a weighted service over it, alternately, each validated, compiled,
// persisted in the managed folder (its fsyncs included) and installed in the DNS server
// with its metrics before it returns. The new pools' names ("bench-1", "bench-3", ...)
// fall among the stored ones, as bench/apiwrite's do.
func BenchmarkAPIWriteAt(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", 2*n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "policy.hcl")
			if err := os.WriteFile(path, []byte("zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			writeManagedObjects(b, path, n)
			d, err := New(Config{PolicyPath: path, Listen: []string{"127.0.0.1:0"}, NoWatch: true, AdminToken: "bench", // writable
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				if snap, _ := d.Server().Current(); snap != nil {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("no snapshot after a minute")
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := 2*(i/2) + 1
				var err error
				if i%2 == 0 {
					_, _, err = d.st.PutPool(api.Pool{Name: fmt.Sprintf("bench-%d", k), Members: []api.Member{
						{Name: "a", Address: "192.0.2.1"}, {Name: "b", Address: "198.51.100.1"}}}, store.Precondition{Create: true})
				} else {
					_, _, err = d.st.PutService(api.Service{Name: fmt.Sprintf("s%d.glb.test", k), Policy: "weighted",
						Pools: []string{fmt.Sprintf("bench-%d", k)}}, store.Precondition{Create: true})
				}
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
