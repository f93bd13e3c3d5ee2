package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/glbdns/glbdns/internal/cli"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

// policyCmd runs glbctl policy SUBCOMMAND.
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "push" {
		fmt.Fprint(stderr, "glbctl policy: want push\n")
		return 2
	}
	return push(args[1:], stdout, stderr)
}

// push puts a policy directory (or file) into etcd for the nodes that read their
// operator's policy there (-policy-from-etcd), after validating it with the managed
// objects, as those nodes will compile it.
func push(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	etcd := cli.EtcdFlags(fs, "GLBDNS")
	if err := cli.ParseEnv(fs, "GLBDNS", args); err != nil { // glbdns's etcd variables, GLBDNS_ETCD_*
		if errors.Is(err, cli.ErrEnv) {
			fmt.Fprintln(stderr, "glbctl policy push:", err) // fs printed a command line's own
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, "glbctl policy push: want exactly one PATH\n")
		return 2
	}
	path := fs.Arg(0)
	cfg := etcd()
	if len(cfg.Endpoints) == 0 {
		fmt.Fprint(stderr, "glbctl policy push: -etcd-endpoints (or GLBDNS_ETCD_ENDPOINTS) is required\n")
		return 2
	}
	files, err := policy.ReadPath(path)
	if err != nil {
		fmt.Fprintln(stderr, "glbctl policy push:", err)
		return 1
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "glbctl policy push: no .hcl file in %s\n", path)
		return 1
	}
	st, err := store.OpenSource("", store.Source{Etcd: cfg, PolicyFromEtcd: true})
	if err != nil {
		fmt.Fprintln(stderr, "glbctl policy push:", err)
		return 1
	}
	defer st.Close()
	snap, diags, err := st.PushPolicy(files)
	if err != nil {
		fmt.Fprintln(stderr, "glbctl policy push:", err)
		return 1
	}
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	st.ToLocal(diags, dir)
	if len(diags) > 0 {
		printDiags(stderr, diags)
	}
	if diags.HasErrors() {
		fmt.Fprintf(stderr, "%s: %d error(s); nothing pushed\n", path, countErrors(diags))
		return 1
	}
	fmt.Fprintf(stdout, "%s: pushed %d file(s) to %s%s: %d zone(s), %d pool(s), %d service(s), hash %s\n",
		path, len(files), cfg.Prefix, store.PolicyDocs, len(snap.Zones.Zones()), len(snap.Pools), len(snap.Services), snap.Hash)
	return 0
}
