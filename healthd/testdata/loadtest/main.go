// Command loadtest measures healthd's CPU use probing many members over loopback HTTP.
//
//	go build -o /tmp/healthd ./cmd/healthd
//	go run ./healthd/testdata/loadtest -healthd /tmp/healthd -members 2000 -interval 1s -duration 20s
//
// It starts one HTTP backend (in this process, listening on every loopback address), writes
// a policy with N members at distinct 127.0.x.y addresses, runs the healthd binary on it,
// waits until every member is up, then reads healthd's user+system CPU time from
// /proc/PID/stat over -duration and prints it in cores. Linux only.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin := flag.String("healthd", "/tmp/healthd", "healthd binary")
	members := flag.Int("members", 2000, "members to probe")
	interval := flag.Duration("interval", time.Second, "check interval")
	duration := flag.Duration("duration", 20*time.Second, "measurement window")
	flag.Parse()

	ln, err := net.Listen("tcp", ":0") // every address, so 127.0.x.y all reach it
	if err != nil {
		log.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))

	dir, err := os.MkdirTemp("", "healthd-load")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	fmt.Fprintf(&b, "pool \"load\" {\n")
	for i := range *members {
		fmt.Fprintf(&b, "  member \"m%d\" {\n    address = \"127.0.%d.%d\"\n  }\n", i, i/250, i%250+1)
	}
	fmt.Fprintf(&b, "  check \"http\" {\n    type = \"http\"\n    port = %d\n    path = \"/health\"\n    interval = \"%s\"\n    timeout = \"%s\"\n  }\n}\n",
		port, *interval, *interval/2)
	if err := os.WriteFile(filepath.Join(dir, "load.hcl"), []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	cmd := exec.Command(*bin, "-policy", dir, "-listen", "127.0.0.1:0", "-id", "load", "-log-level", "info")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrRE := regexp.MustCompile(`msg=listening .*addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	var api string
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			api = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if api == "" {
		log.Fatal("healthd did not log its address")
	}

	deadline := time.Now().Add(10*(*interval) + 30*time.Second)
	for up := 0; up < *members; {
		if time.Now().After(deadline) {
			log.Fatalf("only %d of %d members up", up, *members)
		}
		time.Sleep(500 * time.Millisecond)
		up = countUp(api)
	}
	start := cpuTicks(cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(*duration)
	used := float64(cpuTicks(cmd.Process.Pid)-start) / 100 // USER_HZ is 100 on Linux
	wall := time.Since(t0).Seconds()
	fmt.Printf("healthd: %d members every %s: %.3f cores (%.2fs CPU in %.1fs), %d up at the end\n",
		*members, *interval, used/wall, used, wall, countUp(api))
}

func countUp(api string) int {
	resp, err := http.Get("http://" + api + "/v1/health")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var r struct {
		Members []struct{ Status string } `json:"members"`
	}
	json.NewDecoder(resp.Body).Decode(&r)
	n := 0
	for _, m := range r.Members {
		if m.Status == "up" {
			n++
		}
	}
	return n
}

// cpuTicks is utime+stime of pid in clock ticks (proc(5)).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
