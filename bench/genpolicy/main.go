// Command genpolicy writes a large glbdns policy for scale tests: one zone holding
// -names static A records (in an RFC 1035 master file the zone imports, the way large
// static data is loaded in practice) and -services load-balanced names spread over
// -pools pools of 4 members, cycling through the weighted, round_robin and
// client_subnet_hash methods. It also writes a dnsperf query file that mixes static
// names, services and missing names.
//
//	go run ./bench/genpolicy -names 1000000 -services 100000 -out /tmp/big
//	glbdns -policy /tmp/big/glb.hcl
//	dnsperf -s 127.0.0.1 -p 5399 -d /tmp/big/queries.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	names := flag.Int("names", 1_000_000, "static A records")
	services := flag.Int("services", 100_000, "load-balanced names")
	pools := flag.Int("pools", 0, "pools of 4 members (default services/100, at least 1)")
	queries := flag.Int("queries", 200_000, "lines of the dnsperf query file")
	zone := flag.String("zone", "big.test", "zone origin")
	out := flag.String("out", "/tmp/big", "output directory")
	flag.Parse()
	if *pools <= 0 {
		*pools = max(*services/100, 1)
	}
	if err := run(*out, *zone, *names, *services, *pools, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "genpolicy:", err)
		os.Exit(1)
	}
}

func run(out, zone string, names, services, pools, queries int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	zf := zone + ".zone"
	if err := write(filepath.Join(out, zf), func(w *bufio.Writer) {
		fmt.Fprintf(w, "$ORIGIN %s.\n$TTL 300\n", zone)
		for i := range names {
			// 198.18.0.0/15 (RFC 2544 benchmarking range): 131072 addresses, reused.
			n := i % 131072
			fmt.Fprintf(w, "h%d IN A 198.%d.%d.%d\n", i, 18+n>>16, (n>>8)&0xFF, n&0xFF)
		}
	}); err != nil {
		return err
	}
	methods := []string{"weighted", "round_robin", "client_subnet_hash"}
	if err := write(filepath.Join(out, "glb.hcl"), func(w *bufio.Writer) {
		fmt.Fprintf(w, "zone %q {\n  nameservers = [\"ns1.%s\"]\n  ttl = 300\n  soa {\n    rname = \"hostmaster.%s\"\n    serial = 1\n    minimum = 60\n  }\n", zone, zone, zone)
		fmt.Fprintf(w, "  record \"ns1\" {\n    type = \"A\"\n    values = [\"192.0.2.53\"]\n  }\n  file = %q\n}\n\n", zf)
		for p := range pools {
			fmt.Fprintf(w, "pool \"p%d\" {\n", p)
			for m := range 4 {
				a := p*4 + m
				fmt.Fprintf(w, "  member \"m%d\" {\n    address = \"10.%d.%d.%d\"\n    weight = %d\n  }\n", m, a>>16&0xFF, a>>8&0xFF, a&0xFF, 4-m)
			}
			fmt.Fprintf(w, "}\n")
		}
		for s := range services {
			fmt.Fprintf(w, "service \"s%d.%s\" {\n  policy = %q\n  pools = [\"p%d\"]\n  ttl = 30\n}\n", s, zone, methods[s%len(methods)], s%pools)
		}
	}); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	return write(filepath.Join(out, "queries.txt"), func(w *bufio.Writer) {
		for range queries {
			switch x := r.IntN(10); {
			case x < 5:
				fmt.Fprintf(w, "h%d.%s A\n", r.IntN(max(names, 1)), zone)
			case x < 9:
				fmt.Fprintf(w, "s%d.%s A\n", r.IntN(max(services, 1)), zone)
			default:
				fmt.Fprintf(w, "nx%d.%s A\n", r.IntN(1000000), zone)
			}
		}
	})
}

func write(path string, fill func(w *bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
