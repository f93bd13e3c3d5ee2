package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/glbdns/glbdns/api"
)

// drain takes a member out of the answers for a while through a running glbdns's admin
// API (POST /v1/pools/{pool}/members/{member}/drain); undrain ends the drain (DELETE).
func drain(args []string, stdout, stderr io.Writer, undo bool) int {
	name := "drain"
	if undo {
		name = "undrain"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := adminFlags(fs)
	var dur *time.Duration
	var reason *string
	if !undo {
		dur = fs.Duration("for", 0, "how long the drain lasts (`duration`, e.g. 10m; at most 366 days); required")
		reason = fs.String("reason", "", "why, shown on the status page, /v1/state and glbctl status")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "glbctl %s: want POOL MEMBER\n", name)
		return 2
	}
	if !undo && *dur <= 0 {
		fmt.Fprintf(stderr, "glbctl drain: -for is required and must be positive (e.g. -for 10m)\n")
		return 2
	}
	if err := c.init(); err != nil {
		fmt.Fprintf(stderr, "glbctl %s: %v\n", name, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *c.timeout)
	defer cancel()
	path := "/v1/pools/" + url.PathEscape(pos[0]) + "/members/" + url.PathEscape(pos[1]) + "/drain"
	if undo {
		if err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
			fmt.Fprintf(stderr, "glbctl undrain: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s/%s: undrained\n", pos[0], pos[1])
		return 0
	}
	var d api.Drain
	if err := c.do(ctx, http.MethodPost, path, api.DrainRequest{Duration: dur.String(), Reason: *reason}, &d); err != nil {
		fmt.Fprintf(stderr, "glbctl drain: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s/%s: drained until %s", d.Pool, d.Member, d.Until.Format(time.RFC3339))
	if d.Reason != "" {
		fmt.Fprintf(stdout, ": %s", d.Reason)
	}
	fmt.Fprintln(stdout)
	return 0
}
