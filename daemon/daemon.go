// Package daemon wires the glbdns binary together: it loads the policy, starts the DNS
// server, subscribes to healthd reporters, serves the admin listener (metrics, health
// probes, state, status page) and reloads the policy on SIGHUP and when its files change.
// cmd/glbdns only parses flags and calls Run.
//
// # Reload
//
// SIGHUP, a change of a watched file (fsnotify) and Daemon.Reload all do the same: the
// policy store loads the policy path again and compiles a new snapshot, which it
// publishes to the daemon (publish): the daemon opens the GeoIP databases it names and
// swaps it into the server atomically. An admin API write publishes the snapshot that
// validated it the same way, so a write compiles the policy once. A reload that fails is
// refused whole: every diagnostic is logged with its file:line:col, the failure is counted
// (glbdns_policy_reloads_total{result="failure"}, glbdns_policy_last_reload_successful 0)
// and the old snapshot keeps serving (DESIGN.md, "Data flow"). Health survives a reload:
// package health keys its verdicts and drains by member identity ("pool/member") and
// builds a view for every new snapshot, and per-member answer counters carry over by
// identity too.
//
// The watch is the policy store's (store.Store.Watch): the operator's files (the policy's
// *.hcl files and the zone files the snapshot was built from, watched as directories so
// that an editor's rename-over is seen) and the managed documents, so that a document
// changed by another process (a second glbdns sharing the folder, an operator's edit)
// reloads too; this daemon's own API writes are published when made and reload nothing.
// Events are debounced (Config.ReloadDebounce, default 200ms): an editor's
// write-rename-chmod burst, or a tool rewriting ten files, is one reload.
//
// # Metrics
//
// Besides the DNS server's series (dnsserver/metrics.go), the Go runtime and process
// collectors, the registry holds (docs/metrics.md lists them all):
//
//	glbdns_policy_reloads_total{result}                         counter  success|failure
//	glbdns_policy_last_reload_successful                        gauge    1 or 0
//	glbdns_policy_last_reload_timestamp_seconds                 gauge    time of the last attempt
//	glbdns_policy_generation                                    gauge    snapshots installed so far
//	glbdns_policy_info{hash}                                    gauge    1, for the serving policy
//	glbdns_policy_from_cache                                    gauge    1 while serving the local cache
//	glbdns_cluster_nodes                                        gauge    live nodes (registered in etcd)
//	glbdns_cluster_policy_hashes                                gauge    different policies they serve
//	glbdns_build_info{version,revision,goversion}               gauge    1
//	glbdns_health_reporter_fresh{reporter}                      gauge    1 when heard within StaleAfter
//	glbdns_health_reporter_last_contact_timestamp_seconds{reporter}  gauge  0 if never
//	glbdns_health_grace_expired                                 gauge    1 while members count as unknown_is: no fresh reporter for the grace period
//	glbdns_health_grace_expired_total                           counter  times that began
//	glbdns_member_up{pool,member}                               gauge    1 when answered (up, or unknown counted up, and not drained)
//	glbdns_member_drained{pool,member}                          gauge    1 while a drain is in force
//	glbdns_member_drain_expiry_timestamp_seconds{pool,member}   gauge    when the drain ends; drained members only
//	glbdns_geoip_reloads_total{result}                          counter  GeoIP database reloads, success|failure
//
// The reporter label is the healthd URL from the configuration; pool and member come from
// the serving policy (one series per member, so bounded by the policy, and a member
// removed from it leaves with the next scrape).
package daemon

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/admin"
	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/cluster"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/fetch"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/healthd/client"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/internal/httpserve"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/geoip"
	"github.com/glbdns/glbdns/policy/store"
)

