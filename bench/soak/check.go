package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// healthdEvents reads the file where bench/soak.sh notes each healthd stop (written
// before it kills healthd) and start (written once the new one listens), one
// "UNIXNANOS stop|start" a line. Between a stop and the next start nobody probes: a
// change then is unknown to glbdns until the next healthd has probed it.
type healthdEvents struct{ path string }

type hdEvent struct {
	at    time.Time
	start bool
}

func (h healthdEvents) read() []hdEvent {
	f, err := os.Open(h.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []hdEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, what, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, hdEvent{at: time.Unix(0, n), start: what == "start"})
	}
	return out
}

// probed is how long of [since, t] a healthd was running: the longest stretch inside
// one healthd's life. glbdns keeps a reporter's last verdicts while it is gone and while
// its successor still says "unknown", so a state that one healthd saw for longer than the
// bound stays known to glbdns through a restart, as long as it does not change.
func probed(evs []hdEvent, since, t time.Time) time.Duration {
	var best time.Duration
	for i, e := range evs {
		if !e.start || e.at.After(t) {
			continue
		}
		end := t
		if i+1 < len(evs) && evs[i+1].at.Before(t) {
			end = evs[i+1].at // the next event is this healthd's stop
		}
		if d := end.Sub(later(since, e.at)); d > best {
			best = d
		}
	}
	return best
}

// checker queries glbdns and checks every answer against the truth of the moment.
type checker struct {
	addr   string
	bs     []*backend
	pol    *policyFile
	hd     healthdEvents
	bound  time.Duration // a member down (or up) longer than this is known to glbdns
	window time.Duration // an old policy may still answer this long after a rename

	mu        sync.Mutex
	queries   map[string]int
	wrong     int
	timeouts  int
	unchecked int // service answers with no member known up: the down rule cannot apply
	examples  []string
	lateDown  time.Duration // longest a healthd had seen a member down when it was answered
	lateOld   time.Duration // latest an old static value was answered after the rename
	newLag    []time.Duration
	seenNew   map[int]bool
}

func newChecker(addr string, bs []*backend, pol *policyFile, hd healthdEvents, bound, window time.Duration) *checker {
	return &checker{addr: addr, bs: bs, pol: pol, hd: hd, bound: bound, window: window,
		queries: map[string]int{}, seenNew: map[int]bool{}}
}

// names are the checked names, in the order the checker cycles through them.
var names = []string{svcName, staticName, extraName, nxName}

// run sends qps queries a second until stop is closed, each from its own goroutine so a
// lost one does not hold the others back (at most 64 in flight), every tenth of each
// name over TCP.
func (c *checker) run(qps int, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / time.Duration(qps))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			c.fail("checker", "64 queries in flight: the checker is not keeping up")
			continue
		}
		name, netw := names[i%len(names)], "udp"
		if (i/len(names))%10 == 9 { // every tenth round of the names
			netw = "tcp"
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c.one(name, netw)
		})
	}
}

// queryTimeout bounds one checker query: loopback answers in well under a millisecond,
// so a query that takes a second was lost (and is not retried: a retry would hide it).
const queryTimeout = time.Second

func (c *checker) one(name, netw string) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.RecursionDesired = false
	cl := dns.Client{Net: netw, Timeout: queryTimeout}
	sent := time.Now()
	r, _, err := cl.Exchange(m, c.addr)
	recv := time.Now()
	c.mu.Lock()
	c.queries[name]++
	if err != nil {
		c.timeouts++
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
		c.fail(name, fmt.Sprintf("%s over %s", dns.RcodeToString[r.Rcode], netw))
		return
	}
	if !r.Authoritative {
		c.fail(name, "no AA")
		return
	}
	cands := c.pol.candidates(sent, recv, c.window)
	switch name {
	case svcName:
		c.checkService(r, sent, cands)
	case staticName:
		c.checkStatic(r, sent, cands, func(v *version) []string { return v.static })
	case extraName:
		c.checkStatic(r, sent, cands, func(v *version) []string { return v.extra })
	case nxName:
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 || len(r.Ns) == 0 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			c.fail(name, "want NXDOMAIN with the SOA, got "+brief(r))
		}
	}
}

