// Command soak is the Go half of bench/soak.sh. It serves the soak's HTTP backends and
// flaps them, writes the policy that glbdns and healthd read and edits it, validly and
// invalidly, and checks every answer glbdns gives against the truth of that moment.
// bench/soak.sh runs glbdns, healthd (and its restarts) and dnsperf around it.
//
// The handshake, through files in -dir: soak writes policy/soak.hcl and waits (bounded)
// for glbdns.addr ("ADDR PID", written by the script once glbdns serves); it then checks
// answers at once, and disturbs for -duration after a SIGUSR1 (the script's baseline
// runs before it). The script notes healthd's stops and starts in healthd.events. On
// SIGTERM it stops early. The last line of its output is the summary as key=value pairs;
// it exits 1 when an answer was wrong, 2 when it could not run.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "work `folder` of the handshake (required)")
	ips := flag.String("backends", "127.0.77.1,127.0.77.2,127.0.77.3,127.0.77.4", "backend `addresses`, comma-separated (loopback aliases)")
	duration := flag.Duration("duration", 10*time.Minute, "how long to disturb once told to start")
	qps := flag.Int("qps", 50, "checker queries a second")
	seed := flag.Uint64("seed", 0, "seed of the schedule; 0: from the clock")
	flapEvery := flag.Duration("flap-every", 5*time.Second, "mean time between backend flaps")
	editEvery := flag.Duration("edit-every", 20*time.Second, "mean time between policy edits")
	brokenFor := flag.Duration("broken-for", 5*time.Second, "how long an invalid policy stays on disk before it is fixed")
	bound := flag.Duration("detect-bound", 5*time.Second, "a member down longer than this must be out of the answers")
	window := flag.Duration("reload-window", 2*time.Second, "an old policy may still answer this long after its successor's rename")
	flag.Parse()
	if *dir == "" || *qps < 1 || *qps > 10000 || *duration <= 0 || *duration > 24*time.Hour {
		die(fmt.Errorf("need -dir, -qps 1..10000 and -duration up to 24h"))
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(*seed, 0))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)

	var bs []*backend
	for _, ip := range strings.Split(*ips, ",") {
		b, err := newBackend(strings.TrimSpace(ip))
		if err != nil {
			die(err)
		}
		defer b.close()
		bs = append(bs, b)
	}
	pol, err := newPolicyFile(filepath.Join(*dir, "policy"), bs)
	if err != nil {
		die(err)
	}
	logf("policy written: %s (seed %d)", pol.path, *seed)

	addr, pid, err := waitGLBDNS(filepath.Join(*dir, "glbdns.addr"), time.Minute, sigs)
	if err != nil {
		die(err)
	}
	chk := newChecker(addr, bs, pol, healthdEvents{path: filepath.Join(*dir, "healthd.events")}, *bound, *window)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { chk.run(*qps, stop); close(done) }()
	logf("checking %s at %d qps", addr, *qps)

	d := &disturber{bs: bs, pol: pol, rng: rng, glbdns: pid, brokenFor: *brokenFor}
	select {
	case s := <-sigs:
		if s == syscall.SIGUSR1 {
			logf("disturbing for %v", *duration)
			d.run(*duration, *flapEvery, *editEvery, sigs)
		}
	case <-time.After(5 * time.Minute): // the script's baseline takes 20 s; it died
		logf("no start signal within 5m")
	}
	close(stop)
	<-done
	report(chk, d, *bound, *window)
	if chk.wrong > 0 {
		os.Exit(1)
	}
}

// waitGLBDNS waits (bounded) for the script's "ADDR PID" line.
func waitGLBDNS(path string, within time.Duration, sigs <-chan os.Signal) (string, int, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			f := strings.Fields(string(b))
			if len(f) == 2 {
				pid, err := strconv.Atoi(f[1])
				return f[0], pid, err
			}
		}
		select {
		case s := <-sigs:
			return "", 0, fmt.Errorf("%v while waiting for %s", s, path)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", 0, fmt.Errorf("no %s within %v", path, within)
}

// disturber flaps the backends and edits the policy on a random schedule.
type disturber struct {
	bs        []*backend
	pol       *policyFile
	rng       *rand.Rand
	glbdns    int // pid, for SIGHUP
	brokenFor time.Duration

	flaps, valid, invalid, sighups int
	byFailure                      map[failure]int
	edits                          int
}

// maxDown is how many of the four backends are down at once at most: two stay up, so
// the service always has members to answer and the down rule is checked nearly always.
const maxDown = 2