// Config is what cmd/glbdns gathers from flags and the environment.
type Config struct {
	// Listen are the UDP and TCP addresses of the DNS server (none: "127.0.0.1:5353"),
	// each as dnsserver.Config.Addrs takes them.
	Listen []string
	// TCP bounds the DNS TCP listener (0 = dnsserver's defaults).
	TCP TCPLimits
	// NSID, Identity and ServerVersion say which node answered, to those who ask (NSID,
	// RFC 5001; CHAOS TXT id.server, hostname.bind, version.bind, RFC 4892); empty: not
	// answered. See dnsserver.Config.
	NSID                    []byte
	Identity, ServerVersion string
	// RRL is the DNS server's response-rate limiting (Rate 0: off).
	RRL dnsserver.RRLConfig
	// SignatureCache bounds the DNS server's cache of online signatures, in RRsets
	// (dnsserver.Config.SignatureCache: 0 the default, negative none).
	SignatureCache int
	// XDP asks for the AF_XDP path on an interface (dnsserver.XDPConfig); off by default.
	XDP dnsserver.XDPConfig
	// Cookies turns DNS cookies on (RFC 7873), with the secrets of CookieSecretFile
	// (dnsserver.ParseCookieSecrets), read again at every reload for a rotation; "" draws
	// a random secret at start, which no other node shares.
	Cookies          bool
	CookieSecretFile string
	// AdminPublicMetrics and AdminPublicStatus serve /metrics, and the status page with
	// /v1/state, without the admin token; every other read needs it when one is set.
	AdminPublicMetrics, AdminPublicStatus bool
	// HistoryInterval is the sampling period of /v1/history and the status page's plot
	// (0 = admin's default, 10s).
	HistoryInterval time.Duration
	// AdminMaxConns bounds the admin listener's connections (0 = httpserve's default,
	// 256; 32 from one address).
	AdminMaxConns int
	// PolicyPath is a .hcl file or a directory of .hcl files; "" with PolicyFromEtcd or
	// PolicyURL.
	PolicyPath string
	// PolicyURL, with a URL, fetches the operator's files from it (package fetch) instead
	// of PolicyPath: polled every Interval and fetched again on every reload. Managed
	// objects are then in ManagedDir, which must be given for the write API, or in etcd.
	PolicyURL fetch.Config
	// PolicyFromEtcd reads the operator's policy files from etcd (as glbctl policy push
	// put them under the prefix's policy/) instead of PolicyPath. Needs Etcd.
	PolicyFromEtcd bool
	// HealthURLs are the healthd reporters to subscribe to; with none, every member is
	// unknown and counts as its pool's unknown_is says (up by default).
	HealthURLs []string
	// HealthStaleAfter and HealthGrace tune the health merging (0 = package health's
	// defaults).
	HealthStaleAfter, HealthGrace time.Duration
	// HealthUnknownIsDown treats members of unknown health (never probed, or no fresh
	// reporter after the grace period) as down; default up (fail open). A pool's
	// unknown_is attribute overrides it.
	HealthUnknownIsDown bool
	// Admin is the address of the admin HTTP listener (metrics, probes, state, status
	// page), e.g. "127.0.0.1:8053"; "" turns it off. Port 0 picks a free port, logged as
	// msg="admin listening" addr=HOST:PORT.
	Admin string
	// ReloadDebounce is how long the watcher waits after the last file event before it
	// reloads. Default 200ms: longer than an editor's write-rename burst, short enough to
	// feel immediate.
	ReloadDebounce time.Duration
	// NoWatch turns off reloading on file changes (SIGHUP still reloads).
	NoWatch bool
	// ManagedDir is where objects written through the admin API are kept as HCL
	// documents; "" means store.DefaultManagedDir(PolicyPath) ("<policy>.managed" beside
	// the policy).
	ManagedDir string
	// Etcd, with endpoints, keeps the managed objects and drains in etcd, shared by every
	// node of its prefix, instead of the managed folder.
	Etcd store.EtcdConfig
	// PolicyCache is the file where a node on etcd keeps the managed objects it last
	// served, and serves them from when it starts while etcd is unreachable; ""
	// means store.DefaultCacheFile(PolicyPath) ("<policy>.cache" beside the policy), and
	// none with PolicyFromEtcd (which has no policy path to put it beside).
	PolicyCache string
	// NodeID names the node in the cluster (GET /v1/cluster); "" means the host name and
	// the DNS address ("ns1/192.0.2.53:53").
	NodeID string
	// AdminToken enables the admin API's writes (bearer token); "" leaves them off (403).
	AdminToken string
	// ReportToken may push health reports to the admin API (POST /v1/health/report) and
	// nothing else; "" leaves pushing to the admin token.
	ReportToken string
	// GeoIPDatabase and GeoIPASNDatabase override the policy's geoip block paths.
	GeoIPDatabase, GeoIPASNDatabase string
	// Dnstap is the query log (dnsserver.TapConfig); Path "" turns it off. Identity
	// defaults to NodeID, else the host name; Version is "glbdns VERSION".
	Dnstap dnsserver.TapConfig
	// Logger receives every log line; nil means slog.Default().
	Logger *slog.Logger
	// Ready, when set, is called with the bound DNS address once the server is serving.
	Ready func(addr netip.AddrPort)
}

// ErrPolicy is returned by Run when the initial policy does not load, and wrapped by
// Reload when a reload is refused.
var ErrPolicy = errors.New("policy has errors")