// checkStatic: the answer is exactly the record of one candidate version; a version
// without it means NXDOMAIN.
func (c *checker) checkStatic(r *dns.Msg, sent time.Time, cands []*version, rec func(*version) []string) {
	got := addrs(r)
	slices.Sort(got)
	name := r.Question[0].Name
	for _, v := range cands {
		want := rec(v)
		if want == nil && r.Rcode == dns.RcodeNameError && len(got) == 0 {
			c.noteVersion(name, v, sent)
			return
		}
		if want != nil && r.Rcode == dns.RcodeSuccess && slices.Equal(got, want) && len(got) == len(r.Answer) {
			c.noteVersion(name, v, sent)
			return
		}
	}
	c.fail(name, fmt.Sprintf("%s matches none of policy versions %s", brief(r), versionList(cands)))
}

// noteVersion keeps the figures of reload lag: for static.soak.test, how late an old
// version was still answered after the rename of the next, and how soon each new one
// was first seen.
func (c *checker) noteVersion(name string, v *version, sent time.Time) {
	if name != staticName {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !v.until.IsZero() && sent.After(v.until) {
		c.lateOld = max(c.lateOld, sent.Sub(v.until))
	}
	if v.n > 0 && !c.seenNew[v.n] {
		c.seenNew[v.n] = true
		c.newLag = append(c.newLag, sent.Sub(v.from))
	}
}

// checkService: one or two distinct members of the pool, none at weight 0 in every
// candidate version; no member known down while a member is known up and in rotation;
// and two answers when two members are known up and in rotation.
func (c *checker) checkService(r *dns.Msg, sent time.Time, cands []*version) {
	got := addrs(r)
	if r.Rcode != dns.RcodeSuccess || len(got) == 0 || len(got) > answersN || len(got) != len(r.Answer) {
		c.fail(svcName, "want 1 or 2 A records, got "+brief(r))
		return
	}
	// inRotation: weight above 0 in every candidate version (all) or in one of them.
	inRotation := func(i int, all bool) bool {
		n := 0
		for _, v := range cands {
			if v.weights[i] > 0 {
				n++
			}
		}
		if all {
			return n == len(cands)
		}
		return n > 0
	}
	evs := c.hd.read()
	knownUp, downFor := 0, map[string]time.Duration{}
	for i, b := range c.bs {
		up, since := b.stateAt(sent)
		seen := probed(evs, since, sent)
		if up && seen > c.bound && inRotation(i, true) {
			knownUp++
		}
		if !up {
			downFor[b.ip] = seen
		}
	}
	seen := map[string]bool{}
	for _, a := range got {
		i := slices.IndexFunc(c.bs, func(b *backend) bool { return b.ip == a })
		switch {
		case i < 0:
			c.fail(svcName, a+" is not a member of the pool: "+brief(r))
			return
		case seen[a]:
			c.fail(svcName, a+" answered twice: "+brief(r))
			return
		case !inRotation(i, false):
			c.fail(svcName, fmt.Sprintf("%s has weight 0 in policy versions %s: %s", a, versionList(cands), brief(r)))
			return
		}
		seen[a] = true
		if age, down := downFor[a]; down {
			c.mu.Lock()
			c.lateDown = max(c.lateDown, age)
			c.mu.Unlock()
			if age > c.bound && knownUp > 0 {
				c.fail(svcName, fmt.Sprintf("%s answered after healthd saw it down for %v (bound %v), with %d members known up: %s",
					a, age.Round(time.Millisecond), c.bound, knownUp, brief(r)))
				return
			}
		}
	}
	if knownUp >= answersN && len(got) < answersN {
		c.fail(svcName, fmt.Sprintf("%d answer with %d members known up: %s", len(got), knownUp, brief(r)))
		return
	}
	if knownUp == 0 {
		c.mu.Lock()
		c.unchecked++
		c.mu.Unlock()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *checker) fail(name, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrong++
	if len(c.examples) < 20 {
		c.examples = append(c.examples, fmt.Sprintf("%s %s: %s", time.Now().Format("15:04:05.000"), name, what))
	}
}

func addrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// brief is a reply on one line: rcode and answer data.
func brief(r *dns.Msg) string {
	var parts []string
	for _, rr := range r.Answer {
		parts = append(parts, strings.Join(strings.Fields(rr.String())[3:], " "))
	}
	return dns.RcodeToString[r.Rcode] + " [" + strings.Join(parts, "; ") + "]"
}

func versionList(vs []*version) string {
	var s []string
	for _, v := range vs {
		s = append(s, strconv.Itoa(v.n))
	}
	return "{" + strings.Join(s, ",") + "}"
}
