// Package e2e builds the real glbdns binaries, starts them on loopback port 0 with policies
// the tests write, and talks to them over the wire: DNS over UDP and TCP, HTTP to healthd.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// binDir holds the binaries, each built on first use by binary.
var binDir string

var (
	buildMu sync.Mutex
	built   = map[string]error{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glbdns-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds ./cmd/NAME into binDir the first time a test asks for it and returns its
// path: a run of some tests builds only the binaries they start (the Terraform provider
// takes longer to build than the rest together).
func binary(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	err, ok := built[name]
	if !ok {
		cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "../cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("build %s: %v\n%s", name, berr, out)
		}
		built[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

// proc is a running binary whose stderr is scanned for log lines.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	addr chan string
	done chan struct{}
	err  error
}

// start runs bin with args and waits (bounded) for a log line with key=VALUE, e.g. the
// "serving" line's addr=127.0.0.1:PORT (or "key":"VALUE" in a JSON log). It returns the
// value.
func start(t *testing.T, bin string, addrKey string, args ...string) (*proc, string) {
	t.Helper()
	return startEnv(t, nil, bin, addrKey, args...)
}

// startEnv is start with env added to the test's environment.
func startEnv(t *testing.T, env []string, bin string, addrKey string, args ...string) (*proc, string) {
	t.Helper()
	if bin == "glbdns" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-rrl-") }) &&
		!slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "GLBDNS_RRL_") }) {
		// The tests' own client, 127.0.0.1, counts the answers of hundreds of queries a
		// second: rate limiting, on by default, spares it. The tests of rate limiting
		// query from other addresses, or set their own -rrl- flags.
		args = append([]string{"-rrl-exempt", "127.0.0.1"}, args...)
	}
	cmd := exec.Command(binary(t, bin), args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return startCmd(t, cmd, bin, addrKey)
}

// startCmd is start of a command made by the caller (a binary run under unshare), named
// name in failures.
func startCmd(t *testing.T, cmd *exec.Cmd, name, addrKey string) (*proc, string) {
	t.Helper()
	p := &proc{t: t, addr: make(chan string, 1), done: make(chan struct{}), cmd: cmd}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	re := regexp.MustCompile(`\b` + addrKey + `=(\S+)|"` + addrKey + `":"([^"]+)"`)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(line); m != nil && !sent {
				p.addr <- strings.Trim(m[1]+m[2], `"`)
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	select {
	case a := <-p.addr:
		return p, a
	case <-p.done:
		t.Fatalf("%s exited before it was ready: %v\n%s", name, p.err, p.Logs())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not ready after 15s\n%s", name, p.Logs())
	}
	return nil, ""
}

// Logs returns everything the process wrote to stderr so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// stop sends SIGTERM and waits up to 5s, then kills. It returns the exit error.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("process did not stop within 5s of SIGTERM")
	}
	return p.err
}

// waitLog waits (bounded) until the process logged a line containing s.
func (p *proc) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Logs(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line containing %q within %v\n%s", s, within, p.Logs())
}

// startGLBDNS writes files into a temp dir and serves it; it returns the DNS address.
func startGLBDNS(t *testing.T, files map[string]string, extra ...string) (*proc, string, string) {
	t.Helper()
	dir := writePolicy(t, files)
	args := append([]string{"-listen", "127.0.0.1:0", "-policy", dir, "-log-level", "debug"}, extra...)
	p, addr := start(t, "glbdns", "addr", args...)
	return p, addr, dir
}

func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// query sends one query over net ("udp" or "tcp") and fails the test on a transport error.
func query(t *testing.T, netw, addr, name string, qtype uint16, opts ...func(*dns.Msg)) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	for _, o := range opts {
		o(m)
	}
	c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
	var lastErr error
	for try := 0; try < 3; try++ { // UDP on loopback does not lose packets, but be robust
		r, _, err := c.Exchange(m, addr)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], netw, lastErr)
	return nil
}

// withECS adds an EDNS Client Subnet option for prefix.
func withECS(prefix string) func(*dns.Msg) {
	return func(m *dns.Msg) {
		_, n, err := net.ParseCIDR(prefix)
		if err != nil {
			panic(err)
		}
		ones, _ := n.Mask.Size()
		fam := uint16(1)
		if n.IP.To4() == nil {
			fam = 2
		}
		o := m.IsEdns0()
		if o == nil {
			m.SetEdns0(1232, false)
			o = m.IsEdns0()
		}
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(ones), Address: n.IP})
	}
}

// answerAddrs returns the A/AAAA addresses of r's answer section.
func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

// ecsScope returns the ECS scope of r, or -1 when r has no ECS option.
func ecsScope(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if s, ok := e.(*dns.EDNS0_SUBNET); ok {
				return int(s.SourceScope)
			}
		}
	}
	return -1
}

// eventually polls f every 20ms until it returns true or within passes.
func eventually(t *testing.T, within time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if f() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %v", what, within)
	return 0
}

// execBin runs a binary to completion (bounded to 30s) and returns its combined output.
func execBin(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t, bin), args...).CombinedOutput()
	return string(out), err
}

// adminToken is the admin token of every test that sets one: reads need it too.
const adminToken = "e2e-admin-token"

// adminGet is a GET of an admin URL with the admin token.
func adminGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	return http.DefaultClient.Do(req)
}

// adminURL waits (bounded) for glbdns's `msg="admin listening" addr=...` line.
func adminURL(t *testing.T, p *proc) string {
	t.Helper()
	re := regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
	var admin string
	eventually(t, 10*time.Second, "admin listening log line", func() bool {
		if m := re.FindStringSubmatch(p.Logs()); m != nil {
			admin = "http://" + strings.Trim(m[1], `"`)
			return true
		}
		return false
	})
	return admin
}
