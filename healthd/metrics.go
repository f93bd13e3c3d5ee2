package healthd

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/healthd/probe"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/policy"
)

// probeBuckets cover loopback probes (sub-millisecond) up to the longest sensible timeout.
var probeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics are healthd's Prometheus series. Labels come from the policy only (pool,
// member, check names) and from small fixed sets (result, phase):
//
//	healthd_member_up{pool,member}                   1 up, 0 down; absent while unknown
//	healthd_probes_total{pool,check,result}          probes run; result is success|failure
//	healthd_probe_duration_seconds{pool,check}       probe latency histogram
//	healthd_probe_phase_duration_seconds{pool,check,phase} latency of probe phases
//	healthd_probe_local_errors_total{pool,check}     probes that failed on this host (no verdict)
//	healthd_member_load{pool,member}                 the last good load reading; absent before one
//	healthd_load_readings_total{pool,result}         load readings taken; result is success|failure
//	healthd_panics_total                             recovered panics in probe rounds
//	healthd_policy_reloads_total{result}             policy loads; result is success|failure
//	healthd_policy_last_reload_successful            1 if the last load succeeded
//	healthd_build_info{version,revision,goversion}   1, as glbdns_build_info
type Metrics struct {
	memberUp    *prometheus.GaugeVec
	probes      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	phases      *prometheus.HistogramVec
	panics      prometheus.Counter
	localErrors *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	load        *prometheus.GaugeVec
	readings    *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		memberUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "healthd", Name: "member_up",
			Help: "Whether the member is up (1) or down (0); absent while its status is unknown.",
		}, []string{"pool", "member"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "healthd", Name: "probes_total",
			Help: "Probes run, by pool, check and result (success or failure).",
		}, []string{"pool", "check", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "healthd", Name: "probe_duration_seconds",
			Help: "Duration of probes, by pool and check.", Buckets: probeBuckets,
		}, []string{"pool", "check"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "healthd", Name: "probe_phase_duration_seconds",
			Help: "Duration of probe phases (connect, tls, processing, exchange), by pool and check.", Buckets: probeBuckets,
		}, []string{"pool", "check", "phase"}),
		localErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "healthd", Name: "probe_local_errors_total",
			Help: "Probes that failed because of this host (out of file descriptors or buffers, no local port), by pool and check: not counted against the member.",
		}, []string{"pool", "check"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "healthd", Name: "panics_total",
			Help: "Panics recovered in probe rounds.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "healthd", Name: "policy_reloads_total",
			Help: "Policy loads, by result (success or failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "healthd", Name: "policy_last_reload_successful",
			Help: "Whether the last policy load succeeded (1) or was refused (0).",
		}),
	}
	m.load = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "healthd", Name: "member_load",
		Help: "The member's last good load reading (its pool's load block: active connections); absent before the first.",
	}, []string{"pool", "member"})
	m.readings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "healthd", Name: "load_readings_total",
		Help: "Load readings taken, by pool and result (success or failure).",
	}, []string{"pool", "result"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "healthd", Name: "build_info",
		Help: "Always 1, labelled with the version, revision and Go version of the binary.",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(buildinfo.Version, buildinfo.Revision, runtime.Version()).Set(1)
	reg.MustRegister(build)
	reg.MustRegister(m.memberUp, m.probes, m.duration, m.phases, m.localErrors, m.panics, m.reloads, m.lastReload, m.load, m.readings)
	return m
}

func (m *Metrics) observe(mem *policy.Member, c *policy.Check, res probe.Result) {
	result := "success"
	if !res.OK {
		result = "failure"
	}
	m.probes.WithLabelValues(mem.Pool, c.Name, result).Inc()
	m.duration.WithLabelValues(mem.Pool, c.Name).Observe(res.Latency.Seconds())
	for _, p := range res.Phases {
		m.phases.WithLabelValues(mem.Pool, c.Name, p.Name).Observe(p.Duration.Seconds())
	}
}

func (m *Metrics) status(mem *policy.Member, st api.Status) {
	switch st {
	case api.StatusUp:
		m.memberUp.WithLabelValues(mem.Pool, mem.Name).Set(1)
	case api.StatusDown:
		m.memberUp.WithLabelValues(mem.Pool, mem.Name).Set(0)
	default:
		m.memberUp.DeleteLabelValues(mem.Pool, mem.Name)
	}
}

func (m *Metrics) forget(mem *policy.Member) {
	m.memberUp.DeleteLabelValues(mem.Pool, mem.Name)
	m.load.DeleteLabelValues(mem.Pool, mem.Name)
}

// reading records one load reading of mem: err nil is a success of value v.
func (m *Metrics) reading(mem *policy.Member, v float64, err error) {
	if err != nil {
		m.readings.WithLabelValues(mem.Pool, "failure").Inc()
		return
	}
	m.readings.WithLabelValues(mem.Pool, "success").Inc()
	m.load.WithLabelValues(mem.Pool, mem.Name).Set(v)
}

func (m *Metrics) reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.Set(1)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReload.Set(0)
}
