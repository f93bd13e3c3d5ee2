package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy/store"
)

// Stateless nodes (issue 18): every flag from the environment, -listen repeated and
// dual-stack, a read-only file system without the write API, JSON logs.

// TestEnvOnlyConfiguration: healthd and glbdns configured by environment variables alone,
// no command-line flag: healthd checks the pool, glbdns subscribes to it (GLBDNS_HEALTH)
// and answers on both addresses of GLBDNS_LISTEN (comma-separated) only the member healthd
// found up, answers id.server with GLBDNS_IDENTITY, and both log JSON (*_LOG_FORMAT).
func TestEnvOnlyConfiguration(t *testing.T) {
	up := newBackend(t, "127.0.0.51")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strings.TrimPrefix(closed.Addr().String(), "127.0.0.1:")
	closed.Close() // nothing listens there: m1 is down
	bs := []*backend{up, {addr: "127.0.0.52:" + closedPort}}
	dir := writePolicy(t, map[string]string{"p.hcl": healthPolicy(bs, func(i int) string {
		if i == 0 {
			return up.port()
		}
		return closedPort
	}, "")})

	hd, haddr := startEnv(t, []string{"HEALTHD_POLICY=" + dir, "HEALTHD_LISTEN=127.0.0.1:0", "HEALTHD_ID=hd-env",
		"HEALTHD_LOG_FORMAT=json"}, "healthd", "addr")
	g, dnsAddr := startEnv(t, []string{"GLBDNS_POLICY=" + dir, "GLBDNS_LISTEN=127.0.0.1:0,127.0.0.2:0",
		"GLBDNS_HEALTH=http://" + haddr, "GLBDNS_RRL_EXEMPT=127.0.0.0/8", "GLBDNS_IDENTITY=node-from-env",
		"GLBDNS_LOG_FORMAT=json", "GLBDNS_LOG_LEVEL=debug"}, "glbdns", "addr")
	addrs := servingAddrs(t, g)
	if len(addrs) != 2 || addrs[0] != dnsAddr || !strings.HasPrefix(addrs[1], "127.0.0.2:") {
		t.Fatalf("serving on %v, want 127.0.0.1:PORT and 127.0.0.2:PORT", addrs)
	}
	for _, a := range addrs {
		eventually(t, 10*time.Second, "glbdns on "+a+" answers the member healthd found up", func() bool {
			return answerSet(t, a, "web.glb.test") == up.ip()
		})
	}
	m := new(dns.Msg)
	m.SetQuestion("id.server.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsAddr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "node-from-env" {
		t.Fatalf("CHAOS TXT id.server: %v %v, want node-from-env", r, err)
	}
	for name, p := range map[string]*proc{"healthd": hd, "glbdns": g} {
		checkJSONLogs(t, name, p.Logs())
	}
}

// servingAddrs reads the addresses of glbdns's "serving" line (addrs=, text or JSON).
func servingAddrs(t *testing.T, p *proc) []string {
	t.Helper()
	re := regexp.MustCompile(`\baddrs=(\S+)|"addrs":"([^"]+)"`)
	var m []string
	eventually(t, 10*time.Second, "glbdns logs serving addrs=", func() bool { // after "listening"
		m = re.FindStringSubmatch(p.Logs())
		return m != nil
	})
	return strings.Split(m[1]+m[2], ",")
}

// checkJSONLogs fails unless every line is one JSON object with time, level and msg.
func checkJSONLogs(t *testing.T, name, logs string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	for _, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("%s log line is not JSON: %q: %v", name, line, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s log line without %q: %s", name, k, line)
			}
		}
	}
	t.Logf("%s: %d JSON log lines", name, len(lines))
}

