// Package admin is glbdns's admin HTTP surface for operators: Prometheus metrics, liveness
// and readiness probes, the live state as JSON, a self-contained status page, and the REST
// API over the policy store (api.go) that the Terraform provider and glbctl use.
//
//	GET /metrics    the daemon's registry (Prometheus text or OpenMetrics)
//	GET /healthz    200 "ok" while the process runs (liveness)
//	GET /readyz     200 once a snapshot serves and the DNS sockets are bound, else 503
//	GET /v1/cluster every live glbdns node of the cluster (id, addresses, policy hash and
//	                generation, the reporters it hears) and every registered healthd reporter
//	GET /v1/state   State as JSON: policy hash, generation, files, last reload, every
//	                service with its pools and members (address or host, weight, health,
//	                answers and share over the recent window), healthd reporters
//	GET /v1/history every service's answer shares and member states, sampled every
//	                Config.HistoryEvery (10s) over the last 15 minutes (HistorySpan)
//	GET /           the status page: the same state as HTML, refreshed every 2s by a small
//	                inline script (no external assets), one row per member with
//	                data-member="pool/member", data-state (api.MemberState.State) and
//	                data-status="up|down"; and per service an inline SVG plot of
//	                /v1/history (a polyline per member, data-shares, and a state strip)
//
// The answer share is measured over a sliding window: the per-member answer counters are
// sampled every SampleEvery (5s) into a ring of Samples (12) readings, and a member's share
// is its answers since the oldest reading divided by its service's. One minute is long
// enough to smooth a weighted choice, short enough that a drained region shows at once.
// Until the first sample the window is "since start".
//
// The REST API of docs/admin-api.md (/v1/pools, /v1/services, /v1/drains, /v1/health) is
// served when Config.Store is set; see api.go. Other /v1/ paths answer a JSON 404.
package admin

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/health"
	"github.com/glbdns/glbdns/internal/httpserve"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

// Config configures an Admin.
type Config struct {
	// Logger, default slog.Default().
	Logger *slog.Logger
	// HTTP bounds the listener (connections in all and per source, timeouts, headers);
	// zero fields take httpserve's defaults.
	HTTP httpserve.Config
	// Gatherer is served on /metrics; nil serves an empty registry.
	Gatherer prometheus.Gatherer
	// Server is the DNS server whose snapshot, health and answer counters are shown.
	Server *dnsserver.Server
	// Ready reports readiness for /readyz; nil means ready once Server has a snapshot.
	Ready func() bool
	// Degraded, when set and not "", is what /readyz adds to its "ready": the node serves,
	// but not as it should (its cached policy, say). Still 200: a node that answers DNS
	// from its last policy must stay in rotation.
	Degraded func() string
	// Policy describes the serving policy and the last reload; nil leaves it empty.
	Policy func() api.PolicyStatus
	// Health is the merged health the DNS server answers from: /v1/state, the status page
	// and /v1/health show its View and reporters. nil shows no services.
	Health *health.Health
	// SampleEvery is the answer counters' sampling period, default 5s; Samples the ring
	// size, default 12 (a one-minute window).
	SampleEvery time.Duration
	Samples     int
	// HistoryEvery is the period of the history of GET /v1/history and the status page's
	// plot, default 10s; the history keeps the last 15 minutes (HistorySpan) of samples.
	HistoryEvery time.Duration

	// Cluster is the node's cluster for GET /v1/cluster; nil leaves it out.
	Cluster func() api.Cluster

	// Store is the policy store the REST API reads and writes; nil leaves the API out.
	Store *store.Store
	// Token is the bearer token writes need, and reads too but /healthz and /readyz;
	// "" disables writes (403) and leaves reads open.
	Token string
	// ReportToken is the bearer token that may push health reports (POST
	// /v1/health/report) and do nothing else; the admin token may push too. Neither: no
	// push (403).
	ReportToken string
	// Push records a checked pushed report (POST /v1/health/report) for ttl from at; nil
	// records it in Health alone (this node). glbdns on etcd shares it with every node
	// too. An error wrapping health.ErrTooManyPushers answers 429, store.ErrUnavailable
	// 503 with Retry-After, store.ErrInvalid 400.
	Push func(ctx context.Context, name string, rep *api.Report, ttl time.Duration, at time.Time) error
	// PublicMetrics serves /metrics, and PublicStatus the status page and /v1/state,
	// without the token (a scraper or a browser on a management network).
	PublicMetrics, PublicStatus bool
}

// Admin serves the admin endpoints.
type Admin struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	page     *template.Template
	tokenSum [sha256.Size]byte // of Config.Token, compared in constant time (api.go)
	// reportSum is Config.ReportToken's (push.go)
	reportSum [sha256.Size]byte

	mu      sync.Mutex
	samples []sample // ring, oldest first

	histMu   sync.Mutex
	history  []api.HistoryPoint     // oldest first, at most histCap
	histLast dnsserver.AnswerCounts // the counters at the last history sample
	histCap  int

	// The pools' activity (activity.go): when counting began, each service's answers at
	// the last reading, and when each pool was last answered.
	actMu    sync.Mutex
	actSince time.Time
	actSums  map[string]uint64
	actLast  map[string]time.Time
}

