package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
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
	c := adminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := c.init(); err != nil {
		fmt.Fprintf(stderr, "glbctl: status: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *c.timeout)
	defer cancel()
	var st api.State
	if err := c.do(ctx, http.MethodGet, "/v1/state", nil, &st); err != nil {
		fmt.Fprintf(stderr, "glbctl: status: %v\n", err)
		return 1
	}
	// An older glbdns has no /v1/cluster: the state alone is still worth printing.
	var cl api.Cluster
	if err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, &cl); err == nil {
		printCluster(stdout, &cl)
	}
	printState(stdout, &st)
	return 0
}

// printCluster prints the cluster's nodes, one a line, and says so when they do not all
// serve the same policy.
func printCluster(w io.Writer, cl *api.Cluster) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tDNS\tADMIN\tPOLICY\tGENERATION\tREPORTERS")
	for _, n := range cl.Nodes {
		fresh := 0
		for _, r := range n.Reporters {
			if r.Fresh {
				fresh++
			}
		}
		hash := n.PolicyHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		if n.FromCache {
			hash += " (cached)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d/%d fresh\n", n.ID, n.DNS, n.Admin, hash, n.Generation, fresh, len(n.Reporters))
	}
	tw.Flush()
	if cl.PolicyHashes > 1 {
		fmt.Fprintf(w, "WARNING: the nodes serve %d different policies\n", cl.PolicyHashes)
	}
	fmt.Fprintln(w)
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
	fmt.Fprintln(tw, "SERVICE\tMETHOD\tPOOL\tMEMBER\tADDRESS\tWEIGHT\tSTATE\tANSWERS\tSHARE\tWHY")
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
				state := m.State
				if state == "" { // a glbdns from before State
					state = m.Status
					if m.Drained {
						state = api.MemberDrained
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%.1f%%\t%s\n",
					s.Name, s.Method, pool, m.Name, addr, m.Weight, state, m.Answers, m.Share*100, why(m))
			}
		}
	}
	tw.Flush()
}

// why is the WHY column: the state's reason, and a drain's end.
func why(m api.MemberState) string {
	out := m.Reason
	if m.DrainedUntil != nil {
		if out != "" {
			out += " "
		}
		out += "(until " + m.DrainedUntil.Format(time.RFC3339) + ")"
	}
	return strings.ReplaceAll(out, "\t", " ")
}