// TestEnvBadValue: a value its flag refuses, in the environment, exits 2 with a message
// naming the variable, and a flag given on the command line wins over its variable.
func TestEnvBadValue(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.hcl": followPolicy})
	for _, c := range []struct{ bin, env, want string }{
		{"glbdns", "GLBDNS_RRL_RATE=many", `GLBDNS_RRL_RATE="many": invalid value for -rrl-rate`},
		{"glbdns", "GLBDNS_LOG_FORMAT=xml", `bad log format "xml"`},
		{"healthd", "HEALTHD_MAX_CONNS=lots", `HEALTHD_MAX_CONNS="lots": invalid value for -max-conns`},
	} {
		cmd := exec.Command(binary(t, c.bin), "-policy", dir, "-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), c.env)
		out, err := runBounded(t, cmd)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%s with %s: %v, want exit status 2 saying %q:\n%s", c.bin, c.env, err, c.want, out)
		}
	}
	// The command line's -log-format wins over GLBDNS_LOG_FORMAT's bad value.
	_, addr := startEnv(t, []string{"GLBDNS_LOG_FORMAT=xml", "GLBDNS_LISTEN=192.0.2.1:53"}, "glbdns", "addr",
		"-policy", dir, "-listen", "127.0.0.1:0", "-log-format", "text")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("serving on %s, want the command line's -listen", addr)
	}
}

// runBounded runs cmd for at most 30s and returns its combined output.
func runBounded(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit within 30s:\n%s", cmd.Path, out.String())
		return "", nil
	}
}

// TestListenRepeated: two -listen addresses each answer over UDP and TCP, each on its own
// port (port 0).
func TestListenRepeated(t *testing.T) {
	g, addr, _ := startGLBDNS(t, map[string]string{"p.hcl": followPolicy}, "-listen", "127.0.0.2:0")
	addrs := servingAddrs(t, g)
	if len(addrs) != 2 || addrs[0] != addr || !strings.HasPrefix(addrs[1], "127.0.0.2:") {
		t.Fatalf("serving on %v, want 127.0.0.1:PORT and 127.0.0.2:PORT", addrs)
	}
	for _, a := range addrs {
		for _, netw := range []string{"udp", "tcp"} {
			if r := query(t, netw, a, "glb.test", dns.TypeSOA); r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
				t.Errorf("SOA over %s to %s: %v", netw, a, r)
			}
		}
	}
}

// TestHealthdListenRepeated: healthd serves its health API on every -listen address, and
// the environment's list is comma-separated.
func TestHealthdListenRepeated(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.hcl": followPolicy})
	h, _ := startEnv(t, []string{"HEALTHD_LISTEN=127.0.0.1:0,127.0.0.2:0"}, "healthd", "addr", "-policy", dir, "-id", "h2")
	addrs := servingAddrs(t, h)
	if len(addrs) != 2 || !strings.HasPrefix(addrs[0], "127.0.0.1:") || !strings.HasPrefix(addrs[1], "127.0.0.2:") {
		t.Fatalf("listening on %v, want 127.0.0.1:PORT and 127.0.0.2:PORT", addrs)
	}
	for _, a := range addrs {
		var rep api.Report
		getJSON(t, "http://"+a+"/v1/health", &rep)
		if rep.Reporter != "h2" {
			t.Errorf("/v1/health on %s: reporter %q, want h2", a, rep.Reporter)
		}
	}
}

// TestListenDualStack: one -listen [::]:PORT answers IPv4 (127.0.0.1) and IPv6 (::1), over
// UDP and TCP: one dual-stack socket per protocol.
func TestListenDualStack(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only"); err == nil && strings.TrimSpace(string(b)) == "1" {
		t.Skip("net.ipv6.bindv6only=1: [::] sockets are IPv6 only here")
	}
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		c.Close()
	}
	_, addr := start(t, "glbdns", "addr", "-listen", "[::]:0", "-policy", writePolicy(t, map[string]string{"p.hcl": followPolicy}),
		"-rrl-exempt", "127.0.0.1,::1")
	_, port, err := net.SplitHostPort(addr)
	if err != nil || !strings.HasPrefix(addr, "[::]:") {
		t.Fatalf("serving on %q, want [::]:PORT", addr)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		for _, netw := range []string{"udp", "tcp"} {
			if r := query(t, netw, net.JoinHostPort(host, port), "glb.test", dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("SOA over %s to %s: %v", netw, host, r)
			}
		}
	}
}

