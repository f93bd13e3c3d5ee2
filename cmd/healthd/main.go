// Command healthd probes every member of every pool of a glbdns policy and publishes the
// results on its health API (GET /v1/health, see docs/health-api.md), which glbdns
// subscribes to.
//
//	healthd -policy PATH [-managed-dir DIR | -etcd-endpoints URLS] [-listen 127.0.0.1:8054]
//	        [-id NAME] [-advertise-url URL] [-log-level info]
//
// It loads exactly what glbdns serves: a policy store (policy/store) on the same policy
// path and managed folder (-managed-dir, env HEALTHD_MANAGED_DIR, default
// "POLICY.managed" beside the policy, as glbdns's), so pools and services made through
// glbdns's admin API are probed too; with -etcd-endpoints (etcdctl's flag names, env
// HEALTHD_ETCD_*) the managed documents come from the cluster's etcd instead, and healthd
// registers itself there as a reporter (its -advertise-url) so that every glbdns node of
// the cluster watches it. It only reads the store, never writes it. The store's
// watch (the policy files and the managed documents) and SIGHUP reload the policy; a
// policy with errors is refused and logged, and the old one keeps running. SIGINT and
// SIGTERM stop it.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/glbdns/glbdns/cluster"
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
		managedDir = flag.String("managed-dir", cli.Env("HEALTHD_MANAGED_DIR", ""), "`folder` of the objects glbdns's admin API manages, read and watched (default: POLICY.managed beside the policy, as glbdns's -managed-dir; env HEALTHD_MANAGED_DIR)")
		listen     = flag.String("listen", "127.0.0.1:8054", "health API address")
		id         = flag.String("id", hostname, "reporter id published in the health API")
		logLevel   = flag.String("log-level", "info", "log level: debug, info, warn or error")
		advertise  = flag.String("advertise-url", cli.Env("HEALTHD_ADVERTISE_URL", ""), "base `URL` glbdns nodes watch this reporter at when it registers in etcd (default http:// and the bound -listen address; env HEALTHD_ADVERTISE_URL)")
		cache      = flag.String("policy-cache", cli.Env("HEALTHD_POLICY_CACHE", ""), "`file` where healthd on etcd keeps the managed objects it probes, and probes them from when it starts while etcd is down (default POLICY.healthd.cache beside the policy, none with -policy-from-etcd; env HEALTHD_POLICY_CACHE)")
		maxConns   = flag.Int("max-conns", httpserve.DefaultMaxConns, "open health API connections at most (32 from one address); past it a new one is closed at once")
		etcd       = cli.EtcdFlags(flag.CommandLine, "HEALTHD")
		fromEtcd   = cli.PolicyFromEtcd(flag.CommandLine, "HEALTHD")
		version    = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *version {
		fmt.Println(buildinfo.String("healthd"))
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil || *id == "" {
		fmt.Fprintln(os.Stderr, "healthd: -id is required; -log-level is debug, info, warn or error")
		flag.Usage()
		os.Exit(2)
	}
	ec := etcd()
	if err := cli.PolicySource(*policyPath, *fromEtcd, ec); err != nil {
		fmt.Fprintln(os.Stderr, "healthd:", err)
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	st, err := openStore(*policyPath, *fromEtcd, *managedDir, ec, *cache, log)
	if err != nil {
		log.Error("healthd failed", "err", err)
		os.Exit(1)
	}
	defer st.Close()
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
	if *fromEtcd {
		name = "etcd " + ec.Prefix + store.PolicyDocs
	}
	err = healthd.Run(ctx, healthd.Config{
		PolicyPath: name,
		Load:       func(string) (*policy.Snapshot, error) { return load(st) },
		Listen:     *listen,
		HTTP:       httpserve.Config{MaxConns: *maxConns},
		ID:         *id,
		Logger:     log,
		Reload:     reload,
		Cluster:    registry,
		Advertise:  *advertise,
	})
	if err != nil {
		log.Error("healthd failed", "err", err)
		os.Exit(1)
	}
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
// keeps a local cache as glbdns does (its own file: both may run on one host). Opening a
// folder creates it when it is missing (an empty folder is no objects), as glbdns does. A
// folder that is missing and cannot be created (a read-only /etc under systemd's
// ProtectSystem=strict, glbdns keeping its folder elsewhere) holds no objects either:
// healthd then probes the policy files only, and says so, rather than not start.
func openStore(policyPath string, fromEtcd bool, managedDir string, etcd store.EtcdConfig, cache string, log *slog.Logger) (*store.Store, error) {
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
	st, err := store.Open(policyPath, managedDir)
	if err == nil {
		return st, nil
	}
	dir := cmp.Or(managedDir, store.DefaultManagedDir(policyPath))
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		return nil, err
	}
	log.Warn("managed folder missing and cannot be created; probing the policy files only", "dir", dir, "err", err)
	return store.OpenBackend(policyPath, noDocuments{dir})
}

// noDocuments is the store backend of a managed folder that does not exist: no documents,
// no writes.
type noDocuments struct{ dir string }

var errReadOnly = errors.New("healthd does not write the policy store")

func (noDocuments) ReadAll() (map[string][]byte, int64, error) { return nil, 0, nil }
func (noDocuments) Rev() (int64, error)                        { return 0, nil }
func (noDocuments) Apply(int64, []store.Change) (int64, error) { return 0, errReadOnly }
func (b noDocuments) Path(name string) string                  { return filepath.Join(b.dir, name) }
