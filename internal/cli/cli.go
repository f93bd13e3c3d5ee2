// Package cli holds the small pieces every glbdns binary shares: a logger built from the
// -log-level and -log-format flags, every flag settable from the environment (ParseEnv),
// repeatable string flags, and the flags of the shared store on etcd.
package cli

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/glbdns/glbdns/fetch"
	"github.com/glbdns/glbdns/policy/store"
)

// NewLogger returns a slog.Logger on w at the named level (debug, info, warn, error) in the
// named format: text (logfmt, the default) or json (one object a line, for log shippers).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad log format %q: want text or json", format)
}

// LogFlags defines -log-level and -log-format on fs, as every daemon has them; the
// function it returns builds the logger on w after fs is parsed.
func LogFlags(fs *flag.FlagSet) func(w io.Writer) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := fs.String("log-format", "text", "log `format`: text (logfmt) or json (one object a line)")
	return func(w io.Writer) (*slog.Logger, error) { return NewLogger(w, *level, *format) }
}

// Strings is a repeatable string flag (-health A -health B); its environment variable
// (ParseEnv) is a comma-separated list.
type Strings []string

// String implements flag.Value.
func (s *Strings) String() string { return strings.Join(*s, ",") }

// Set implements flag.Value: each use of the flag appends one value.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// setList sets a repeatable flag from a comma-separated environment value, one Set per
// item, blanks skipped.
func (s *Strings) setList(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			if err := s.Set(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// EnvName is the environment variable of flag name under prefix: GLBDNS and rrl-rate
// give GLBDNS_RRL_RATE.
func EnvName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// noEnv are the flags no environment variable sets: -version is a question asked on the
// command line, and a container image's APP_VERSION-like variable must not turn a daemon
// into a program that prints its version and exits.
var noEnv = map[string]bool{"version": true}

// ParseEnv parses args into fs, then sets every flag the command line did not give from
// its environment variable (EnvName of prefix), when that is set and not empty: so that a
// container or a systemd unit configures a daemon with environment alone, and the command
// line still wins. A Strings flag takes a comma-separated list. A value its flag refuses
// is an error naming the variable (fs's own error handling covers the command line).
func ParseEnv(fs *flag.FlagSet, prefix string, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || noEnv[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		v := os.Getenv(name)
		if v == "" {
			return
		}
		var err error
		if l, ok := f.Value.(*Strings); ok {
			err = l.setList(v)
		} else {
			err = fs.Set(f.Name, v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: invalid value for -%s: %v", name, v, f.Name, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrEnv, errors.Join(errs...))
	}
	return nil
}

// ErrEnv wraps ParseEnv's errors of environment values (a command-line error is fs's own,
// which fs has printed already).
var ErrEnv = errors.New("bad environment")

// MustParseEnv is ParseEnv for a command's flag.CommandLine: a bad environment value is
// printed, with the usage, and exits 2, as a bad flag does.
func MustParseEnv(prog, prefix string) {
	if err := ParseEnv(flag.CommandLine, prefix, os.Args[1:]); err != nil {
		fmt.Fprintf(flag.CommandLine.Output(), "%s: %v\n", prog, err)
		flag.Usage()
		os.Exit(2)
	}
}

// PrintDefaults prints fs's flags as flag.PrintDefaults does, each usage followed by the
// environment variable that sets it, so that the two never drift apart.
func PrintDefaults(fs *flag.FlagSet, prefix string) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		usage := f.Usage
		if !noEnv[f.Name] {
			usage += " (env " + EnvName(prefix, f.Name) + ")"
		}
		shown.Var(f.Value, f.Name, usage)
		shown.Lookup(f.Name).DefValue = f.DefValue // the default, not a value parsed since
	})
	shown.PrintDefaults()
}

// EtcdFlags defines the flags of a shared store on etcd, named as etcdctl names them:
// -etcd-endpoints (comma-separated), -etcd-prefix, -etcd-cacert, -etcd-cert, -etcd-key,
// -etcd-user, -etcd-password and -etcd-command-timeout (their environment variables come
// from ParseEnv: PREFIX_ETCD_ENDPOINTS...). The function it returns reads them after fs is
// parsed; no endpoint means no etcd.
func EtcdFlags(fs *flag.FlagSet, envPrefix string) func() store.EtcdConfig {
	endpoints := fs.String("etcd-endpoints", "",
		"comma-separated etcd client `URLs` of the shared store, e.g. http://10.0.0.1:2379; none: no etcd")
	prefix := fs.String("etcd-prefix", store.DefaultEtcdPrefix, "etcd key `prefix` of this glbdns cluster")
	cacert := fs.String("etcd-cacert", "", "CA `file` that verifies the etcd servers' certificates")
	cert := fs.String("etcd-cert", "", "client certificate `file` for etcd")
	key := fs.String("etcd-key", "", "client key `file` for etcd")
	user := fs.String("etcd-user", "", "etcd `user`")
	timeout := fs.Duration("etcd-command-timeout", 2*time.Second, "bound of one etcd request; a write that passes it answers 503")
	password := fs.String("etcd-password", "", "etcd `password` (better in the environment, "+EnvName(envPrefix, "etcd-password")+", which the process list does not show)")
	return func() store.EtcdConfig {
		cfg := store.EtcdConfig{Prefix: *prefix, CACert: *cacert, Cert: *cert, Key: *key, User: *user,
			Password: *password, RequestTimeout: *timeout}
		for _, e := range strings.Split(*endpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.Endpoints = append(cfg.Endpoints, e)
			}
		}
		return cfg
	}
}