// Daemon is a running glbdns: DNS server, health subscription, admin listener, reloads.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	srv    *dnsserver.Server
	health *health.Health
	hc     *client.Client
	reg    *prometheus.Registry
	m      *daemonMetrics
	adm    *admin.Admin
	st     *store.Store

	// geo is the GeoIP watcher for the serving snapshot's databases (nil = none); geoCancel
	// stops its goroutine when the paths change. bg is the lifetime of such goroutines.
	geo       *geoip.Watcher
	geoPaths  [2]string
	geoCancel context.CancelFunc
	// geoMu guards geo for the scrape of glbdns_geoip_reloads_total and geoDone, the
	// reloads of the watchers stopped so far, so that the counter never goes back when a
	// watcher is replaced.
	geoMu    sync.Mutex
	geoDone  [2]uint64 // ok, failed
	bg       context.Context
	bgCancel context.CancelFunc

	// mu guards the reload status (the store serialises loads and installs).
	mu     sync.Mutex
	status api.PolicyStatus

	ready     atomic.Bool
	adminAddr atomic.Pointer[net.TCPAddr]

	// The cluster (cluster.go): the registry on etcd (nil without etcd), what it shows,
	// and the healthd reporters watched (static ones from Config.HealthURLs first).
	registry    *cluster.Registry
	members     cluster.View
	nodeID      string
	started     time.Time
	nodeChanged chan struct{} // the node's registration is out of date (capacity 1)
	static      []string
	watchMu     sync.Mutex
	watching    map[string]context.CancelFunc
	// pushMu guards pushRevs, the etcd revision of each pusher's record last counted
	// (push.go).
	pushMu   sync.Mutex
	pushRevs map[string]int64

	// reportCap is the cap on a healthd report body, client.ReportCap of the serving
	// policy (0 before the first install: the client's default).
	reportCap atomic.Int64

	cookieRandom bool // the DNS server has the random cookie secret (loadCookieSecrets)

	tap *dnsserver.Tap // the query log; nil: off

	fetch *fetch.Policy // the operator's files from Config.PolicyURL; nil: not from a URL

	gcOn        func()        // gives the collector back its settings (startGC), once
	freeing     atomic.Int32  // returnMemory requests not yet served; non-zero while one is pending or runs
	freeOS      func()        // debug.FreeOSMemory; tests count the runs
	returnDelay time.Duration // returnDelay; tests wait none
}

// New loads the initial policy and builds the daemon without binding anything. It returns
// an error wrapping ErrPolicy, after logging every diagnostic, when the policy has errors.
func New(cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReloadDebounce <= 0 {
		cfg.ReloadDebounce = 200 * time.Millisecond
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), returnDelay: returnDelay}
	d.bg, d.bgCancel = context.WithCancel(context.Background())
	d.srv = dnsserver.New(dnsserver.Config{Addrs: cfg.Listen, Logger: d.log, MaxTCPConns: cfg.TCP.MaxConns,
		MaxTCPConnsPerPrefix: cfg.TCP.MaxConnsPerPrefix, TCPIdleTimeout: cfg.TCP.IdleTimeout, TCPQueryTimeout: cfg.TCP.QueryTimeout,
		NSID: cfg.NSID, Identity: cfg.Identity, Version: cfg.ServerVersion, RRL: cfg.RRL, SignatureCache: cfg.SignatureCache, XDP: cfg.XDP})
	if err := d.loadCookieSecrets(); err != nil {
		return nil, err
	}
	hc, err := client.New(client.Config{URLs: cfg.HealthURLs,
		StaleAfter: cmp.Or(cfg.HealthStaleAfter, health.DefaultStaleAfter), MaxReportBytes: d.reportCap.Load})
	if err != nil {
		return nil, fmt.Errorf("health client: %w", err)
	}
	d.hc, d.static = hc, hc.URLs()
	d.nodeChanged, d.watching, d.started = make(chan struct{}, 1), map[string]context.CancelFunc{}, time.Now()
	d.pushRevs = map[string]int64{}
	d.health = health.New(health.Config{
		Reporters:     d.static,
		StaleAfter:    cfg.HealthStaleAfter,
		Grace:         cfg.HealthGrace,
		UnknownIsDown: cfg.HealthUnknownIsDown,
		OnChange:      d.srv.HealthChanged,
		Logger:        d.log,
	})
	d.srv.SetHealthSource(d.health)
	d.m = newDaemonMetrics(d.reg, d.srv, d.health)
	registerMemberMetrics(d.reg, d.health, d.geoReloads)

	// The collector is held off until the node serves (Run), or for startGCFor at most.
	restore := startGC()
	d.gcOn = sync.OnceFunc(restore)
	gcTimer := time.AfterFunc(startGCFor, d.gcOn)
	made := false
	defer func() {
		if !made { // no Run to give it back
			gcTimer.Stop()
			d.gcOn()
		}
	}()
	st, err := d.openStore()
	if err != nil {
		return nil, fmt.Errorf("open policy store: %w", err)
	}
	d.st = st
	registerStoreMetrics(d.reg, st)
	st.Publish(d.publish)
	_, diags := st.Load()
	logDiags(d.log, diags)
	if diags.HasErrors() {
		st.Close()
		return nil, fmt.Errorf("load %s: %w: %s", d.policyName(), ErrPolicy, diags.Error())
	}
	d.adm = admin.New(admin.Config{
		HTTP:          httpserve.Config{MaxConns: cfg.AdminMaxConns},
		PublicMetrics: cfg.AdminPublicMetrics,
		PublicStatus:  cfg.AdminPublicStatus,
		HistoryEvery:  cfg.HistoryInterval,
		Logger:        d.log.With("component", "admin"),
		Gatherer:      d.reg,
		Server:        d.srv,
		Health:        d.health,
		Ready:         d.ready.Load,
		Degraded:      d.degraded,
		Policy:        d.PolicyStatus,
		Store:         st,
		Token:         cfg.AdminToken,
		ReportToken:   cfg.ReportToken,
		Push:          d.push,
		Cluster:       d.cluster,
	})
	if b, ok := st.Backend().(*store.EtcdBackend); ok {
		d.registry = cluster.New(b.Client(), b.Prefix(), d.log)
	}
	registerClusterMetrics(d.reg, d.cluster)
	if cfg.Dnstap.Path != "" { // last: nothing after it fails and leaves the file open
		tc := cfg.Dnstap
		tc.Logger = d.log
		if tc.Identity = cfg.NodeID; tc.Identity == "" {
			tc.Identity, _ = os.Hostname()
		}
		tc.Version = "glbdns " + buildinfo.Version
		if d.tap, err = dnsserver.NewTap(tc); err != nil {
			st.Close()
			return nil, err
		}
		d.srv.SetTap(d.tap)
		d.reg.MustRegister(d.tap.Collector())
	}
	made = true
	return d, nil
}