// run disturbs for d: a flap every flapEvery on average, a policy edit every editEvery,
// every third edit invalid (a syntax error, then an undefined pool) and fixed brokenFor
// later, with a SIGHUP to glbdns while it is broken (refused again). Then every backend
// comes back up.
func (d *disturber) run(dur, flapEvery, editEvery time.Duration, sigs <-chan os.Signal) {
	d.byFailure = map[failure]int{}
	end := time.Now().Add(dur)
	jitter := func(mean time.Duration) time.Time {
		return time.Now().Add(mean/2 + time.Duration(d.rng.Int64N(int64(mean))))
	}
	nextFlap, nextEdit := jitter(flapEvery), jitter(editEvery)
	var fixAt, hupAt time.Time
	var fix *version
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		wake := slices.MinFunc([]time.Time{end, nextFlap, nextEdit, orFar(fixAt), orFar(hupAt)}, time.Time.Compare)
		select {
		case s := <-sigs:
			logf("%v: stopping early", s)
			d.restore()
			return
		case <-time.After(time.Until(wake)):
		}
		now = time.Now()
		switch {
		case !hupAt.IsZero() && !now.Before(hupAt):
			hupAt = time.Time{}
			if err := syscall.Kill(d.glbdns, syscall.SIGHUP); err == nil {
				d.sighups++
				logf("SIGHUP to glbdns while the policy is broken")
			}
		case !fixAt.IsZero() && !now.Before(fixAt):
			fixAt = time.Time{}
			d.install(fix, "fix")
		case !now.Before(nextFlap):
			nextFlap = jitter(flapEvery)
			d.flap()
		case !now.Before(nextEdit):
			nextEdit = jitter(editEvery)
			if !fixAt.IsZero() {
				continue // broken on disk: its fix comes first
			}
			d.edits++
			cur := d.pol.current()
			v := next(cur, cur.n+1, d.rng)
			if d.edits%3 != 0 {
				d.install(v, "edit")
				continue
			}
			how := 1 + (d.edits/3)%2
			if err := d.pol.writeBroken(v, how); err != nil {
				die(err)
			}
			d.invalid++
			logf("policy broken (%s) on disk", [...]string{"", "syntax error", "undefined pool"}[how])
			fix, fixAt, hupAt = v, now.Add(d.brokenFor), now.Add(d.brokenFor/2)
		}
	}
	if fix != nil && !fixAt.IsZero() {
		d.install(fix, "fix")
	}
	d.restore()
}

func orFar(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return t
}

func (d *disturber) install(v *version, why string) {
	if err := d.pol.install(v); err != nil {
		die(err)
	}
	d.valid++
	extra := "none"
	if v.extra != nil {
		extra = strings.Join(v.extra, ",")
	}
	logf("policy version %d installed (%s): weights %v static %v extra %s", v.n, why, v.weights, v.static, extra)
}

// flap takes a random backend down (in the next way of failing) or brings it back.
func (d *disturber) flap() {
	i := d.rng.IntN(len(d.bs))
	b := d.bs[i]
	down := 0
	for _, x := range d.bs {
		if x.isDown() {
			down++
		}
	}
	if !b.isDown() && down >= maxDown {
		for j, x := range d.bs { // bring a down one back instead
			if x.isDown() {
				i, b = j, x
				break
			}
		}
	}
	d.flaps++
	if b.isDown() {
		if err := b.up(); err != nil {
			die(err)
		}
		logf("m%d up", i)
		return
	}
	f := failure(1 + d.flaps%3)
	b.down(f)
	d.byFailure[f]++
	logf("m%d down (%v)", i, f)
}

// restore brings every backend back up.
func (d *disturber) restore() {
	for i, b := range d.bs {
		if b.isDown() {
			if err := b.up(); err != nil {
				die(err)
			}
			logf("m%d up (end)", i)
		}
	}
}

func report(c *checker, d *disturber, bound, window time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.examples {
		fmt.Println("WRONG", e)
	}
	total := 0
	for _, n := range c.queries {
		total += n
	}
	slices.Sort(c.newLag)
	lagMax := time.Duration(0)
	if len(c.newLag) > 0 {
		lagMax = c.newLag[len(c.newLag)-1]
	}
	fmt.Printf("checker: %d queries (%s %d, %s %d, %s %d, %s %d), %d wrong, %d timed out, %d service answers with no member known up (down rule not applicable)\n",
		total, svcName, c.queries[svcName], staticName, c.queries[staticName], extraName, c.queries[extraName], nxName, c.queries[nxName],
		c.wrong, c.timeouts, c.unchecked)
	fmt.Printf("checker: a down member answered at most %v after it went down, counting the time a healthd ran (bound %v); an old static answer at most %v after the rename (window %v); each new one first seen at most %v after its rename\n",
		c.lateDown.Round(time.Millisecond), bound, c.lateOld.Round(time.Millisecond), window, lagMax.Round(time.Millisecond))
	fmt.Printf("disturbances: %d flaps (down: %d refused, %d 503, %d hang), %d valid policy writes, %d invalid, %d SIGHUPs while invalid\n",
		d.flaps, d.byFailure[failRefused], d.byFailure[failStatus], d.byFailure[failHang], d.valid, d.invalid, d.sighups)
	fmt.Printf("summary queries=%d wrong=%d timeouts=%d unchecked=%d flaps=%d valid=%d invalid=%d sighups=%d late_down_ms=%d late_old_ms=%d\n",
		total, c.wrong, c.timeouts, c.unchecked, d.flaps, d.valid, d.invalid, d.sighups, c.lateDown.Milliseconds(), c.lateOld.Milliseconds())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(2)
}
