// Command apiwrite times admin API writes against a running glbdns: it creates N pools
// one after another (POST /v1/pools, two members each) and prints the median latency of
// the ten writes ending at the 10th, 100th and 250th (and every further hundredth) pool,
// so that the cost of a write can be read against the number of objects already stored.
// bench/apiwrite.sh starts a glbdns for it.
//
//	go run ./bench/apiwrite -admin http://127.0.0.1:8053 -token TOKEN -n 250
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"
)

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8053", "admin `URL` of the glbdns")
	token := flag.String("token", "", "admin API bearer `token`")
	n := flag.Int("n", 250, "pools to create")
	flag.Parse()
	lat := make([]time.Duration, 0, *n)
	for i := range *n {
		body := fmt.Sprintf(`{"name":"bench-%d","members":[{"name":"a","address":"192.0.2.%d"},{"name":"b","address":"198.51.100.%d"}]}`,
			i, i%250+1, i%250+1)
		req, err := http.NewRequest(http.MethodPost, *admin+"/v1/pools", bytes.NewReader([]byte(body)))
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
		if resp.StatusCode != http.StatusCreated {
			fail(fmt.Errorf("write %d: %s", i+1, resp.Status))
		}
		lat = append(lat, time.Since(start))
	}
	for _, at := range marks(*n) {
		w := slices.Clone(lat[at-10 : at])
		slices.Sort(w)
		fmt.Printf("writes %3d-%-3d median %6.1f ms\n", at-9, at, float64(w[len(w)/2].Microseconds())/1000)
	}
}

// marks are the write counts to report at: 10, 100, 250, then every hundred.
func marks(n int) []int {
	var out []int
	for _, m := range []int{10, 100, 250} {
		if m <= n {
			out = append(out, m)
		}
	}
	for m := 300; m <= n; m += 100 {
		out = append(out, m)
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "apiwrite:", err)
	os.Exit(1)
}
