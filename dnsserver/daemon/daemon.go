// Package daemon wires the glbdns binary together: it loads the policy, starts the DNS
// server, subscribes to healthd reporters, and reloads the policy on SIGHUP. cmd/glbdns only
// parses flags and calls Run.
//
// A reload that fails is refused whole: the diagnostics are logged and the old snapshot keeps
// serving (DESIGN.md, "Data flow").
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/glbdns/glbdns/dnsserver"
	"github.com/glbdns/glbdns/healthd/client"
	"github.com/glbdns/glbdns/policy"
)

// Config is what cmd/glbdns gathers from flags and the environment.
type Config struct {
	// Listen is the UDP and TCP address of the DNS server ("127.0.0.1:5353").
	Listen string
	// PolicyPath is a .hcl file or a directory of .hcl files.
	PolicyPath string
	// HealthURLs are the healthd reporters to subscribe to; none means every member is up.
	HealthURLs []string
	// HealthStaleAfter and HealthGrace tune the health client (0 = its defaults).
	HealthStaleAfter, HealthGrace time.Duration
	// Logger receives every log line; nil means slog.Default().
	Logger *slog.Logger
	// Ready, when set, is called with the bound DNS address once the server is serving.
	Ready func(addr netip.AddrPort)
}

// ErrPolicy is returned by Run when the initial policy does not load.
var ErrPolicy = errors.New("policy has errors")

// Run loads the policy, serves DNS until ctx is done, and reloads on SIGHUP.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	snap, diags := policy.LoadPath(cfg.PolicyPath)
	if diags.HasErrors() {
		logDiags(log, diags)
		return fmt.Errorf("load %s: %w: %s", cfg.PolicyPath, ErrPolicy, diags.Error())
	}

	srv := dnsserver.New(dnsserver.Config{Addr: cfg.Listen, Logger: log.With("component", "dnsserver")})
	srv.SetSnapshot(snap)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if len(cfg.HealthURLs) > 0 {
		hc, err := client.New(client.Config{
			URLs:       cfg.HealthURLs,
			StaleAfter: cfg.HealthStaleAfter,
			Grace:      cfg.HealthGrace,
			Logger:     log.With("component", "healthclient"),
			OnChange:   srv.HealthChanged,
		})
		if err != nil {
			return fmt.Errorf("health client: %w", err)
		}
		srv.SetHealthSource(healthSource{hc})
		go hc.Run(ctx)
	}

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
	log.Info("serving", "addr", srv.Addr().String(), "policy", cfg.PolicyPath,
		"zones", len(snap.Zones.Zones()), "services", len(snap.Services), "policy_hash", snap.Hash)
	if cfg.Ready != nil {
		cfg.Ready(srv.Addr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for {
		select {
		case <-ctx.Done():
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			<-errc
			log.Info("stopped")
			return nil
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("dns server: %w", err)
			}
			return nil
		case <-hup:
			next, diags := policy.LoadPath(cfg.PolicyPath)
			if diags.HasErrors() {
				logDiags(log, diags)
				log.Error("reload refused, old policy keeps serving", "policy", cfg.PolicyPath)
				continue
			}
			srv.SetSnapshot(next)
			log.Info("policy reloaded", "policy_hash", next.Hash, "services", len(next.Services))
		}
	}
}

// logDiags logs each diagnostic with its position (file:line:col).
func logDiags(log *slog.Logger, diags hcl.Diagnostics) {
	for _, d := range diags {
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		log.Error("policy error", "pos", pos, "summary", d.Summary, "detail", d.Detail)
	}
}

// healthSource adapts the healthd client to dnsserver.HealthSource.
type healthSource struct{ c *client.Client }

func (h healthSource) For(snap *policy.Snapshot) policy.Health { return h.c.For(snap) }
