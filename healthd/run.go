package healthd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/internal/httpserve"
	"github.com/glbdns/glbdns/policy"
)

// Config configures Run.
type Config struct {
	// HTTP bounds the health API's listener (connections in all and per source,
	// timeouts, headers); zero fields take httpserve's defaults.
	HTTP httpserve.Config
	// PolicyPath is the policy file or directory to probe the members of. Required.
	PolicyPath string
	// Load compiles the policy at a path. cmd/healthd passes its policy store's Load (the
	// operator's files plus the objects managed through glbdns's admin API, as glbdns
	// loads them); policy.LoadPath reads the files only. Required.
	Load func(path string) (*policy.Snapshot, error)
	// Listen are the API's addresses, default "127.0.0.1:8054": each is served, with its
	// own connection bounds (HTTP), and one that cannot be bound fails the start.
	Listen []string
	// ID names this reporter in the API (the host name is a good choice). Required.
	ID string
	// Logger, default slog.Default().
	Logger *slog.Logger
	// Reload: every receive reloads the policy (cmd/healthd sends on SIGHUP and when the
	// store's watch sees the policy files or the managed documents change). A policy with
	// errors is refused and logged, and the old one keeps running; one with the same hash
	// as the running one changes nothing.
	Reload <-chan struct{}
	// MaxInFlight bounds concurrent probes, default DefaultMaxInFlight.
	MaxInFlight int
	// Preparers by check type, default probe.Default.
	Preparers map[string]probe.Preparer
	// Registry receives the metrics, served at /metrics; default a new registry with the
	// Go and process collectors.
	Registry *prometheus.Registry
	// Collectors are registered beside healthd's own metrics (the policy's fetches from
	// a URL).
	Collectors []prometheus.Collector
	// Cluster, when set (a glbdns cluster on etcd), registers this reporter under its ID
	// once it listens, so that every glbdns node of the cluster watches it with no change
	// on any node; its lease lapses when healthd stops or dies.
	Cluster *cluster.Registry
	// Advertise is the base URL glbdns nodes watch this reporter at, default "http://"
	// and the bound listen address (which a node elsewhere cannot reach when it is
	// loopback: set it).
	Advertise string
	// GLBDNS are glbdns admin base URLs asked which pools they answered (GET
	// /v1/activity), for the cold_start pools; the nodes registered in Cluster are asked
	// too. GLBDNSToken is the bearer token sent (glbdns's report token); ActivityEvery the
	// period, default DefaultActivityEvery. Nobody is asked while no pool has cold_start.
	GLBDNS        []string
	GLBDNSToken   string
	ActivityEvery time.Duration
}

// shutdownGrace bounds how long Run waits for in-flight API requests at exit; blocking
// watches are cancelled at once through the server's base context.
const shutdownGrace = 2 * time.Second

// Run loads the policy, probes its members and serves the health API until ctx is done.
// It fails only at startup (no policy, cannot listen); later policy errors are logged.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:8054"}
	}
	if cfg.Load == nil || cfg.PolicyPath == "" || cfg.ID == "" {
		return errors.New("healthd: policy path, loader and id are required")
	}
	log := cfg.Logger.With("component", "healthd")
	reg := cfg.Registry
	if reg == nil {
		reg = newRegistry()
	}
	metrics := NewMetrics(reg)
	reg.MustRegister(cfg.Collectors...)

	snap, err := cfg.Load(cfg.PolicyPath)
	metrics.reload(err == nil)
	if err != nil {
		return fmt.Errorf("load policy %q: %w", cfg.PolicyPath, err)
	}
	board := NewBoard(cfg.ID)
	act := NewActivity()
	sched := NewScheduler(SchedulerConfig{
		Board: board, Logger: log, Preparers: cfg.Preparers, MaxInFlight: cfg.MaxInFlight, Metrics: metrics, Activity: act,
	})
	defer sched.Close()
	sched.Update(snap)
	if len(cfg.GLBDNS) > 0 || cfg.Cluster != nil {
		go PollActivity(ctx, act, ActivityConfig{URLs: cfg.GLBDNS, Cluster: cfg.Cluster, Token: cfg.GLBDNSToken,
			Every: cfg.ActivityEvery, Logger: log, Wanted: sched.HasColdStart})
	} else if sched.HasColdStart() {
		log.Warn("cold_start pools, but no glbdns to ask which pools are answered (-glbdns, or etcd): they never count as idle")
	}
	log.Info("policy loaded", "path", cfg.PolicyPath, "hash", snap.Hash, "members", len(snap.Members))

	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close() // Shutdown has closed them on a clean stop; this is for the errors
		}
	}()
	var addrs []string
	for _, a := range cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listen on %q: %w", a, err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	// Descriptors: every API connection and every probe at its bound, and a reserve for
	// the policy's files, etcd and the log.
	httpserve.Budget(cmp.Or(cfg.HTTP.MaxConns, httpserve.DefaultMaxConns)+cmp.Or(cfg.MaxInFlight, DefaultMaxInFlight)+64, log)
	// addr= is the first address (what scripts read), addrs= every one.
	log.Info("listening", "addr", addrs[0], "addrs", strings.Join(addrs, ","))
	if cfg.Cluster != nil {
		info := api.ReporterInfo{ID: cfg.ID, URL: cmp.Or(cfg.Advertise, "http://"+addrs[0]),
			Version: buildinfo.Version, Started: time.Now().UTC()}
		go cfg.Cluster.Register(ctx, cluster.Reporters, cfg.ID, func() any { return info }, nil, 0)
		log.Info("registered in the cluster", "url", info.URL)
	}

	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := cfg.HTTP.Server(NewHandler(board, sched.Ready, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})), log)
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- srv.Serve(httpserve.Listen(ln, cfg.HTTP)) }()
	}

	for {
		select {
		case <-ctx.Done():
			cancelBase() // wake blocking watches so they answer before we close
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			_ = srv.Shutdown(sctx)
			cancel()
			log.Info("stopped")
			return nil
		case err := <-serveErr:
			return fmt.Errorf("serve health api: %w", err)
		case <-cfg.Reload:
			snap = reload(cfg, log, metrics, sched, snap)
		}
	}
}

// reload loads the policy again and gives it to sched, and returns the policy running
// now; a policy with errors is refused and the old one (cur) keeps running. A policy of
// the same hash (a drain written to the managed folder, a file saved unchanged) is the
// same policy: nothing to update.
func reload(cfg Config, log *slog.Logger, metrics *Metrics, sched *Scheduler, cur *policy.Snapshot) *policy.Snapshot {
	next, err := cfg.Load(cfg.PolicyPath)
	metrics.reload(err == nil)
	if err != nil {
		log.Error("policy reload refused, keeping the old policy", "path", cfg.PolicyPath, "err", err)
		return cur
	}
	if next.Hash == cur.Hash {
		log.Debug("policy unchanged", "path", cfg.PolicyPath, "hash", next.Hash)
		return cur
	}
	sched.Update(next)
	log.Info("policy reloaded", "path", cfg.PolicyPath, "hash", next.Hash, "members", len(next.Members))
	return next
}

// newRegistry is Run's default registry: healthd's metrics beside the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