// roPolicy is a service over one static member, address ADDR.
const roPolicy = `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "m0" {
    address = "ADDR"
  }
}
service "web.glb.test" {
  policy = "round_robin"
  pools  = ["web"]
  ttl    = 5
}
`

// TestNoWriteAPIWritesNothing: without an admin token glbdns creates no managed folder
// beside its policy; one that exists is read (a pool and service made by another store),
// and a document written there later is followed.
func TestNoWriteAPIWritesNothing(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.hcl": strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.10")})
	_, addr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir)
	if got := answerSet(t, addr, "web.glb.test"); got != "192.0.2.10" {
		t.Fatalf("answer %q, want 192.0.2.10", got)
	}
	if _, err := os.Stat(store.DefaultManagedDir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("managed folder of a node without a write API: %v, want none made", err)
	}

	// A folder that exists (another writer's) is read, and followed.
	dir2 := writePolicy(t, map[string]string{"p.hcl": strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.10")})
	other, err := store.Open(dir2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, diags := other.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, _, err := other.PutPool(api.Pool{Name: "extra", Members: []api.Member{{Name: "x", Address: "192.0.2.77"}}}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.PutService(api.Service{Name: "extra.glb.test", Pools: []string{"extra"}}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	_, addr2 := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir2)
	if got := answerSet(t, addr2, "extra.glb.test"); got != "192.0.2.77" {
		t.Fatalf("managed service: answer %q, want 192.0.2.77", got)
	}
	if _, _, err := other.PutPool(api.Pool{Name: "extra", Members: []api.Member{{Name: "x", Address: "192.0.2.78"}}}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the managed pool changed by another store is served", func() bool {
		return answerSet(t, addr2, "extra.glb.test") == "192.0.2.78"
	})
}

// TestReadOnlyPolicyMount: glbdns without a write API on a policy folder that is a
// read-only bind mount, in a mount namespace of its own (unshare), serves, and reloads on
// SIGHUP after the policy changed through the mount's writable source. Skipped where no
// such namespace can be made (not root, no unshare).
func TestReadOnlyPolicyMount(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare (util-linux)")
	}
	src, mnt := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	zone := filepath.Join(src, "policy", "p.hcl")
	if err := os.WriteFile(zone, []byte(strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	// The mount, then a write through it that must fail, then glbdns in the same namespace
	// (exec: the process the test signals is glbdns itself).
	const script = `mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && ! touch "$2/probe" 2>/dev/null && shift 2 && exec "$@"`
	probe := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", src, mnt, "true")
	if out, err := runBounded(t, probe); err != nil {
		t.Skipf("cannot make a read-only bind mount in a mount namespace here: %v\n%s", err, out)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", src, mnt,
		binary(t, "glbdns"), "-listen", "127.0.0.1:0", "-policy", filepath.Join(mnt, "policy"), "-no-watch",
		"-rrl-exempt", "127.0.0.1", "-log-level", "debug")
	g, addr := startCmd(t, cmd, "glbdns", "addr")
	if got := answerSet(t, addr, "web.glb.test"); got != "192.0.2.10" {
		t.Fatalf("answer %q, want 192.0.2.10\n%s", got, g.Logs())
	}
	if err := os.WriteFile(zone, []byte(strings.ReplaceAll(roPolicy, "ADDR", "192.0.2.11")), 0o644); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the changed policy is served after SIGHUP", func() bool {
		return answerSet(t, addr, "web.glb.test") == "192.0.2.11"
	})
	ents, err := os.ReadDir(src)
	if err != nil || len(ents) != 1 {
		t.Errorf("the policy's folder holds %v (%v), want only policy/", ents, err)
	}
}
