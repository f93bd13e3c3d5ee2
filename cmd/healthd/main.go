// Command healthd probes every member of every pool of a glbdns policy and publishes the
// results on its health API (GET /v1/health, see docs/health-api.md), which glbdns
// subscribes to.
//
//	healthd -policy PATH [-listen 127.0.0.1:8054] [-id NAME] [-log-level info]
//
// SIGHUP reloads the policy; a policy with errors is refused and logged, and the old one
// keeps running. SIGINT and SIGTERM stop it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/glbdns/glbdns/healthd"
	"github.com/glbdns/glbdns/policy"
)

func main() {
	hostname, _ := os.Hostname()
	var (
		policyPath = flag.String("policy", "", "policy file or directory of .hcl files (required)")
		listen     = flag.String("listen", "127.0.0.1:8054", "health API address")
		id         = flag.String("id", hostname, "reporter id published in the health API")
		logLevel   = flag.String("log-level", "info", "log level: debug, info, warn or error")
	)
	flag.Parse()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil || *policyPath == "" || *id == "" {
		fmt.Fprintln(os.Stderr, "healthd: -policy and -id are required; -log-level is debug, info, warn or error")
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()

	err := healthd.Run(ctx, healthd.Config{
		PolicyPath: *policyPath,
		Load:       load,
		Listen:     *listen,
		ID:         *id,
		Logger:     log,
		Reload:     reload,
	})
	if err != nil {
		log.Error("healthd failed", "err", err)
		os.Exit(1)
	}
}

// load adapts policy.LoadPath: any error diagnostic refuses the whole policy.
func load(path string) (*policy.Snapshot, error) {
	snap, diags := policy.LoadPath(path)
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
