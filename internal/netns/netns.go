//go:build linux

// Package netns makes, for a test, two network namespaces joined by a veth pair, and runs
// code inside either of them: what the AF_XDP path needs to be tested on a real interface
// without touching the machine's own.
package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Pair is two namespaces, Server and Client, and the veth pair between them: ServerIf in
// Server with ServerV4 and ServerV6, ClientIf in Client with ClientV4 and ClientV6.
type Pair struct {
	Server, Client     string
	ServerIf, ClientIf string
	ServerV4, ClientV4 netip.Addr
	ServerV6, ClientV6 netip.Addr
}

var seq atomic.Int32

// New makes a pair for t and removes it when t ends; it skips t where namespaces cannot
// be made (not root, no iproute2, a sandbox that refuses them). Each pair of a process
// gets its own names and 10.X.0.0/24, so tests may run side by side. Each end of the veth
// has one receive and one transmit queue.
func New(t testing.TB) *Pair {
	t.Helper()
	return NewQueues(t, 1)
}

// NewQueues is New with queues receive and transmit queues on each end of the veth. A veth
// receives a frame on the queue its peer sent it from, and the peer picks that queue by
// a hash of the flow, so different client sockets reach different queues.
func NewQueues(t testing.TB, queues int) *Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need ip (iproute2)")
	}
	n := seq.Add(1)
	tag := fmt.Sprintf("%d%c", os.Getpid()%100000, 'a'+n%26)
	p := &Pair{
		Server: "glbt-s" + tag, Client: "glbt-c" + tag,
		ServerIf: "gs" + tag, ClientIf: "gc" + tag,
		ServerV4: netip.AddrFrom4([4]byte{10, byte(200 + n%50), 0, 1}),
		ClientV4: netip.AddrFrom4([4]byte{10, byte(200 + n%50), 0, 2}),
		ServerV6: netip.MustParseAddr(fmt.Sprintf("fd99:%x::1", 0x100+n)),
		ClientV6: netip.MustParseAddr(fmt.Sprintf("fd99:%x::2", 0x100+n)),
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", p.Server).Run()
		exec.Command("ip", "netns", "del", p.Client).Run()
	})
	q := strconv.Itoa(queues)
	steps := [][]string{
		{"netns", "add", p.Server},
		{"netns", "add", p.Client},
		{"link", "add", p.ServerIf, "netns", p.Server, "numtxqueues", q, "numrxqueues", q,
			"type", "veth", "peer", "name", p.ClientIf, "netns", p.Client, "numtxqueues", q, "numrxqueues", q},
		{"-n", p.Server, "addr", "add", p.ServerV4.String() + "/24", "dev", p.ServerIf},
		{"-n", p.Client, "addr", "add", p.ClientV4.String() + "/24", "dev", p.ClientIf},
		{"-n", p.Server, "addr", "add", p.ServerV6.String() + "/64", "dev", p.ServerIf, "nodad"},
		{"-n", p.Client, "addr", "add", p.ClientV6.String() + "/64", "dev", p.ClientIf, "nodad"},
		{"-n", p.Server, "link", "set", "lo", "up"},
		{"-n", p.Client, "link", "set", "lo", "up"},
		{"-n", p.Server, "link", "set", p.ServerIf, "up"},
		{"-n", p.Client, "link", "set", p.ClientIf, "up"},
	}
	for i, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			if i == 0 {
				t.Skipf("cannot make a network namespace: %v: %s", err, strings.TrimSpace(string(out)))
			}
			t.Fatalf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return p
}

// Do runs fn in namespace ns, on a thread of its own that ends with it: descriptors fn
// opens (sockets, BPF links) stay in ns wherever they are used later, and no other
// goroutine ever runs in ns.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it exits with the goroutine, so the runtime
		// does not reuse a thread left in another namespace.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Run runs a command in namespace ns and returns its combined output.
func Run(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}
