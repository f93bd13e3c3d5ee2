package daemon

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

// daemonMetrics are the reload and build series (listed in the package comment).
type daemonMetrics struct {
	reloads    *prometheus.CounterVec
	lastOK     prometheus.Gauge
	lastTime   prometheus.Gauge
	generation prometheus.Gauge
	info       *prometheus.GaugeVec
}

// newDaemonMetrics registers every glbdns series on reg: the Go runtime and process
// collectors, the DNS server's collector, the reload series, build info, and the health
// reporters' freshness.
func newDaemonMetrics(reg *prometheus.Registry, srv *dnsserver.Server, h *health.Health) *daemonMetrics {
	m := &daemonMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glbdns", Subsystem: "policy", Name: "reloads_total",
			Help: "Policy loads after the first, by result (success or failure).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "policy", Name: "last_reload_successful",
			Help: "Whether the last policy load succeeded (1) or was refused (0).",
		}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "policy", Name: "last_reload_timestamp_seconds",
			Help: "Unix time of the last policy load, successful or not.",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "policy", Name: "generation",
			Help: "Number of policy snapshots installed since start (1 after the first load).",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "policy", Name: "info",
			Help: "Always 1, labelled with the SHA-256 hash of the serving policy's files.",
		}, []string{"hash"}),
	}
	// Both results exist from the start, so that rate() and alerts see a 0 before the
	// first failure.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "glbdns", Name: "build_info",
		Help: "Always 1, labelled with the version, revision and Go version of the binary.",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(buildinfo.Version, buildinfo.Revision, runtime.Version()).Set(1)

	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		srv.Collector(),
		m.reloads, m.lastOK, m.lastTime, m.generation, m.info, build,
	)
	reg.MustRegister(reporterCollector{h})
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "health", Name: "grace_expired",
			Help: "1 while no healthd reporter was fresh for the grace period and members count as their pool's unknown_is, else 0.",
		}, func() float64 {
			if inForce, _ := h.GraceExpired(); inForce {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "glbdns", Subsystem: "health", Name: "grace_expired_total",
			Help: "Times the members fell back to their pool's unknown_is because no healthd reporter was fresh for the grace period.",
		}, func() float64 { _, n := h.GraceExpired(); return float64(n) }),
	)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "dns", Name: "tcp_connections",
			Help: "Open DNS TCP connections.",
		}, func() float64 { return float64(srv.TCPStats().Open) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "glbdns", Subsystem: "dns", Name: "tcp_evicted_total",
			Help: "Idle DNS TCP connections closed to admit a new one (the global or the per-prefix bound was reached).",
		}, func() float64 { return float64(srv.TCPStats().Evicted) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "glbdns", Subsystem: "dns", Name: "tcp_refused_total",
			Help: "New DNS TCP connections closed at once: a bound was reached and every connection it counts was busy.",
		}, func() float64 { return float64(srv.TCPStats().Refused) }),
	)
	if c := srv.SignatureCache(); c != nil {
		const help = "RRsets of DO=1 answers of signed zones, by result: cached (the signatures came from the cache) or signed (made for the answer)."
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "glbdns", Subsystem: "dns", Name: "signatures_total",
				Help: help, ConstLabels: prometheus.Labels{"result": "cached"}}, func() float64 { return float64(c.Hits.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "glbdns", Subsystem: "dns", Name: "signatures_total",
				Help: help, ConstLabels: prometheus.Labels{"result": "signed"}}, func() float64 { return float64(c.Misses.Load()) }),
		)
	}
	return m
}

// registerClusterMetrics registers the cluster's series, read off its view at scrape time.
func registerClusterMetrics(reg *prometheus.Registry, view func() api.Cluster) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "cluster", Name: "nodes",
			Help: "Live glbdns nodes of the cluster (registered in etcd; 1 without etcd).",
		}, func() float64 { return float64(len(view().Nodes)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "glbdns", Subsystem: "cluster", Name: "policy_hashes",
			Help: "Different policies the live nodes serve: 1 when they agree.",
		}, func() float64 { return float64(view().PolicyHashes) }),
	)
}

// registerStoreMetrics registers the series read off the policy store at scrape time.
func registerStoreMetrics(reg *prometheus.Registry, st *store.Store) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "glbdns", Subsystem: "policy", Name: "from_cache",
		Help: "1 while the managed objects served come from the node's local cache because the policy store (etcd) is unavailable, else 0.",
	}, func() float64 {
		if st.FromCache().IsZero() {
			return 0
		}
		return 1
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "glbdns", Subsystem: "policy", Name: "quarantined_documents",
		Help: "Managed documents left out of the serving policy because they do not load (listed in /v1/state).",
	}, func() float64 { return float64(len(st.Quarantined())) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "glbdns", Subsystem: "store", Name: "writes_total",
		Help: "Admin API writes (puts, deletes, drains) the policy store was asked for, refused ones included.",
	}, func() float64 { return float64(st.Stats().Writes) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "glbdns", Subsystem: "store", Name: "commits_total",
		Help: "Backend writes that committed them: concurrent writes committed together count once, writes_total over commits_total is the mean group.",
	}, func() float64 { return float64(st.Stats().Commits) }))
}

