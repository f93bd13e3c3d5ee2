// Command apiwrite times admin API writes against a running glbdns: it creates N pools
// one after another (POST /v1/pools, two members each), each followed by a service over it
// with -services (POST /v1/services, in the zone -zone), and prints the median latency of
// the ten writes ending at the 10th, 100th and 250th write (then every further hundredth
// up to 1,000, then every thousandth), so that the cost of a write can be read against the
// number of objects already stored, and the time all the writes took. With -c W, W
// writers share the pools (Terraform applies ten resources at a time by default), each
// creating a pool and then its service; latencies are then counted in the order the
// writes completed. bench/apiwrite.sh starts a glbdns for it.
//
//	go run ./bench/apiwrite -admin http://127.0.0.1:8053 -token TOKEN -n 250 [-services] [-c 10]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8053", "admin `URL` of the glbdns")
	token := flag.String("token", "", "admin API bearer `token`")
	n := flag.Int("n", 250, "pools to create")
	services := flag.Bool("services", false, "create a service over each pool after it")
	zone := flag.String("zone", "glb.test", "zone of the services")
	writers := flag.Int("c", 1, "concurrent `writers`")
	flag.Parse()
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	began := time.Now()
	post := func(path, body string) {
		req, err := http.NewRequest(http.MethodPost, *admin+path, bytes.NewReader([]byte(body)))
		if err != nil {
			fail(err)
		}
		req.Header.Set("Authorization", "Bearer "+*token)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fail(err)
		}
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusCreated {
			fail(fmt.Errorf("write %s: %s", path, resp.Status))
		}
		mu.Lock()
		lat = append(lat, took)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range max(*writers, 1) {
		wg.Go(func() {
			for i := w; i < *n; i += max(*writers, 1) {
				post("/v1/pools", fmt.Sprintf(`{"name":"bench-%d","members":[{"name":"a","address":"192.0.2.%d"},{"name":"b","address":"198.51.100.%d"}]}`,
					i, i%250+1, i%250+1))
				if *services {
					post("/v1/services", fmt.Sprintf(`{"name":"s%d.%s","policy":"weighted","pools":["bench-%d"]}`, i, *zone, i))
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("%d writes in %.1f s, %d writer(s)%s\n", len(lat), time.Since(began).Seconds(), max(*writers, 1), groups(*admin))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, at := range marks(len(lat)) {
		n := min(max(10, at/10), 1000) // ten writes, up to a thousand at 10,000
		w := slices.Clone(lat[at-n : at])
		slices.Sort(w)
		fmt.Printf("writes %5d-%-5d p50 %6.1f ms  p99 %6.1f ms\n", at-n+1, at, ms(w[len(w)/2]), ms(w[len(w)*99/100]))
	}
}

// marks are the write counts to report at: 10, 100, 250, every hundred to 1,000, then
// every thousand.
func marks(n int) []int {
	var out []int
	for _, m := range []int{10, 100, 250} {
		if m <= n {
			out = append(out, m)
		}
	}
	for m := 300; m <= n && m <= 1000; m += 100 {
		out = append(out, m)
	}
	for m := 2000; m <= n; m += 1000 {
		out = append(out, m)
	}
	return out
}

// groups reads the node's store counters and says how many writes a commit took on
// average ("" when they cannot be read).
func groups(admin string) string {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	var writes, commits float64
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "glbdns_store_writes_total "); ok {
			writes, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if v, ok := strings.CutPrefix(line, "glbdns_store_commits_total "); ok {
			commits, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if commits == 0 {
		return ""
	}
	return fmt.Sprintf(", %.0f commits (%.1f writes each)", commits, writes/commits)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "apiwrite:", err)
	os.Exit(1)
}