// startHeapLimit bounds the heap while startGC holds the collector off.
const startHeapLimit = 1 << 30

// startGCFor bounds how long startGC's hold lasts when Run does not end it (a Daemon made
// and not run).
const startGCFor = 10 * time.Second

// startGC holds the garbage collector off while the first policy loads and the listeners
// bind, and returns the function that gives it back its settings. The first load
// allocates several times the policy's final size while the heap is still a few MB: at
// the default GOGC the collector would run over and over, for a fifth of the time to the
// first answer (bench/coldstart.sh, 10,000 services), and a cycle started when the load
// ends would slow the binding of the sockets. The heap is bounded meanwhile by a memory
// limit of startHeapLimit, or the process's own when lower (GOMEMLIMIT), past which the
// collector runs as usual; a process with GOGC=off keeps it off. returnMemory gives the
// load's garbage back after.
//
// The settings are the process's: daemons starting at once (tests) share one hold, and
// the last to end it restores what the first found.
func startGC() func() {
	gcHold.Lock()
	defer gcHold.Unlock()
	if gcHold.n == 0 {
		gcHold.pct = debug.SetGCPercent(-1)
		gcHold.limit = debug.SetMemoryLimit(-1)
		if gcHold.limit > startHeapLimit {
			debug.SetMemoryLimit(startHeapLimit)
		}
	}
	gcHold.n++
	return func() {
		gcHold.Lock()
		defer gcHold.Unlock()
		if gcHold.n--; gcHold.n == 0 {
			debug.SetGCPercent(gcHold.pct)
			debug.SetMemoryLimit(gcHold.limit)
		}
	}
}

// gcHold counts the holds of startGC in force and keeps the settings they replaced.
var gcHold struct {
	sync.Mutex
	n     int
	pct   int
	limit int64
}

// TCPLimits are the DNS TCP listener's bounds; see dnsserver.Config.
type TCPLimits struct {
	MaxConns, MaxConnsPerPrefix int
	IdleTimeout, QueryTimeout   time.Duration
}