// loaded records a snapshot installed at t (the first load, or a successful reload).
func (m *daemonMetrics) loaded(snap *policy.Snapshot, gen uint64, t time.Time) {
	if gen > 1 {
		m.reloads.WithLabelValues("success").Inc()
	}
	m.lastOK.Set(1)
	m.lastTime.Set(float64(t.UnixNano()) / 1e9)
	m.generation.Set(float64(gen))
	m.info.Reset()
	m.info.WithLabelValues(snap.Hash).Set(1)
}

// failed records a refused reload at t.
func (m *daemonMetrics) failed(t time.Time) {
	m.reloads.WithLabelValues("failure").Inc()
	m.lastOK.Set(0)
	m.lastTime.Set(float64(t.UnixNano()) / 1e9)
}

// reporterCollector exports the healthd reporters' freshness, read at scrape time.
type reporterCollector struct{ h *health.Health }

var (
	descReporterFresh = prometheus.NewDesc("glbdns_health_reporter_fresh",
		"Whether the healthd reporter answered within the staleness bound (1) or not (0).",
		[]string{"reporter"}, nil)
	descReporterContact = prometheus.NewDesc("glbdns_health_reporter_last_contact_timestamp_seconds",
		"Unix time the healthd reporter last answered (0 if never).", []string{"reporter"}, nil)
)

func (r reporterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReporterFresh
	ch <- descReporterContact
}

func (r reporterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range r.h.Reporters() {
		fresh, last := 0.0, 0.0
		if st.Fresh {
			fresh = 1
		}
		if !st.LastContact.IsZero() {
			last = float64(st.LastContact.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descReporterFresh, prometheus.GaugeValue, fresh, st.URL)
		ch <- prometheus.MustNewConstMetric(descReporterContact, prometheus.GaugeValue, last, st.URL)
	}
}

var (
	descMemberUp = prometheus.NewDesc("glbdns_member_up",
		"Whether DNS answers with the member (1: up, or unknown and counted as up by unknown_is, and not drained) or not (0: down, drained, or unknown counted as down).",
		[]string{"pool", "member"}, nil)
	descMemberDrained = prometheus.NewDesc("glbdns_member_drained",
		"Whether a drain is in force on the member (1) or not (0).", []string{"pool", "member"}, nil)
	descDrainExpiry = prometheus.NewDesc("glbdns_member_drain_expiry_timestamp_seconds",
		"Unix time the member's drain ends; only drained members have one.", []string{"pool", "member"}, nil)
	descGeoReloads = prometheus.NewDesc("glbdns_geoip_reloads_total",
		"GeoIP database reloads after a file change, by result (success, or failure: the old database keeps serving).",
		[]string{"result"}, nil)
)

// memberCollector exports every member of the serving snapshot as the health view the DNS
// server answers from has it, read at scrape time: one series per member and gauge, so
// the policy bounds the cardinality, and a member removed from the policy is gone at the
// next scrape. It also exports the GeoIP reload counts.
type memberCollector struct {
	h   *health.Health
	geo func() (ok, failed uint64)
}

func registerMemberMetrics(reg *prometheus.Registry, h *health.Health, geo func() (ok, failed uint64)) {
	reg.MustRegister(memberCollector{h, geo})
}

func (c memberCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMemberUp
	ch <- descMemberDrained
	ch <- descDrainExpiry
	ch <- descGeoReloads
}

func (c memberCollector) Collect(ch chan<- prometheus.Metric) {
	ok, failed := c.geo()
	ch <- prometheus.MustNewConstMetric(descGeoReloads, prometheus.CounterValue, float64(ok), "success")
	ch <- prometheus.MustNewConstMetric(descGeoReloads, prometheus.CounterValue, float64(failed), "failure")
	v := c.h.View()
	if v == nil {
		return
	}
	for _, m := range v.Snapshot().Members {
		up, drained := 0.0, 0.0
		if v.Up(m) {
			up = 1
		}
		if d, ok := v.Drain(m); ok {
			drained = 1
			ch <- prometheus.MustNewConstMetric(descDrainExpiry, prometheus.GaugeValue, float64(d.Until.UnixNano())/1e9, m.Pool, m.Name)
		}
		ch <- prometheus.MustNewConstMetric(descMemberUp, prometheus.GaugeValue, up, m.Pool, m.Name)
		ch <- prometheus.MustNewConstMetric(descMemberDrained, prometheus.GaugeValue, drained, m.Pool, m.Name)
	}
}