// HistorySpan is how far back the history reaches: long enough to see a drain or an
// outage and the traffic move, short enough that the status page draws it in one request.
const HistorySpan = 15 * time.Minute

type sample struct {
	at     time.Time
	counts dnsserver.AnswerCounts
}

//go:embed status.html
var statusHTML string

// New returns an Admin; Serve runs it, Handler exposes it for tests.
func New(cfg Config) *Admin {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.Samples <= 0 {
		cfg.Samples = 12
	}
	if cfg.HistoryEvery <= 0 {
		cfg.HistoryEvery = 10 * time.Second
	}
	a := &Admin{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), tokenSum: sha256.Sum256([]byte(cfg.Token)),
		histCap: max(1, int(HistorySpan/cfg.HistoryEvery)), actSince: time.Now(), actLast: map[string]time.Time{},
		page: template.Must(template.New("status").Funcs(template.FuncMap{"pct": pct}).Parse(statusHTML))}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics: true, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /v1/state", a.stateJSON)
	a.mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.History())
	})
	if cfg.Cluster != nil {
		a.mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, cfg.Cluster())
		})
	}
	a.mux.HandleFunc("GET /{$}", a.statusPage)
	if cfg.Store != nil {
		a.routeAPI(a.mux)
	}
	a.reportSum = sha256.Sum256([]byte(cfg.ReportToken))
	if cfg.Health != nil {
		a.mux.HandleFunc("POST /v1/health/report", a.pushReport)
	}
	a.mux.HandleFunc("GET /v1/activity", a.activity)
	a.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", "")
	})
	return a
}

// Handler is the admin mux.
func (a *Admin) Handler() http.Handler { return a.guard(a.mux) }