// openStore opens the policy store: on etcd when Config.Etcd has endpoints, with the
// local cache of the managed objects, else on the managed folder. Without an admin token
// nothing can write the folder, so it is opened read-only: not created when missing, so
// that a node without a write API starts on a read-only file system.
func (d *Daemon) openStore() (*store.Store, error) {
	src := store.Source{ManagedDir: d.cfg.ManagedDir, Etcd: d.cfg.Etcd, PolicyFromEtcd: d.cfg.PolicyFromEtcd,
		ReadOnly: d.cfg.AdminToken == ""}
	if d.cfg.PolicyURL.URL != "" {
		fc := d.cfg.PolicyURL
		fc.Logger = d.log
		f, err := fetch.New(fc)
		if err != nil {
			return nil, err
		}
		d.fetch, src.Operator = f, f
		d.reg.MustRegister(f.Collector("glbdns"))
	}
	if len(d.cfg.Etcd.Endpoints) > 0 {
		src.Cache = d.cfg.PolicyCache
		if src.Cache == "" && !d.cfg.PolicyFromEtcd && d.fetch == nil {
			src.Cache = store.DefaultCacheFile(d.cfg.PolicyPath)
		}
		src.CacheError = func(err error) { d.log.Warn("policy cache not written", "file", src.Cache, "err", err) }
		d.log.Info("policy store on etcd", "endpoints", strings.Join(d.cfg.Etcd.Endpoints, ","),
			"prefix", cmp.Or(d.cfg.Etcd.Prefix, store.DefaultEtcdPrefix), "cache", src.Cache,
			"operator_files", d.policyName())
		if src.Cache == "" {
			d.log.Warn("no -policy-cache: this node cannot start while etcd is unreachable")
		}
	}
	return store.OpenSource(d.cfg.PolicyPath, src)
}

// policyName names where the operator's files come from, for logs and errors.
func (d *Daemon) policyName() string {
	switch {
	case d.fetch != nil:
		return d.fetch.Name()
	case d.cfg.PolicyFromEtcd:
		return "etcd"
	}
	return d.cfg.PolicyPath
}

// degraded says what keeps the node from serving as it should, "" when nothing does: it
// serves the managed objects of its local cache because the store is unavailable.
func (d *Daemon) degraded() string {
	if t := d.st.FromCache(); !t.IsZero() {
		return "serving the cached policy since " + t.UTC().Format(time.RFC3339) + ": the policy store (etcd) is unavailable"
	}
	return ""
}

// Server is the daemon's DNS server.
func (d *Daemon) Server() *dnsserver.Server { return d.srv }

// Registry is the daemon's metrics registry (served on /metrics).
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Admin is the admin listener's handlers (served by Run when Config.Admin is set).
func (d *Daemon) Admin() *admin.Admin { return d.adm }

// AdminAddr is the bound admin address, nil before Run bound it or when it is off.
func (d *Daemon) AdminAddr() net.Addr {
	if a := d.adminAddr.Load(); a != nil {
		return a
	}
	return nil
}

// PolicyStatus describes the serving policy and the last reload.
func (d *Daemon) PolicyStatus() api.PolicyStatus {
	d.mu.Lock()
	st := d.status
	d.mu.Unlock()
	files := make([]string, len(st.Files))
	for i, f := range st.Files {
		files[i] = d.shown(f)
	}
	st.Files = files
	st.LastError = d.shownText(st.LastError)
	if d.st != nil {
		st.Quarantined = d.st.Quarantined()
		for i := range st.Quarantined {
			q := &st.Quarantined[i]
			q.Path, q.Error = d.shown(q.Path), d.shownText(q.Error)
		}
	}
	return st
}

// shownRoot is the directory the state names files relative to: the one that holds the
// policy path, so that "policy/zone.hcl" and "policy.managed/pool-web.hcl" say what they
// are, and the host's layout is not disclosed ("" without a policy path).
func (d *Daemon) shownRoot() string {
	if d.cfg.PolicyPath == "" {
		return ""
	}
	abs, err := filepath.Abs(d.cfg.PolicyPath)
	if err != nil {
		return ""
	}
	return filepath.Dir(abs)
}

// shown is how the state names a source file: relative to shownRoot, or its base name
// after ".../" when it lies elsewhere. Etcd keys and relative names are kept.
func (d *Daemon) shown(path string) string {
	root := d.shownRoot()
	if root == "" || !filepath.IsAbs(path) || len(d.cfg.Etcd.Endpoints) > 0 && strings.HasPrefix(path, cmp.Or(d.cfg.Etcd.Prefix, store.DefaultEtcdPrefix)) {
		return path
	}
	if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return ".../" + filepath.Base(path)
}

// shownText is a diagnostic's text with the paths under shownRoot made relative.
func (d *Daemon) shownText(text string) string {
	if root := d.shownRoot(); root != "" && root != string(filepath.Separator) {
		text = strings.ReplaceAll(text, root+string(filepath.Separator), "")
	}
	return text
}

