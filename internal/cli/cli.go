// Package cli holds the small pieces every glbdns binary shares: a logger built from a
// -log-level flag, environment defaults for flags, repeatable string flags, and the flags
// of the shared store on etcd.
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
	"strconv"
	"strings"
	"time"

	"github.com/glbdns/glbdns/policy/store"
)

// NewLogger returns a text slog.Logger on w at the named level (debug, info, warn, error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// Env returns the environment variable name if set and non-empty, else def. Flags use it as
// their default so that GLBDNS_LISTEN=... works like -listen ....
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Strings is a repeatable string flag (-health A -health B); a comma-separated environment
// default seeds it.
type Strings []string

// String implements flag.Value.
func (s *Strings) String() string { return strings.Join(*s, ",") }

// Set implements flag.Value: each use of the flag appends one value.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// FromEnv seeds s from a comma-separated environment variable.
func (s *Strings) FromEnv(name string) {
	for _, v := range strings.Split(os.Getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			*s = append(*s, v)
		}
	}
}

// EtcdFlags defines the flags (and environment defaults, ENV_ETCD_...) of a shared store on
// etcd, named as etcdctl names them: -etcd-endpoints (comma-separated), -etcd-prefix,
// -etcd-cacert, -etcd-cert, -etcd-key, -etcd-user, -etcd-password and -etcd-command-timeout. The function it
// returns reads them after fs is parsed; no endpoint means no etcd.
func EtcdFlags(fs *flag.FlagSet, env string) func() store.EtcdConfig {
	endpoints := fs.String("etcd-endpoints", Env(env+"_ETCD_ENDPOINTS", ""),
		"comma-separated etcd client `URLs` of the shared store, e.g. http://10.0.0.1:2379 (env "+env+"_ETCD_ENDPOINTS); none: no etcd")
	prefix := fs.String("etcd-prefix", Env(env+"_ETCD_PREFIX", store.DefaultEtcdPrefix),
		"etcd key `prefix` of this glbdns cluster (env "+env+"_ETCD_PREFIX)")
	cacert := fs.String("etcd-cacert", Env(env+"_ETCD_CACERT", ""), "CA `file` that verifies the etcd servers' certificates (env "+env+"_ETCD_CACERT)")
	cert := fs.String("etcd-cert", Env(env+"_ETCD_CERT", ""), "client certificate `file` for etcd (env "+env+"_ETCD_CERT)")
	key := fs.String("etcd-key", Env(env+"_ETCD_KEY", ""), "client key `file` for etcd (env "+env+"_ETCD_KEY)")
	user := fs.String("etcd-user", Env(env+"_ETCD_USER", ""), "etcd `user` (env "+env+"_ETCD_USER)")
	timeout := fs.Duration("etcd-command-timeout", 2*time.Second, "bound of one etcd request; a write that passes it answers 503")
	password := fs.String("etcd-password", "", "etcd `password` (better: env "+env+"_ETCD_PASSWORD, which is not seen in the process list)")
	return func() store.EtcdConfig {
		cfg := store.EtcdConfig{Prefix: *prefix, CACert: *cacert, Cert: *cert, Key: *key, User: *user,
			Password: Env(env+"_ETCD_PASSWORD", *password), RequestTimeout: *timeout}
		if *password != "" {
			cfg.Password = *password
		}
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
func PolicyFromEtcd(fs *flag.FlagSet, env string) *bool {
	def, _ := strconv.ParseBool(Env(env+"_POLICY_FROM_ETCD", "false"))
	return fs.Bool("policy-from-etcd", def, "read the operator's policy files from etcd, where glbctl policy push puts them, instead of -policy; needs -etcd-endpoints (env "+env+"_POLICY_FROM_ETCD)")
}

// PolicySource checks -policy against -policy-from-etcd and -etcd-endpoints: one of the
// two sources, and etcd for the second.
func PolicySource(path string, fromEtcd bool, etcd store.EtcdConfig) error {
	switch {
	case fromEtcd && path != "":
		return errors.New("-policy and -policy-from-etcd: give one of the two")
	case fromEtcd && len(etcd.Endpoints) == 0:
		return errors.New("-policy-from-etcd needs -etcd-endpoints")
	case !fromEtcd && path == "":
		return errors.New("-policy is required (or -policy-from-etcd with -etcd-endpoints)")
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
