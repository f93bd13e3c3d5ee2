package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// testFlags is a flag set of every kind ParseEnv meets: string, int, bool, duration, a
// repeatable Strings, a Func, and -version.
type testFlags struct {
	fs      *flag.FlagSet
	listen  Strings
	rate    *int
	cookies *bool
	idle    *time.Duration
	name    *string
	nsid    string
	version *bool
}

func newTestFlags() *testFlags {
	f := &testFlags{fs: flag.NewFlagSet("t", flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.fs.Var(&f.listen, "listen", "`address`, repeatable")
	f.rate = f.fs.Int("rrl-rate", 20, "replies a second")
	f.cookies = f.fs.Bool("cookies", true, "cookies")
	f.idle = f.fs.Duration("tcp-idle-timeout", 10*time.Second, "idle")
	f.name = f.fs.String("node-id", "", "`name` of the node")
	f.fs.Func("nsid", "nsid", func(v string) error { f.nsid = v; return nil })
	f.version = f.fs.Bool("version", false, "print the version")
	return f
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"rrl-rate": "GLBDNS_RRL_RATE", "listen": "GLBDNS_LISTEN", "etcd-password": "GLBDNS_ETCD_PASSWORD",
		"tcp-max-conns-per-prefix": "GLBDNS_TCP_MAX_CONNS_PER_PREFIX", "admin-token-file": "GLBDNS_ADMIN_TOKEN_FILE",
	} {
		if got := EnvName("GLBDNS", flagName); got != want {
			t.Errorf("EnvName(GLBDNS, %s) = %s, want %s", flagName, got, want)
		}
	}
}

func TestParseEnvSetsEveryKind(t *testing.T) {
	t.Setenv("T_LISTEN", "127.0.0.1:53, [::]:53,")
	t.Setenv("T_RRL_RATE", "100")
	t.Setenv("T_COOKIES", "false")
	t.Setenv("T_TCP_IDLE_TIMEOUT", "3s")
	t.Setenv("T_NODE_ID", "") // empty: unset
	t.Setenv("T_NSID", "0xabcd")
	t.Setenv("T_VERSION", "1.2.3") // a container's variable, not a question
	f := newTestFlags()
	if err := ParseEnv(f.fs, "T", nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.listen, " "); got != "127.0.0.1:53 [::]:53" {
		t.Errorf("listen = %q", got)
	}
	if *f.rate != 100 || *f.cookies || *f.idle != 3*time.Second || *f.name != "" || f.nsid != "0xabcd" || *f.version {
		t.Errorf("rate %d cookies %v idle %v name %q nsid %q version %v", *f.rate, *f.cookies, *f.idle, *f.name, f.nsid, *f.version)
	}
}

func TestParseEnvCommandLineWins(t *testing.T) {
	t.Setenv("T_LISTEN", "192.0.2.1:53,192.0.2.2:53")
	t.Setenv("T_RRL_RATE", "100")
	t.Setenv("T_NODE_ID", "from-env")
	f := newTestFlags()
	if err := ParseEnv(f.fs, "T", []string{"-listen", "127.0.0.1:0", "-rrl-rate", "5", "arg"}); err != nil {
		t.Fatal(err)
	}
	// A repeatable flag given on the command line takes none of the environment's values.
	if got := strings.Join(f.listen, " "); got != "127.0.0.1:0" {
		t.Errorf("listen = %q, want the command line's only", got)
	}
	if *f.rate != 5 || *f.name != "from-env" {
		t.Errorf("rate %d name %q, want 5 (command line) and from-env", *f.rate, *f.name)
	}
	if f.fs.NArg() != 1 || f.fs.Arg(0) != "arg" {
		t.Errorf("args %q", f.fs.Args())
	}
}

func TestParseEnvBadValueNamesTheVariable(t *testing.T) {
	t.Setenv("T_RRL_RATE", "many")
	t.Setenv("T_COOKIES", "maybe")
	f := newTestFlags()
	err := ParseEnv(f.fs, "T", nil)
	if !errors.Is(err, ErrEnv) {
		t.Fatalf("err = %v, want ErrEnv", err)
	}
	for _, want := range []string{`T_RRL_RATE="many"`, "-rrl-rate", `T_COOKIES="maybe"`, "-cookies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// A bad command line is the flag package's error, not ErrEnv.
	if err := ParseEnv(newTestFlags().fs, "T", []string{"-rrl-rate", "x"}); err == nil || errors.Is(err, ErrEnv) {
		t.Errorf("bad command line: err = %v", err)
	}
}

func TestPrintDefaultsNamesTheVariable(t *testing.T) {
	t.Setenv("T_RRL_RATE", "100")
	f := newTestFlags()
	if err := ParseEnv(f.fs, "T", nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f.fs.SetOutput(&out)
	PrintDefaults(f.fs, "T")
	text := out.String()
	for _, want := range []string{
		"-listen address\n", "(env T_LISTEN)", "(env T_RRL_RATE)", "(default 20)", "-node-id name\n", "(env T_NODE_ID)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("usage does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "T_VERSION") || strings.Contains(text, "default 100") {
		t.Errorf("usage names T_VERSION or shows the environment's value as the default:\n%s", text)
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("serving", "addr", "127.0.0.1:53")
	log.Debug("not shown")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if line["msg"] != "serving" || line["addr"] != "127.0.0.1:53" || line["level"] != "INFO" {
		t.Errorf("json line %v", line)
	}
	buf.Reset()
	if log, err = NewLogger(&buf, "debug", "text"); err != nil {
		t.Fatal(err)
	}
	log.Debug("serving", "addr", "127.0.0.1:53")
	if !strings.Contains(buf.String(), "level=DEBUG msg=serving addr=127.0.0.1:53") {
		t.Errorf("text line %q", buf.String())
	}
	if _, err := NewLogger(io.Discard, "info", "xml"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("bad format: err = %v", err)
	}
	if _, err := NewLogger(io.Discard, "loud", "text"); err == nil {
		t.Error("bad level accepted")
	}
}
