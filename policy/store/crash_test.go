package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/api"
)

// The crash test re-executes the test binary as a writer (TestHelperProcess) and kills it
// with SIGKILL at random moments; after every kill the managed folder must hold whole
// documents only, each the last committed generation or the one being written.

const (
	envCrashPolicy = "GLBDNS_STORE_CRASH_POLICY"
	envCrashGen    = "GLBDNS_STORE_CRASH_GEN"
	crashKills     = 20
	crashMaxGens   = 100000 // bounds the helper's loop should the parent never kill it
)

// crashPool is generation g of the pool the helper rewrites: its region names g, its
// member count and check path length derive from g, so a torn or mixed file is detected.
func crashPool(g int) api.Pool {
	p := api.Pool{Name: "crash", Region: "gen-" + strconv.Itoa(g), Checks: []api.Check{{Name: "http",
		Path: "/" + strings.Repeat("x", 4096+g%97)}}}
	for i := 0; i <= g%5; i++ {
		p.Members = append(p.Members, api.Member{Name: "m" + strconv.Itoa(i), Address: fmt.Sprintf("192.0.2.%d", i+1)})
	}
	return p
}

// crashGen checks that p is a whole generation and returns it.
func crashGen(p api.Pool) (int, error) {
	g, err := strconv.Atoi(strings.TrimPrefix(p.Region, "gen-"))
	if err != nil {
		return 0, fmt.Errorf("region %q", p.Region)
	}
	want := crashPool(g)
	if len(p.Members) != len(want.Members) || len(p.Checks) != 1 || p.Checks[0].Path != want.Checks[0].Path {
		return 0, fmt.Errorf("generation %d is torn: %d members, checks %d", g, len(p.Members), len(p.Checks))
	}
	return g, nil
}

// TestHelperProcess is the writer the crash test kills; it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(envCrashPolicy)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	start, _ := strconv.Atoi(os.Getenv(envCrashGen))
	s, err := Open(path, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, diags := s.Load(); diags.HasErrors() {
		fmt.Fprintln(os.Stderr, diags)
		os.Exit(2)
	}
	for g := start; g < start+crashMaxGens; g++ {
		if _, _, err := s.PutPool(crashPool(g), Precondition{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := s.Drain("op-web", "fra-1", time.Hour, "gen-"+strconv.Itoa(g)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(g) // committed: both documents are durable
	}
	os.Exit(0)
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	_, dir := newStore(t)
	path := filepath.Join(dir, "policy.hcl")
	managed := DefaultManagedDir(path)
	gen, tornSeen := 1, 0
	for kill := 0; kill < crashKills; kill++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), envCrashPolicy+"="+path, envCrashGen+"="+strconv.Itoa(gen))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int, 1<<16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if g, err := strconv.Atoi(sc.Text()); err == nil {
					lines <- g
				}
			}
			close(lines)
		}()
		// Wait for the first commit (bounded), then kill at a random moment.
		last := gen - 1
		select {
		case g, ok := <-lines:
			if !ok {
				t.Fatal("helper exited before its first write")
			}
			last = g
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("helper wrote nothing in 10s")
		}
		time.Sleep(time.Duration(rand.IntN(30_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for g := range lines {
			last = max(last, g)
		}

		// Temporary files never look like documents.
		ents, err := os.ReadDir(managed)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if isTemp(e.Name()) {
				tornSeen++
				if strings.HasSuffix(e.Name(), ".hcl") || isDoc(e.Name()) {
					t.Fatalf("temporary file %s would be loaded", e.Name())
				}
			}
		}
		// Every document parses, and holds the last committed generation or the next.
		s, err := Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, diags := s.Load(); diags.HasErrors() {
			t.Fatalf("kill %d: load after crash: %v", kill, diags)
		}
		p, err := s.GetPool("crash")
		if err != nil {
			t.Fatal(err)
		}
		pg, err := crashGen(p)
		if err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		if pg != last && pg != last+1 {
			t.Fatalf("kill %d: pool generation %d, last committed %d", kill, pg, last)
		}
		ds := s.Drains(time.Now())
		if len(ds) != 1 {
			t.Fatalf("kill %d: drains = %+v", kill, ds)
		}
		dg, _ := strconv.Atoi(strings.TrimPrefix(ds[0].Reason, "gen-"))
		if dg != last && !(dg == last+1 && pg == last+1) {
			t.Fatalf("kill %d: drain generation %d, pool %d, last committed %d", kill, dg, pg, last)
		}
		gen = pg + 1
	}
	t.Logf("%d kills, last generation %d, %d leftover temp files seen (and removed on open)", crashKills, gen-1, tornSeen)
}