// Serve serves on ln and samples the answer counters until ctx is done, then shuts the
// HTTP server down (bounded to 2s). It returns nil after a clean stop.
func (a *Admin) Serve(ctx context.Context, ln net.Listener) error {
	hs := a.cfg.HTTP.Server(a.Handler(), a.log)
	ln = httpserve.Listen(ln, a.cfg.HTTP)
	go func() {
		t := time.NewTicker(a.cfg.SampleEvery)
		defer t.Stop()
		ht := time.NewTicker(a.cfg.HistoryEvery)
		defer ht.Stop()
		a.Sample()
		a.SampleHistory()
		for {
			select {
			case <-ht.C:
				a.SampleHistory()
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
				return
			case <-t.C:
				a.Sample()
			}
		}
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Sample reads the answer counters into the ring (Serve calls it every SampleEvery).
func (a *Admin) Sample() {
	if a.cfg.Server == nil {
		return
	}
	s := sample{at: time.Now(), counts: a.cfg.Server.AnswerCounts()}
	a.readActivity(s.at)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.samples = append(a.samples, s)
	if len(a.samples) > a.cfg.Samples {
		a.samples = append(a.samples[:0], a.samples[len(a.samples)-a.cfg.Samples:]...)
	}
}

// SampleHistory appends one point to the history (Serve calls it every HistoryEvery):
// every service's members with their answers since the last point and their state, from
// the same view and counters /v1/state reads, so the plot and the table agree.
func (a *Admin) SampleHistory() {
	v := a.view()
	if v == nil || a.cfg.Server == nil {
		return
	}
	a.histMu.Lock()
	defer a.histMu.Unlock()
	w := window{now: a.cfg.Server.AnswerCounts(), old: a.histLast}
	pt := api.HistoryPoint{At: time.Now().UTC(), Services: make([]api.HistoryService, 0, len(v.Snapshot().Services))}
	for _, svc := range v.Snapshot().Services {
		s := serviceState(svc, v, w)
		hs := api.HistoryService{Name: s.Name, Answers: s.Answers}
		for _, p := range s.Pools {
			for _, m := range p.Members {
				hs.Members = append(hs.Members, api.HistoryMember{ID: m.ID, Answers: m.Answers, Share: m.Share, State: m.State})
			}
		}
		pt.Services = append(pt.Services, hs)
	}
	sort.SliceStable(pt.Services, func(i, j int) bool { return pt.Services[i].Name < pt.Services[j].Name })
	a.histLast = w.now
	if len(a.history) >= a.histCap {
		a.history = append(a.history[:0], a.history[len(a.history)-a.histCap+1:]...)
	}
	a.history = append(a.history, pt)
}

// History is the sampled history, oldest first.
func (a *Admin) History() api.History {
	a.histMu.Lock()
	defer a.histMu.Unlock()
	return api.History{IntervalSeconds: a.cfg.HistoryEvery.Seconds(), Points: append([]api.HistoryPoint{}, a.history...)}
}

func (a *Admin) ready() bool {
	if a.cfg.Ready != nil {
		return a.cfg.Ready()
	}
	if a.cfg.Server == nil {
		return false
	}
	snap, _ := a.cfg.Server.Current()
	return snap != nil
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !a.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	if a.cfg.Degraded != nil {
		if note := a.cfg.Degraded(); note != "" {
			_, _ = w.Write([]byte("ready: " + note + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (a *Admin) stateJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(a.State()); err != nil {
		a.log.Debug("write state", "err", err)
	}
}

func (a *Admin) statusPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page is self-contained: inline style and script only.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
	if err := a.page.Execute(w, a.State()); err != nil {
		a.log.Debug("write status page", "err", err)
	}
}

func pct(f float64) string {
	b, _ := json.Marshal(float64(int(f*1000+0.5)) / 10)
	return string(b) + "%"
}

// view is the health view of the serving snapshot, nil before the first.
func (a *Admin) view() *health.View {
	if a.cfg.Health == nil {
		return nil
	}
	return a.cfg.Health.View()
}

// State builds the live state now, from the health view the DNS server answers from and
// the answer counters.
func (a *Admin) State() *api.State {
	st := &api.State{Services: []api.ServiceState{}, Reporters: []api.ReporterState{}}
	if a.cfg.Policy != nil {
		st.Policy = a.cfg.Policy()
	}
	if a.cfg.Health != nil {
		st.Reporters = a.cfg.Health.Reporters()
	}
	v := a.view()
	if v == nil || a.cfg.Server == nil {
		return st
	}
	w := window{now: a.cfg.Server.AnswerCounts()}
	a.mu.Lock()
	if len(a.samples) > 0 {
		w.old = a.samples[0].counts
		st.WindowSeconds = time.Since(a.samples[0].at).Seconds()
	}
	a.mu.Unlock()
	for _, svc := range v.Snapshot().Services {
		st.Services = append(st.Services, serviceState(svc, v, w))
	}
	sort.SliceStable(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })
	return st
}

// window is the answer counters now and at the oldest sample.
type window struct{ now, old dnsserver.AnswerCounts }

// serviceState is one service of State: its pools (the fallback pool last, each pool once)
// with their members and their shares of the service's answers in the window.
func serviceState(svc *policy.Service, v *health.View, w window) api.ServiceState {
	s := api.ServiceState{Name: svc.Name, Zone: svc.Zone, Method: svc.Method.String(), TTL: svc.TTL,
		WhenAllDown: svc.WhenAllDown.String()}
	pools := svc.Pools
	if svc.Fallback != nil {
		pools = append(pools[:len(pools):len(pools)], svc.Fallback)
	}
	seen := map[string]bool{}
	for i, p := range pools {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		pp := api.PoolState{Name: p.Name, Region: p.Region, Fallback: i >= len(svc.Pools), Members: []api.MemberState{}}
		for _, m := range p.Members {
			mm := memberState(m, p, v)
			mm.Total, _ = w.now.Get(svc.Name, p.Name, m.Name)
			base, ok := w.old.Get(svc.Name, p.Name, m.Name)
			if !ok || base > mm.Total {
				base = 0 // new since the oldest sample: all its answers are in the window
			}
			mm.Answers = mm.Total - base
			s.Answers += mm.Answers
			pp.Members = append(pp.Members, mm)
		}
		s.Pools = append(s.Pools, pp)
	}
	if s.Answers > 0 {
		for i := range s.Pools {
			for j := range s.Pools[i].Members {
				m := &s.Pools[i].Members[j]
				m.Share = float64(m.Answers) / float64(s.Answers)
			}
		}
	}
	return s
}

// memberState is a member as the view answers it, with the one state word of
// api.MemberState.State.
func memberState(m *policy.Member, p *policy.Pool, v *health.View) api.MemberState {
	st := v.Status(m)
	mm := api.MemberState{Name: m.Name, ID: m.ID(), Host: m.Host, Weight: m.Weight, Status: "down", Health: st.String()}
	if m.Addr.IsValid() {
		mm.Address = m.Addr.String()
	}
	if v.Up(m) {
		mm.Status = "up"
	}
	d, drained := v.Drain(m)
	mm.Drained = drained
	switch {
	case drained:
		until := d.Until.UTC()
		mm.State, mm.Reason, mm.DrainedUntil = api.MemberDrained, d.Reason, &until
	case m.Weight == 0:
		mm.State = api.MemberDisabled
	case st == api.StatusDown:
		mm.State, mm.Reason = api.MemberDown, v.Reason(m)
	case st == api.StatusUp:
		mm.State = api.MemberUp
	case v.Degraded():
		unknownIs := "down"
		if v.UnknownUp(p) {
			unknownIs = "up"
		}
		mm.State, mm.Reason = api.MemberDegraded, "no fresh healthd reporter for the grace period: counted as unknown_is "+unknownIs
	default:
		mm.State = api.MemberUnknown
	}
	return mm
}
