// Command glbdns is the authoritative DNS server of glbdns: it answers every name of the
// zones in its policy, choosing backend addresses by each service's policy among the members
// that healthd reports healthy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/glbdns/glbdns/admin"
	"github.com/glbdns/glbdns/daemon"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/internal/cli"
	"github.com/glbdns/glbdns/internal/httpserve"
)

func main() {
	var (
		cfg       daemon.Config
		healthURL cli.Strings
		level     string
		version   bool
		noWatch   bool
		tokenFile string
		err       error
	)
	healthURL.FromEnv("GLBDNS_HEALTH")
	flag.StringVar(&cfg.Listen, "listen", cli.Env("GLBDNS_LISTEN", "127.0.0.1:5353"), "UDP and TCP `address` to answer DNS on (env GLBDNS_LISTEN)")
	flag.Func("nsid", "name server identifier returned to queries that ask for one (RFC 5001): text, or hex after 0x (env GLBDNS_NSID); default none", func(v string) error {
		b, err := cli.NSID(v)
		cfg.NSID = b
		return err
	})
	if v := os.Getenv("GLBDNS_NSID"); v != "" {
		b, err := cli.NSID(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "glbdns: GLBDNS_NSID:", err)
			os.Exit(2)
		}
		cfg.NSID = b
	}
	flag.StringVar(&cfg.Identity, "identity", cli.Env("GLBDNS_IDENTITY", ""), "`name` answered to CHAOS TXT id.server and hostname.bind (RFC 4892; env GLBDNS_IDENTITY); default none: refused")
	flag.StringVar(&cfg.ServerVersion, "server-version", cli.Env("GLBDNS_SERVER_VERSION", ""), "`text` answered to CHAOS TXT version.bind and version.server (env GLBDNS_SERVER_VERSION); default none: refused")
	flag.IntVar(&cfg.RRL.Rate, "rrl-rate", dnsserver.DefaultRRLRate, "UDP replies a second one client network gets for one response (an answer, NXDOMAIN or NODATA in a zone, errors) before rate limiting holds them back, at most 16777215; 0: off")
	flag.IntVar(&cfg.RRL.Slip, "rrl-slip", dnsserver.DefaultRRLSlip, "send every Nth rate-limited reply as an empty TC=1 reply (the client retries over TCP) and drop the others; 0 drops them all, 1 truncates them all")
	flag.IntVar(&cfg.RRL.IPv4Prefix, "rrl-ipv4-prefix", 24, "IPv4 prefix length of a client network for rate limiting")
	flag.IntVar(&cfg.RRL.IPv6Prefix, "rrl-ipv6-prefix", 56, "IPv6 prefix length of a client network for rate limiting")
	flag.IntVar(&cfg.RRL.TableSize, "rrl-table-size", dnsserver.DefaultRRLTableSize, "rate-limiting buckets (8 bytes each): the client networks and responses limited at once")
	var rrlExempt cli.Strings
	rrlExempt.FromEnv("GLBDNS_RRL_EXEMPT")
	flag.Var(&rrlExempt, "rrl-exempt", "client `prefix` never rate limited, repeatable or comma-separated (env GLBDNS_RRL_EXEMPT)")
	flag.StringVar(&cfg.Dnstap.Path, "dnstap", cli.Env("GLBDNS_DNSTAP", ""), "query log in dnstap to `path`: a file (created anew), or unix:/path/to/socket of a dnstap reader; sampled queries that the log cannot keep up with are dropped and counted, never waited for (env GLBDNS_DNSTAP); default off")
	flag.IntVar(&cfg.Dnstap.Sample, "dnstap-sample", 1, "with -dnstap, log one query in `N` (the first, the N+1st, ...)")
	flag.BoolVar(&cfg.Cookies, "cookies", true, "DNS cookies (RFC 7873, RFC 9018): a valid server cookie exempts a client from rate limiting")
	flag.StringVar(&cfg.CookieSecretFile, "cookie-secret-file", cli.Env("GLBDNS_COOKIE_SECRET_FILE", ""), "`file` of cookie secrets, 32 hex digits a line: the first mints, the others are still accepted; shared by every node of a name server address, read again at each reload (env GLBDNS_COOKIE_SECRET_FILE); default a random secret of this process")
	flag.BoolVar(&cfg.AdminPublicMetrics, "admin-public-metrics", false, "serve /metrics without the admin token (every read but /healthz and /readyz needs it when one is set)")
	flag.BoolVar(&cfg.AdminPublicStatus, "admin-public-status", false, "serve the status page and /v1/state without the admin token")
	flag.IntVar(&cfg.AdminMaxConns, "admin-max-conns", httpserve.DefaultMaxConns, "open admin connections at most (32 from one address); past it a new one is closed at once")
	flag.IntVar(&cfg.TCP.MaxConns, "tcp-max-conns", dnsserver.DefaultMaxTCPConns, "open DNS TCP connections at most; past it a new one closes the longest-idle one, or is refused when none is idle")
	flag.IntVar(&cfg.TCP.MaxConnsPerPrefix, "tcp-max-conns-per-prefix", 0, "open DNS TCP connections at most from one IPv4 /24 or IPv6 /56, as -tcp-max-conns (default a tenth of -tcp-max-conns)")
	flag.DurationVar(&cfg.TCP.IdleTimeout, "tcp-idle-timeout", dnsserver.DefaultTCPIdleTimeout, "close a DNS TCP connection idle that long between queries")
	flag.DurationVar(&cfg.TCP.QueryTimeout, "tcp-query-timeout", dnsserver.DefaultTCPQueryTimeout, "close a DNS TCP connection whose query, once its length has arrived, is not read and answered within that")
	flag.StringVar(&cfg.PolicyPath, "policy", cli.Env("GLBDNS_POLICY", ""), "policy `path`: a .hcl file or a directory of .hcl files (env GLBDNS_POLICY)")
	flag.Var(&healthURL, "health", "healthd `URL` to subscribe to, repeatable (env GLBDNS_HEALTH, comma-separated); none: every member is up")
	flag.DurationVar(&cfg.HealthStaleAfter, "health-stale-after", health.DefaultStaleAfter, "a healthd reporter silent this long stops counting")
	flag.DurationVar(&cfg.HealthGrace, "health-grace", health.DefaultGrace, "with no fresh reporter, keep the last known health this long, then count members as -health-unknown-is says")
	flag.Func("health-unknown-is", "how members of unknown health count unless their pool's unknown_is says: `up` (default, fail open) or down", func(v string) error {
		switch v {
		case "up":
			cfg.HealthUnknownIsDown = false
		case "down":
			cfg.HealthUnknownIsDown = true
		default:
			return fmt.Errorf("want up or down")
		}
		return nil
	})
	flag.StringVar(&cfg.Admin, "admin", cli.Env("GLBDNS_ADMIN", ""), "admin HTTP `address` (metrics, /healthz, /readyz, /v1/state, status page), e.g. 127.0.0.1:8053; empty: off (env GLBDNS_ADMIN)")
	flag.StringVar(&cfg.ManagedDir, "managed-dir", cli.Env("GLBDNS_MANAGED_DIR", ""), "`folder` for objects written through the admin API (default: POLICY.managed beside the policy; env GLBDNS_MANAGED_DIR)")
	etcd := cli.EtcdFlags(flag.CommandLine, "GLBDNS")
	fromEtcd := cli.PolicyFromEtcd(flag.CommandLine, "GLBDNS")
	flag.StringVar(&cfg.NodeID, "node-id", cli.Env("GLBDNS_NODE_ID", ""), "`name` of this node in the cluster (default: host name/DNS address; env GLBDNS_NODE_ID)")
	flag.StringVar(&cfg.PolicyCache, "policy-cache", cli.Env("GLBDNS_POLICY_CACHE", ""), "`file` where a node on etcd keeps the managed objects it serves, and serves them from when it starts while etcd is down (default: POLICY.cache beside the policy, none with -policy-from-etcd; env GLBDNS_POLICY_CACHE)")
	flag.StringVar(&tokenFile, "admin-token-file", "", "`file` holding the admin API's bearer token (else env GLBDNS_ADMIN_TOKEN); no token: the write API is off")
	flag.StringVar(&cfg.GeoIPDatabase, "geoip-database", cli.Env("GLBDNS_GEOIP_DATABASE", ""), "GeoIP2 City or Country `mmdb`, overriding the policy's geoip block (env GLBDNS_GEOIP_DATABASE)")
	flag.StringVar(&cfg.GeoIPASNDatabase, "geoip-asn-database", cli.Env("GLBDNS_GEOIP_ASN_DATABASE", ""), "GeoLite2 ASN `mmdb`, overriding the policy's geoip block (env GLBDNS_GEOIP_ASN_DATABASE)")
	flag.BoolVar(&noWatch, "no-watch", false, "do not reload when the policy files change (SIGHUP still reloads)")
	flag.StringVar(&level, "log-level", cli.Env("GLBDNS_LOG_LEVEL", "info"), "log `level`: debug, info, warn or error (env GLBDNS_LOG_LEVEL)")
	flag.BoolVar(&version, "version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: glbdns -policy PATH [flags]\n       glbdns -policy-from-etcd -etcd-endpoints URLS [flags]\n\nServes the zones and load-balanced names of an HCL policy. SIGHUP, or a change of\nits files, reloads the policy; SIGINT and SIGTERM stop the server cleanly.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if version {
		fmt.Println(buildinfo.String("glbdns"))
		return
	}
	cfg.HealthURLs = healthURL
	if cfg.RRL.Exempt, err = cli.Prefixes(rrlExempt); err != nil {
		fmt.Fprintln(os.Stderr, "glbdns: -rrl-exempt:", err)
		os.Exit(2)
	}
	cfg.Etcd = etcd()
	cfg.NoWatch = noWatch
	tok, err := admin.LoadToken(tokenFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "glbdns:", err)
		os.Exit(2)
	}
	cfg.AdminToken = tok
	log, err := cli.NewLogger(os.Stderr, level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "glbdns:", err)
		os.Exit(2)
	}
	cfg.PolicyFromEtcd = *fromEtcd
	if err := cli.PolicySource(cfg.PolicyPath, cfg.PolicyFromEtcd, cfg.Etcd); err != nil {
		fmt.Fprintln(os.Stderr, "glbdns:", err)
		flag.Usage()
		os.Exit(2)
	}
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg); err != nil {
		log.Error("glbdns failed", "err", err)
		if errors.Is(err, daemon.ErrPolicy) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}
