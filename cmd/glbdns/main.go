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
	"strconv"
	"syscall"
	"time"

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
		cfg        daemon.Config
		healthURL  cli.Strings
		listen     cli.Strings
		version    bool
		noWatch    bool
		tokenFile  string
		reportFile string
		err        error
	)
	flag.Var(&listen, "listen", "UDP and TCP `address` to answer DNS on, repeatable (the environment's is comma-separated); [::]:PORT answers IPv4 and IPv6 (default "+dnsserver.DefaultAddr+")")
	flag.Func("nsid", "name server identifier returned to queries that ask for one (RFC 5001): text, or hex after 0x; default none", func(v string) error {
		b, err := cli.NSID(v)
		cfg.NSID = b
		return err
	})
	flag.StringVar(&cfg.Identity, "identity", "", "`name` answered to CHAOS TXT id.server and hostname.bind (RFC 4892); default none: refused")
	flag.StringVar(&cfg.ServerVersion, "server-version", "", "`text` answered to CHAOS TXT version.bind and version.server; default none: refused")
	flag.Func("dnssec-cache", "RRsets whose online signatures are kept for reuse within their hour, for signed zones (default 100000; 0: none, every DO=1 answer signs)", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number of RRsets, 0 or more")
		}
		cfg.SignatureCache = n
		if n == 0 {
			cfg.SignatureCache = -1
		}
		return nil
	})
	flag.IntVar(&cfg.RRL.Rate, "rrl-rate", dnsserver.DefaultRRLRate, "UDP replies a second one client network gets for one response (an answer, NXDOMAIN or NODATA in a zone, errors) before rate limiting holds them back, at most 16777215; 0: off")
	flag.StringVar(&cfg.XDP.Interface, "xdp", "", "answer the UDP queries to the -listen addresses that arrive on `interface` from AF_XDP sockets, past the kernel's UDP stack (Linux, root or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK; docs/xdp.md); TCP and everything else still reaches the sockets. If the kernel or the interface refuses, the log says why and the sockets answer; default off")
	flag.IntVar(&cfg.XDP.Queues, "xdp-queues", 0, "with -xdp, serve the interface's receive queues 0 to N-1, a loop and a socket each (default every queue)")
	flag.IntVar(&cfg.RRL.Slip, "rrl-slip", dnsserver.DefaultRRLSlip, "send every Nth rate-limited reply as an empty TC=1 reply (the client retries over TCP) and drop the others; 0 drops them all, 1 truncates them all")
	flag.IntVar(&cfg.RRL.IPv4Prefix, "rrl-ipv4-prefix", 24, "IPv4 prefix length of a client network for rate limiting")
	flag.IntVar(&cfg.RRL.IPv6Prefix, "rrl-ipv6-prefix", 56, "IPv6 prefix length of a client network for rate limiting")
	flag.IntVar(&cfg.RRL.TableSize, "rrl-table-size", dnsserver.DefaultRRLTableSize, "rate-limiting buckets (8 bytes each): the client networks and responses limited at once")
	var rrlExempt cli.Strings
	flag.Var(&rrlExempt, "rrl-exempt", "client `prefix` never rate limited, repeatable or comma-separated")
	flag.StringVar(&cfg.Dnstap.Path, "dnstap", "", "query log in dnstap to `path`: a file (created anew), or unix:/path/to/socket of a dnstap reader; sampled queries that the log cannot keep up with are dropped and counted, never waited for; default off")
	flag.IntVar(&cfg.Dnstap.Sample, "dnstap-sample", 1, "with -dnstap, log one query in `N` (the first, the N+1st, ...)")
	flag.BoolVar(&cfg.Cookies, "cookies", true, "DNS cookies (RFC 7873, RFC 9018): a valid server cookie exempts a client from rate limiting")
	flag.StringVar(&cfg.CookieSecretFile, "cookie-secret-file", "", "`file` of cookie secrets, 32 hex digits a line: the first mints, the others are still accepted; shared by every node of a name server address, read again at each reload; default a random secret of this process")
	flag.BoolVar(&cfg.AdminPublicMetrics, "admin-public-metrics", false, "serve /metrics without the admin token (every read but /healthz and /readyz needs it when one is set)")
	flag.BoolVar(&cfg.AdminPublicStatus, "admin-public-status", false, "serve the status page and /v1/state without the admin token")
	flag.DurationVar(&cfg.HistoryInterval, "history-interval", 10*time.Second, "sampling period of the status page's 15-minute plot of answer shares and health (/v1/history)")
	flag.IntVar(&cfg.AdminMaxConns, "admin-max-conns", httpserve.DefaultMaxConns, "open admin connections at most (32 from one address); past it a new one is closed at once")
	flag.IntVar(&cfg.TCP.MaxConns, "tcp-max-conns", dnsserver.DefaultMaxTCPConns, "open DNS TCP connections at most; past it a new one closes the longest-idle one, or is refused when none is idle")
	flag.IntVar(&cfg.TCP.MaxConnsPerPrefix, "tcp-max-conns-per-prefix", 0, "open DNS TCP connections at most from one IPv4 /24 or IPv6 /56, as -tcp-max-conns (default a tenth of -tcp-max-conns)")
	flag.DurationVar(&cfg.TCP.IdleTimeout, "tcp-idle-timeout", dnsserver.DefaultTCPIdleTimeout, "close a DNS TCP connection idle that long between queries")
	flag.DurationVar(&cfg.TCP.QueryTimeout, "tcp-query-timeout", dnsserver.DefaultTCPQueryTimeout, "close a DNS TCP connection whose query, once its length has arrived, is not read and answered within that")
	flag.StringVar(&cfg.PolicyPath, "policy", "", "policy `path`: a .hcl file or a directory of .hcl files")
	flag.Var(&healthURL, "health", "healthd `URL` to subscribe to, repeatable (the environment's is comma-separated); none: every member is up")
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
	flag.StringVar(&cfg.Admin, "admin", "", "admin HTTP `address` (metrics, /healthz, /readyz, /v1/state, status page), e.g. 127.0.0.1:8053; empty: off")
	flag.StringVar(&cfg.ManagedDir, "managed-dir", "", "`folder` for objects written through the admin API (default: POLICY.managed beside the policy); without an admin token it is only read, when it exists")
	etcd := cli.EtcdFlags(flag.CommandLine, "GLBDNS")
	fromEtcd := cli.PolicyFromEtcd(flag.CommandLine)
	policyURL := cli.PolicyURLFlags(flag.CommandLine)
	flag.StringVar(&cfg.NodeID, "node-id", "", "`name` of this node in the cluster (default: host name/DNS address)")
	flag.StringVar(&cfg.PolicyCache, "policy-cache", "", "`file` where a node on etcd keeps the managed objects it serves, and serves them from when it starts while etcd is down (default: POLICY.cache beside the policy, none with -policy-from-etcd)")
	flag.StringVar(&reportFile, "report-token-file", "", "`file` holding the bearer token that may push health reports (POST /v1/health/report) and nothing else (else env GLBDNS_REPORT_TOKEN); the admin token may push too")
	flag.StringVar(&tokenFile, "admin-token-file", "", "`file` holding the admin API's bearer token (else env GLBDNS_ADMIN_TOKEN); no token: the write API is off")
	flag.StringVar(&cfg.GeoIPDatabase, "geoip-database", "", "GeoIP2 City or Country `mmdb`, overriding the policy's geoip block")
	flag.StringVar(&cfg.GeoIPASNDatabase, "geoip-asn-database", "", "GeoLite2 ASN `mmdb`, overriding the policy's geoip block")
	flag.BoolVar(&noWatch, "no-watch", false, "do not reload when the policy files change (SIGHUP still reloads)")
	logger := cli.LogFlags(flag.CommandLine)
	flag.BoolVar(&version, "version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: glbdns -policy PATH [flags]\n       glbdns -policy-url URL [flags]\n       glbdns -policy-from-etcd -etcd-endpoints URLS [flags]\n\nServes the zones and load-balanced names of an HCL policy. SIGHUP, or a change of\nits files, reloads the policy; SIGINT and SIGTERM stop the server cleanly.\n\nEvery flag but -version can be set in the environment instead, as GLBDNS_ and its\nname in capitals with _ for -: GLBDNS_RRL_RATE=100; a flag on the command line wins.\n\nFlags:\n")
		cli.PrintDefaults(flag.CommandLine, "GLBDNS")
	}
	cli.MustParseEnv("glbdns", "GLBDNS")
	if version {
		fmt.Println(buildinfo.String("glbdns"))
		return
	}
	cfg.HealthURLs, cfg.Listen = healthURL, listen
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
	if cfg.ReportToken, err = admin.LoadTokenFrom(reportFile, "GLBDNS_REPORT_TOKEN"); err != nil {
		fmt.Fprintln(os.Stderr, "glbdns:", err)
		os.Exit(2)
	}
	log, err := logger(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "glbdns:", err)
		os.Exit(2)
	}
	cfg.PolicyFromEtcd, cfg.PolicyURL = *fromEtcd, policyURL()
	if err := cli.PolicySource(cfg.PolicyPath, cfg.PolicyFromEtcd, cfg.PolicyURL.URL, cfg.Etcd); err != nil {
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