// publish installs what the policy store compiled (store.Publish): a new snapshot, with
// the GeoIP databases it names, and the drains in force. A database that does not open
// refuses the snapshot: the old snapshot and database keep serving. The store calls it
// with its lock held, so publications arrive in order.
func (d *Daemon) publish(snap *policy.Snapshot, drains []api.Drain) error {
	if cur, _ := d.srv.Current(); snap != cur {
		if err := d.useGeoIP(snap); err != nil {
			return fmt.Errorf("GeoIP database refused: %w", err)
		}
		d.health.SetDrains(drains)
		d.install(snap, time.Now())
		return nil
	}
	d.health.SetDrains(drains)
	return nil
}

// install swaps snap in and records it as the result of a successful load.
func (d *Daemon) install(snap *policy.Snapshot, at time.Time) {
	d.srv.SetSnapshot(snap)
	checks := 0
	for _, m := range snap.Members {
		checks += len(m.Checks)
	}
	d.reportCap.Store(client.ReportCap(len(snap.Members), checks))
	d.mu.Lock()
	d.status.Generation++
	d.status.Hash = snap.Hash
	d.status.Files = snap.Files
	d.status.LastReload = at
	d.status.LastResult = "success"
	d.status.LastError = ""
	gen := d.status.Generation
	d.mu.Unlock()
	d.m.loaded(snap, gen, at)
	d.returnMemory()
	select {
	case d.nodeChanged <- struct{}{}:
	default:
	}
}

// returnMemory hands the garbage of a load back to the OS, in the background. Loading a
// policy allocates a few times its final size in transient data (parse trees, maps that
// regrow on the way, the previous snapshot); the runtime would return it only slowly,
// so a large policy's RSS would stay near the load's peak for minutes (bench/scale.sh,
// 1M names + 100k services: 0.83–1.04 GB at the peak, 0.57–0.63 GB once returned). One
// full GC per burst of installs, off the serving path, returnDelay after the first (a
// client writing through the admin API installs a snapshot per write: a GC per write
// would cost more than the write), and never two at once: installs that land while one
// runs are served by one more run after it, so the last load's garbage is returned too.
func (d *Daemon) returnMemory() {
	if d.freeing.Add(1) != 1 {
		return // the pending or running one sees the new request and goes again
	}
	go func() {
		for {
			time.Sleep(d.returnDelay)
			n := d.freeing.Load()
			if d.freeOS != nil {
				d.freeOS()
			} else {
				debug.FreeOSMemory()
			}
			if d.freeing.CompareAndSwap(n, 0) {
				return
			}
		}
	}()
}

// returnDelay is how long returnMemory waits for more installs before it runs: a burst of
// API writes is one GC, and a policy reload is returned within a second.
const returnDelay = time.Second

// Reload loads the policy path again and swaps the new snapshot in. On errors it logs
// every diagnostic, counts the failure, keeps the old snapshot, and returns an error
// wrapping ErrPolicy. Safe for concurrent use (the store serialises loads).
func (d *Daemon) Reload() error {
	start := time.Now()
	if err := d.loadCookieSecrets(); err != nil {
		d.log.Error("cookie secrets not reloaded, the old ones stay", "err", err)
	}
	snap, diags := d.st.Load()
	if diags.HasErrors() {
		logDiags(d.log, diags)
		d.log.Error("reload refused, old policy keeps serving", "policy", d.policyName(), "errors", len(diags.Errs()))
		d.mu.Lock()
		d.status.LastReload = start
		d.status.LastResult = "failure"
		d.status.LastError = diags.Error()
		d.mu.Unlock()
		d.m.failed(start)
		return fmt.Errorf("reload %s: %w: %s", d.policyName(), ErrPolicy, diags.Error())
	}
	logDiags(d.log, diags) // warnings: a drains document that does not decode, a cached policy
	d.log.Info("policy reloaded", "policy_hash", snap.Hash, "services", len(snap.Services),
		"members", len(snap.Members), "generation", d.PolicyStatus().Generation, "took", time.Since(start))
	return nil
}

