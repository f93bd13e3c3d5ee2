// Command healthd probes every member of every pool of a glbdns policy and publishes the
// results on its health API (GET /v1/health, see docs/health-api.md), which glbdns
// subscribes to.
//
//	healthd -policy PATH [-managed-dir DIR | -etcd-endpoints URLS] [-listen 127.0.0.1:8054]
//	        [-id NAME] [-advertise-url URL] [-log-level info]
//
// It loads exactly what glbdns serves: a policy store (policy/store) on the same policy
// path and managed folder (-managed-dir, default "POLICY.managed" beside the policy, as
// glbdns's), so pools and services made through glbdns's admin API are probed too; with
// -etcd-endpoints (etcdctl's flag names) the managed documents come from the cluster's etcd instead, and healthd
// registers itself there as a reporter (its -advertise-url) so that every glbdns node of
// the cluster watches it. It only reads the store, never writes it. The store's
// watch (the policy files and the managed documents) and SIGHUP reload the policy; a
// policy with errors is refused and logged, and the old one keeps running. SIGINT and
// SIGTERM stop it.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
	"github.com/glbdns/glbdns/fetch"
	"github.com/glbdns/glbdns/healthd"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/internal/cli"
	"github.com/glbdns/glbdns/internal/httpserve"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

func main() {
	hostname, _ := os.Hostname()
	var (
		policyPath = flag.String("policy", "", "policy file or directory of .hcl files (required, unless -policy-from-etcd)")
		managedDir = flag.String("managed-dir", "", "`folder` of the objects glbdns's admin API manages, read and watched (default: POLICY.managed beside the policy, as glbdns's -managed-dir)")
		id         = flag.String("id", hostname, "reporter id published in the health API")
		logger     = cli.LogFlags(flag.CommandLine)
		advertise  = flag.String("advertise-url", "", "base `URL` glbdns nodes watch this reporter at when it registers in etcd (default http:// and the bound -listen address)")
		cache      = flag.String("policy-cache", "", "`file` where healthd on etcd keeps the managed objects it probes, and probes them from when it starts while etcd is down (default POLICY.healthd.cache beside the policy, none with -policy-from-etcd)")
		maxConns   = flag.Int("max-conns", httpserve.DefaultMaxConns, "open health API connections at most (32 from one address); past it a new one is closed at once")
		etcd       = cli.EtcdFlags(flag.CommandLine, "HEALTHD")
		fromEtcd   = cli.PolicyFromEtcd(flag.CommandLine)
		policyURL  = cli.PolicyURLFlags(flag.CommandLine)
		version    = flag.Bool("version", false, "print the version and exit")
		once       = flag.Bool("once", false, "check every member until each has a verdict (rise or fall, at its checks' intervals), print the report as JSON on stdout and exit: 0 when none is down, 1 when one is, 3 when one is still unknown at -once-timeout, 2 on an error")
		onceFor    = flag.Duration("once-timeout", time.Minute, "with -once, give up waiting for verdicts after this long")
		pushTTL    = flag.Duration("push-ttl", 2*time.Minute, "with -once -push, how long glbdns counts the pushed report (1s to 1h): longer than the time between two runs")
		reportFile = flag.String("report-token-file", "", "`file` holding glbdns's report token, for -push and -glbdns (else env HEALTHD_REPORT_TOKEN)")
		activityEv = flag.Duration("activity-interval", healthd.DefaultActivityEvery, "how often to ask the glbdns nodes which pools they answered, for cold_start pools")
		listen     cli.Strings
		push       cli.Strings
		glbdnsURLs cli.Strings
	)
	flag.Var(&listen, "listen", "health API `address`, repeatable (the environment's is comma-separated); default 127.0.0.1:8054")
	flag.Var(&glbdnsURLs, "glbdns", "glbdns admin API `URL` (http://host:8053) to ask which pools it answered (GET /v1/activity, with the report token), so that idle cold_start pools are probed less; repeatable; with etcd every registered node is asked too")
	flag.Var(&push, "push", "with -once, push the report to the glbdns admin API at `URL` (http://host:8053; POST /v1/health/report with the report token), repeatable: one node of a cluster on etcd, every node without")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: healthd -policy PATH [flags]\n       healthd -policy-url URL [flags]\n       healthd -policy-from-etcd -etcd-endpoints URLS [flags]\n\nProbes every member of the policy's pools and publishes their health for glbdns.\n\nEvery flag but -version can be set in the environment instead, as HEALTHD_ and its\nname in capitals with _ for -: HEALTHD_LISTEN=0.0.0.0:8054; a flag on the command line wins.\n\nFlags:\n")
		cli.PrintDefaults(flag.CommandLine, "HEALTHD")
	}
	cli.MustParseEnv("healthd", "HEALTHD")
	if *version {
		fmt.Println(buildinfo.String("healthd"))
		return
	}
	log, err := logger(os.Stderr)
	if err != nil || *id == "" {
		fmt.Fprintln(os.Stderr, "healthd:", cmp.Or(err, errors.New("-id is required")))
		flag.Usage()
		os.Exit(2)
	}
	pushTo, err := pushConfig(push, *pushTTL, *reportFile, *once)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthd:", err)
		os.Exit(2)
	}
	activityToken, err := cli.Token(*reportFile, "HEALTHD_REPORT_TOKEN") // "" for nodes whose reads are open
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthd:", err)
		os.Exit(2)
	}
	ec := etcd()
	fc := policyURL()
	if err := cli.PolicySource(*policyPath, *fromEtcd, fc.URL, ec); err != nil {
		fmt.Fprintln(os.Stderr, "healthd:", err)
		flag.Usage()
		os.Exit(2)
	}
	var fetched *fetch.Policy
	if fc.URL != "" {
		fc.Logger = log
		if fetched, err = fetch.New(fc); err != nil {
			fmt.Fprintln(os.Stderr, "healthd:", err)
			os.Exit(2)
		}
	}
	st, err := openStore(*policyPath, *fromEtcd, fetched, *managedDir, ec, *cache, log)
	if err != nil {
		log.Error("healthd failed", "err", err)
		os.Exit(1)
	}
	defer st.Close()
	if *once {
		os.Exit(runOnce(st, *id, *onceFor, pushTo, log))
	}
	var registry *cluster.Registry
	if b, ok := st.Backend().(*store.EtcdBackend); ok {
		registry = cluster.New(b.Client(), b.Prefix(), log)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	changed, err := st.Watch(ctx, store.WatchConfig{Logger: log})
	if err != nil {
		log.Warn("policy watch failed, reload with SIGHUP", "err", err)
	}
	var collectors []prometheus.Collector
	if fetched != nil {
		collectors = append(collectors, fetched.Collector("healthd"))
		if changed != nil {
			go fetched.Run(ctx) // its changes come through the watch
		}
	}
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("reload requested", "by", "SIGHUP")
			case <-changed: // nil without a watch
				log.Debug("reload requested", "by", "watch")
			}
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()

	name := *policyPath
	switch {
	case *fromEtcd:
		name = "etcd " + ec.Prefix + store.PolicyDocs
	case fetched != nil:
		name = fetched.Name()
	}
	err = healthd.Run(ctx, healthd.Config{
		PolicyPath: name,
		Load:       func(string) (*policy.Snapshot, error) { return load(st) },
		Listen:     listen,
		Collectors: collectors,
		HTTP:       httpserve.Config{MaxConns: *maxConns},
		ID:         *id,
		Logger:     log,
		Reload:     reload,
		Cluster:    registry,
		Advertise:  *advertise,

		GLBDNS:        glbdnsURLs,
		GLBDNSToken:   activityToken,
		ActivityEvery: *activityEv,
	})
	if err != nil {
		log.Error("healthd failed", "err", err)
		os.Exit(1)
	}
}

