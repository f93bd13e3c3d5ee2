package probe

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestLocalErrorIsNoVerdict exhausts this process's file descriptors for real (its soft
// RLIMIT_NOFILE lowered to the descriptors it has open) and probes a listening member:
// the connect fails with EMFILE, a failure of this host, which the result says is no
// verdict on the member.
func TestLocalErrorIsNoVerdict(t *testing.T) {
	target := tcpServer(t, func(c net.Conn) {})
	c := loadCheck(t, target.Port, `type = "tcp"`)
	if res := probeOnce(t, Default, c, target); !res.OK {
		t.Fatalf("before: %s", res.Reason)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// The limit at the descriptors open (ReadDir's own is closed again), lowered until an
	// open fails: descriptors closing meanwhile (the server's end of the first probe)
	// would free one.
	low := old
	low.Cur = uint64(len(ents))
	for range 64 {
		low.Cur--
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		f.Close()
	}
	res := probeOnce(t, Default, c, target)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if res.OK || !res.Local || !strings.Contains(res.Reason, "too many open files") {
		t.Fatalf("probe with no descriptor left: %+v, want a local failure (EMFILE)", res)
	}
	if res := probeOnce(t, Default, c, closedPort(t)); res.Local {
		t.Errorf("a refused connection is the member's failure, not this host's: %+v", res)
	}
}