// PolicyFromEtcd is the -policy-from-etcd flag of glbdns and healthd: the operator's
// policy files come from etcd (glbctl policy push) instead of -policy.
func PolicyFromEtcd(fs *flag.FlagSet) *bool {
	return fs.Bool("policy-from-etcd", false, "read the operator's policy files from etcd, where glbctl policy push puts them, instead of -policy; needs -etcd-endpoints")
}

// PolicyURLFlags defines the flags of a policy fetched from a URL: -policy-url,
// -policy-url-interval, -policy-url-timeout and -policy-url-ca. The function it returns
// reads them after fs is parsed; URL "" means no URL.
func PolicyURLFlags(fs *flag.FlagSet) func() fetch.Config {
	u := fs.String("policy-url", "", "fetch the operator's policy from this http(s) `URL` instead of -policy: a .hcl file, or a tar.gz of a policy folder; polled with conditional GETs")
	every := fs.Duration("policy-url-interval", fetch.DefaultInterval, "poll period of -policy-url (a negative one: only at start and on SIGHUP)")
	timeout := fs.Duration("policy-url-timeout", fetch.DefaultTimeout, "bound of one fetch of -policy-url, its body included")
	ca := fs.String("policy-url-ca", "", "PEM `file` of the CAs that verify -policy-url's server, instead of the system's")
	return func() fetch.Config {
		return fetch.Config{URL: *u, Interval: *every, Timeout: *timeout, CAFile: *ca}
	}
}

// PolicySource checks -policy against -policy-from-etcd, -policy-url and
// -etcd-endpoints: one of the three sources, and etcd for the second.
func PolicySource(path string, fromEtcd bool, url string, etcd store.EtcdConfig) error {
	n := 0
	for _, given := range []bool{path != "", fromEtcd, url != ""} {
		if given {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("-policy, -policy-from-etcd and -policy-url: give one of the three")
	case fromEtcd && len(etcd.Endpoints) == 0:
		return errors.New("-policy-from-etcd needs -etcd-endpoints")
	case n == 0:
		return errors.New("-policy is required (or -policy-url, or -policy-from-etcd with -etcd-endpoints)")
	}
	return nil
}

// NSID parses an NSID flag: text, or hex after "0x" (as NSD's and Knot's nsid take both).
func NSID(v string) ([]byte, error) {
	if h, ok := strings.CutPrefix(v, "0x"); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("nsid %q: bad hex: %v", v, err)
		}
		return b, nil
	}
	if len(v) > 512 {
		return nil, errors.New("nsid: longer than 512 bytes")
	}
	return []byte(v), nil
}

// Prefixes parses CIDR prefixes, each value possibly a comma-separated list ("10.0.0.0/8,
// 2001:db8::/32"); a bare address is its own /32 or /128.
func Prefixes(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a prefix (like 192.0.2.0/24) nor an address", s)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// Token reads a bearer token from file (when file is not ""), else from the environment
// variable env, trimming surrounding white space; "" when neither is set. An empty file
// is an error: a token file that was meant to hold one.
func Token(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("read token: %s is empty", file)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv(env)), nil
}