// loadCookieSecrets gives the DNS server the secrets of Config.CookieSecretFile, a random
// one without a file (drawn once: a reload keeps it), or none with cookies off.
func (d *Daemon) loadCookieSecrets() error {
	switch {
	case !d.cfg.Cookies:
		return nil
	case d.cfg.CookieSecretFile == "":
		if d.cookieRandom {
			return nil
		}
		var s dnsserver.CookieSecret
		if _, err := rand.Read(s[:]); err != nil {
			return fmt.Errorf("cookie secret: %w", err)
		}
		d.srv.SetCookieSecrets([]dnsserver.CookieSecret{s})
		d.cookieRandom = true
		d.log.Info("DNS cookies on with a random secret: a cookie of another node is answered BADCOOKIE once; -cookie-secret-file shares one")
		return nil
	}
	b, err := os.ReadFile(d.cfg.CookieSecretFile)
	if err != nil {
		return fmt.Errorf("cookie secret file: %w", err)
	}
	secrets, err := dnsserver.ParseCookieSecrets(string(b))
	if err != nil {
		return fmt.Errorf("cookie secret file %s: %w", d.cfg.CookieSecretFile, err)
	}
	d.srv.SetCookieSecrets(secrets)
	d.log.Info("DNS cookie secrets loaded", "file", d.cfg.CookieSecretFile, "secrets", len(secrets))
	return nil
}

// Run loads the policy, serves DNS until ctx is done, and reloads on SIGHUP and file
// changes. It is New followed by Daemon.Run.
func Run(ctx context.Context, cfg Config) error {
	d, err := New(cfg)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Run serves until ctx is done: DNS, the health subscription, the admin listener, and
// reloads. Call it once.
func (d *Daemon) Run(ctx context.Context) error {
	log := d.log
	// Descriptors: every DNS TCP and admin connection at its bound, and a reserve for the
	// UDP sockets, the health watches, etcd, a reload's files and the cache.
	httpserve.Budget(cmp.Or(d.cfg.TCP.MaxConns, dnsserver.DefaultMaxTCPConns)+cmp.Or(d.cfg.AdminMaxConns, httpserve.DefaultMaxConns)+256, log)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.bgCancel()
	defer d.st.Close()
	// SIGHUP's default action ends the process: take it over before anything is bound or
	// logged, so that a reload asked for as soon as the server says it listens is a reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if d.tap != nil {
		// The writer outlives the DNS server (this defer runs after its Shutdown), so
		// that the queries answered last are written and the stream ended.
		tctx, tstop := context.WithCancel(context.Background())
		tdone := make(chan struct{})
		go func() { d.tap.Run(tctx); close(tdone) }()
		defer func() { tstop(); <-tdone }()
	}
	go d.health.Run(ctx)
	d.setReporters(ctx, nil)
	d.runCluster(ctx)

	// The watch is in place before anything is logged as serving, so that an edit made
	// by whoever waited for that line is seen.
	changed, stopWatch := d.watch(ctx)
	defer stopWatch()
	if d.fetch != nil && changed != nil {
		go d.fetch.Run(ctx) // its changes come through the watch
	}

	srv := d.srv
	errc := make(chan error, 1)
	go func() { errc <- srv.Start(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		return fmt.Errorf("start dns server: %w", err)
	}
	if !srv.Addr().IsValid() {
		return fmt.Errorf("start dns server: %w", <-errc)
	}
	snap, _ := srv.Current()
	// addr= is the first address (what scripts read); addrs= every one, with -listen repeated.
	var addrs []string
	for _, a := range srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("serving", "addr", srv.Addr().String(), "addrs", strings.Join(addrs, ","), "policy", d.policyName(),
		"zones", len(snap.Zones.Zones()), "services", len(snap.Services), "policy_hash", snap.Hash)
	d.ready.Store(true)
	d.gcOn() // serving: the start's garbage can go

	// The admin listener binds after the DNS sockets so that the first addr= in the log is
	// the DNS address (scripts and the e2e harness read it), and /readyz is true from its
	// first answer; /healthz needs nothing more.
	adminDone, err := d.serveAdmin(ctx)
	if err != nil {
		cancel()
		_ = srv.Shutdown(context.Background())
		<-errc
		return err
	}
	if d.cfg.Ready != nil {
		d.cfg.Ready(srv.Addr())
	}

	for {
		select {
		case <-ctx.Done():
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			<-errc
			<-adminDone
			log.Info("stopped")
			return nil
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("dns server: %w", err)
			}
			return nil
		case <-hup:
			log.Info("reload requested", "by", "SIGHUP")
			if d.tap != nil {
				d.tap.Reopen() // a rotated query log is created anew
			}
			_ = d.Reload() // logged and counted by Reload
		case <-changed:
			log.Info("reload requested", "by", "file change")
			_ = d.Reload()
		}
	}
}

