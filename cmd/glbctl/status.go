package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glbdns/glbdns/api"
)

// status prints the live state of a glbdns from its admin listener's /v1/state as an
// aligned table, one row per member of every service.
func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("GLBDNS_ADMIN_URL")
	if def == "" {
		def = "http://127.0.0.1:8053"
	}
	base := fs.String("admin", def, "admin `URL` of the glbdns to ask (env GLBDNS_ADMIN_URL)")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u := strings.TrimRight(*base, "/")
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/v1/state", nil)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl: status: %v\n", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl: status: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "glbctl: status: %s answered %s\n", u, resp.Status)
		return 1
	}
	var st api.State
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "glbctl: status: decode state: %v\n", err)
		return 1
	}
	printState(stdout, &st)
	return 0
}

func printState(w io.Writer, st *api.State) {
	p := st.Policy
	hash := p.Hash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	fmt.Fprintf(w, "policy %s  generation %d  last reload %s", hash, p.Generation, p.LastResult)
	if !p.LastReload.IsZero() {
		fmt.Fprintf(w, " at %s", p.LastReload.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if p.LastError != "" {
		fmt.Fprintf(w, "last reload error: %s\n", p.LastError)
	}
	for _, r := range st.Reporters {
		fresh := "fresh"
		if !r.Fresh {
			fresh = "STALE"
		}
		fmt.Fprintf(w, "healthd %s  %s  last contact %s\n", r.URL, fresh, r.LastContact.Format(time.RFC3339))
	}
	if st.WindowSeconds > 0 {
		fmt.Fprintf(w, "answer shares over the last %.0fs\n\n", st.WindowSeconds)
	} else {
		fmt.Fprint(w, "answer shares since start\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tMETHOD\tPOOL\tMEMBER\tADDRESS\tWEIGHT\tHEALTH\tANSWERS\tSHARE")
	for _, s := range st.Services {
		for _, pl := range s.Pools {
			pool := pl.Name
			if pl.Fallback {
				pool += " (fallback)"
			}
			for _, m := range pl.Members {
				addr := m.Address
				if addr == "" {
					addr = m.Host
				}
				health := m.Status
				if m.Drained {
					health += ",drained"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%.1f%%\n",
					s.Name, s.Method, pool, m.Name, addr, m.Weight, health, m.Answers, m.Share*100)
			}
		}
	}
	tw.Flush()
}