// pushing is where -once pushes its report: glbdns admin URLs, the TTL and the token.
type pushing struct {
	urls  []string
	ttl   time.Duration
	token string
}

// pushConfig checks the -push flags: they need -once, a TTL glbdns accepts and a token.
func pushConfig(urls []string, ttl time.Duration, tokenFile string, once bool) (pushing, error) {
	if len(urls) == 0 {
		return pushing{}, nil
	}
	if !once {
		return pushing{}, errors.New("-push needs -once (an always-on healthd is watched, not pushed from)")
	}
	if ttl < time.Second || ttl > time.Hour {
		return pushing{}, fmt.Errorf("-push-ttl %v: want 1s to 1h, as glbdns accepts", ttl)
	}
	tok, err := cli.Token(tokenFile, "HEALTHD_REPORT_TOKEN")
	if err == nil && tok == "" {
		err = errors.New("-push needs glbdns's report token: -report-token-file or HEALTHD_REPORT_TOKEN")
	}
	return pushing{urls: urls, ttl: ttl, token: tok}, err
}

// runOnce is -once: the report of healthd.Once as JSON on stdout, pushed to every -push
// URL, and the exit status that sums it up.
func runOnce(st *store.Store, id string, timeout time.Duration, push pushing, log *slog.Logger) int {
	snap, err := load(st)
	if err != nil {
		log.Error("policy refused", "err", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	defer cancelT()
	start := time.Now()
	r := healthd.Once(ctx, snap, id, log, nil)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		log.Error("write the report", "err", err)
		return 2
	}
	down, unknown := 0, 0
	for _, m := range r.Members {
		switch m.Status {
		case api.StatusDown:
			down++
		case api.StatusUnknown:
			unknown++
		}
	}
	log.Info("checked once", "members", len(r.Members), "down", down, "unknown", unknown, "took", time.Since(start).Round(time.Millisecond))
	failed := false
	body := healthd.Pushed(r, push.ttl)
	for _, u := range push.urls {
		// Not bounded by ctx, whose -once-timeout the checks may have used up: each push
		// has its own healthd.PushTimeout.
		acc, err := healthd.Push(context.Background(), http.DefaultClient, u, push.token, body)
		if err != nil {
			log.Error("report not pushed", "err", err)
			failed = true
			continue
		}
		log.Info("report pushed", "url", u, "reporter", acc.Reporter, "members", acc.Members, "expires", acc.Expires)
	}
	switch {
	case failed:
		return 2
	case down > 0:
		return 1
	case unknown > 0:
		return 3
	}
	return 0
}

// load adapts the store's Load, the loader glbdns uses (the operator's files plus the
// managed documents): any error diagnostic refuses the whole policy.
func load(st *store.Store) (*policy.Snapshot, error) {
	snap, diags := st.Load()
	if diags.HasErrors() {
		// Every error, not hcl's "and N other diagnostic(s)" summary: the operator
		// fixing a refused reload needs them all with their file:line:col.
		var errs []error
		for _, d := range diags.Errs() {
			errs = append(errs, d)
		}
		return nil, errors.Join(errs...)
	}
	return snap, nil
}

// openStore opens the policy store healthd reads; healthd never writes to it. On etcd it
// keeps a local cache as glbdns does (its own file: both may run on one host). A managed
// folder is opened read-only (store.OpenReadOnly), as glbdns without a write API opens
// it: never created, no documents while it is missing, watched for until it appears (the
// glbdns that writes it makes it), so that healthd runs on a read-only file system.
func openStore(policyPath string, fromEtcd bool, fetched *fetch.Policy, managedDir string, etcd store.EtcdConfig, cache string, log *slog.Logger) (*store.Store, error) {
	if fetched != nil {
		src := store.Source{ManagedDir: managedDir, Etcd: etcd, Cache: cache, ReadOnly: true, Operator: fetched,
			CacheError: func(err error) { log.Warn("policy cache not written", "file", cache, "err", err) }}
		return store.OpenSource("", src)
	}
	if len(etcd.Endpoints) > 0 {
		if cache == "" && !fromEtcd {
			cache = strings.TrimSuffix(store.DefaultCacheFile(policyPath), ".cache") + ".healthd.cache"
		}
		if cache == "" {
			log.Warn("no -policy-cache: healthd cannot start while etcd is unreachable")
		}
		return store.OpenSource(policyPath, store.Source{Etcd: etcd, Cache: cache, PolicyFromEtcd: fromEtcd,
			CacheError: func(err error) { log.Warn("policy cache not written", "file", cache, "err", err) }})
	}
	return store.OpenReadOnly(policyPath, managedDir)
}