// watch starts the store's watch of the policy files and the managed documents, unless
// Config.NoWatch. It returns the channel of its debounced reload requests (nil without a
// watch: SIGHUP still reloads) and a function that stops it.
func (d *Daemon) watch(ctx context.Context) (<-chan struct{}, func()) {
	if d.cfg.NoWatch {
		return nil, func() {}
	}
	ctx, stop := context.WithCancel(ctx)
	changed, err := d.st.Watch(ctx, store.WatchConfig{Debounce: d.cfg.ReloadDebounce, Logger: d.log})
	if err != nil {
		stop()
		d.log.Warn("policy watch failed, reload with SIGHUP", "err", err)
		return nil, func() {}
	}
	return changed, stop
}

// serveAdmin binds the admin listener, when Config.Admin is set, and serves it until ctx
// is done. The channel it returns receives Serve's result (nil at once without a listener).
func (d *Daemon) serveAdmin(ctx context.Context) (<-chan error, error) {
	done := make(chan error, 1)
	if d.cfg.Admin == "" {
		done <- nil
		return done, nil
	}
	ln, err := net.Listen("tcp", d.cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w", d.cfg.Admin, err)
	}
	ta := ln.Addr().(*net.TCPAddr)
	d.adminAddr.Store(ta)
	d.log.Info("admin listening", "addr", ta.String(), "status_page", "http://"+ta.String()+"/")
	go func() { done <- d.adm.Serve(ctx, ln) }()
	return done, nil
}

// logDiags logs each diagnostic with its position (file:line:col): errors as errors,
// warnings as warnings.
func logDiags(log *slog.Logger, diags hcl.Diagnostics) {
	for _, d := range diags {
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagError {
			log.Error("policy error", "pos", pos, "summary", d.Summary, "detail", d.Detail)
		} else {
			log.Warn("policy warning", "pos", pos, "summary", d.Summary, "detail", d.Detail)
		}
	}
}

// deliver hands a healthd answer to health.
func (d *Daemon) deliver(u client.Update) {
	if u.Err != nil {
		if errors.Is(u.Err, client.ErrReportTooLarge) {
			// Every refusal: a source that sends these is broken or hostile, and is only
			// retried after the client's failure backoff (at most every 5s).
			d.log.Error("health report refused: the reporter's last good report counts until it goes stale",
				"url", u.URL, "err", u.Err)
		}
		d.health.Failed(u.URL, u.Err)
		return
	}
	d.health.Report(u.URL, u.Report, u.At)
}

// useGeoIP opens the GeoIP databases snap names (or the flags override) when they differ
// from the ones in use, and gives the DNS server the database and each reload of it. A
// database that does not open refuses the load: the old snapshot and database keep serving.
func (d *Daemon) useGeoIP(snap *policy.Snapshot) error {
	city, asn := snap.GeoIPPaths()
	if d.cfg.GeoIPDatabase != "" {
		city = d.cfg.GeoIPDatabase
	}
	if d.cfg.GeoIPASNDatabase != "" {
		asn = d.cfg.GeoIPASNDatabase
	}
	paths := [2]string{city, asn}
	if paths == d.geoPaths {
		return nil
	}
	if city == "" && asn == "" {
		d.stopGeo()
		d.srv.SetGeo(nil)
		d.geoPaths = paths
		return nil
	}
	w, err := geoip.NewWatcher(city, asn, d.log.With("component", "geoip"))
	if err != nil {
		return err
	}
	d.stopGeo()
	// The server gets the DB before Run can swap a newer one in, and every one after;
	// geoCancel waits for Run to return, so a stopped watcher's reload cannot follow.
	w.OnChange = d.srv.SetGeo
	d.srv.SetGeo(w.Current())
	ctx, cancel := context.WithCancel(d.bg)
	ran := make(chan struct{})
	go func() { defer close(ran); w.Run(ctx) }()
	d.geoMu.Lock()
	d.geo = w
	d.geoMu.Unlock()
	d.geoCancel, d.geoPaths = func() { cancel(); <-ran }, paths
	d.log.Info("geoip databases open", "database", city, "asn_database", asn)
	return nil
}

func (d *Daemon) stopGeo() {
	if d.geoCancel != nil {
		d.geoCancel()
	}
	d.geoMu.Lock()
	if d.geo != nil {
		ok, failed := d.geo.Reloads()
		d.geoDone[0] += ok
		d.geoDone[1] += failed
	}
	d.geo = nil
	d.geoMu.Unlock()
	d.geoCancel = nil
}

// geoReloads is how many GeoIP database reloads succeeded and failed since start, over
// every watcher the daemon had.
func (d *Daemon) geoReloads() (ok, failed uint64) {
	d.geoMu.Lock()
	defer d.geoMu.Unlock()
	ok, failed = d.geoDone[0], d.geoDone[1]
	if d.geo != nil {
		o, f := d.geo.Reloads()
		ok, failed = ok+o, failed+f
	}
	return ok, failed
}
