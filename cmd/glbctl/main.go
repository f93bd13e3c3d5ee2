// Command glbctl is the operator's tool for glbdns: it validates a policy with the server's
// own loader and explains which answer a given client would get, and why.
//
//	glbctl validate [-managed-dir DIR | -admin URL | -no-managed] PATH
//	glbctl explain -policy PATH -name NAME [-type A] [-client ADDR] [-ecs PREFIX]
//	glbctl status [-admin URL]
//	glbctl drain [-admin URL] POOL MEMBER -for DURATION [-reason TEXT]
//	glbctl undrain [-admin URL] POOL MEMBER
//	glbctl policy push [-etcd-endpoints URLS] PATH
//	glbctl dnssec keygen ZONE [-dir DIR] [-algorithm ECDSAP256SHA256|ED25519] [-ksk|-zsk|-csk]
//	glbctl dnssec ds ZONE [-dir DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/buildinfo"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/geoip"
	"github.com/glbdns/glbdns/policy/store"
	"github.com/glbdns/glbdns/zones"
)

const usage = `Usage:
  glbctl validate [-managed-dir DIR | -admin URL [-admin-token-file FILE] | -no-managed] PATH
      Load the policy at PATH (a .hcl file or a directory of them) with the managed objects
      exactly as glbdns would: those of DIR (default PATH.managed when it exists), or those a
      running glbdns serves (-admin), or none (-no-managed); print every diagnostic with
      file:line:col and a source snippet. Exit status 1 on any error.
  glbctl explain -policy PATH -name NAME [-type A] [-client ADDR] [-ecs PREFIX]
      Show which answer a client would get for NAME and why: the zone, the service, its
      policy, the members considered, the hash key and the ECS scope.
  glbctl status [-admin URL] [-admin-token-file FILE]
      Show the live state of a running glbdns from its admin listener (default
      http://127.0.0.1:8053, env GLBDNS_ADMIN_URL): every service, pool and member with its
      health and its share of the answers over the last minute.
  glbctl drain [-admin URL] [-admin-token-file FILE] POOL MEMBER -for DURATION [-reason TEXT]
      Take a member out of the answers for DURATION (e.g. 10m, at most 366 days) through
      the admin API; it comes back by itself. Writes need the admin token.
  glbctl undrain [-admin URL] [-admin-token-file FILE] POOL MEMBER
      End a member's drain now.
  glbctl policy push [-etcd-endpoints URLS] [-etcd-prefix P] [etcd flags] PATH
      Validate the policy at PATH with the managed objects in etcd, with the loader of
      the nodes that read their policy from etcd (glbdns -policy-from-etcd), and put its
      files under PREFIX policy/ in one transaction; files no longer in PATH are removed.
      Nothing is written on any error. The etcd flags are glbdns's (env GLBDNS_ETCD_*).
  glbctl dnssec keygen ZONE [-dir DIR] [-algorithm ECDSAP256SHA256|ED25519|13|15] [-ksk|-zsk|-csk]
      Make a DNSSEC key for ZONE and write it into DIR (default ".") as BIND's
      dnssec-keygen does: K<zone>+<alg>+<tag>.key and .private (mode 0600); print that
      base name. Algorithm 13 by default. -csk (default) is one combined key (flags 257);
      -ksk a key-signing key (257) and -zsk a zone-signing key (256), to use as a pair.
  glbctl dnssec ds ZONE [-dir DIR]
      Print the DS record (SHA-256) of every key-signing key of ZONE in DIR (default "."),
      one a line, as dnssec-dsfromkey -2 does: what the parent zone publishes. Exit
      status 1 when ZONE has no key-signing key there or a key there is unreadable.
  glbctl version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "status":
		return status(args[1:], stdout, stderr)
	case "drain":
		return drain(args[1:], stdout, stderr, false)
	case "undrain":
		return drain(args[1:], stdout, stderr, true)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "dnssec":
		return dnssecCmd(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, buildinfo.String("glbctl"))
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "glbctl: unknown command %q\n%s", args[0], usage)
	return 2
}

// validate loads the policy at PATH with the managed objects the daemon would compile it
// with, through the daemon's own store: those of a managed folder (-managed-dir, by
// default the policy's own <PATH>.managed when it exists) or of a running node (-admin),
// so that it never says ok to a policy the daemon refuses (a pool of the files that a
// managed pool already names, say) nor refuses one a managed pool completes.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	managedDir := fs.String("managed-dir", "", "`folder` of the managed objects to validate with (default PATH.managed when it exists)")
	noManaged := fs.Bool("no-managed", false, "validate the operator's files alone")
	c := adminFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "glbctl validate: want exactly one PATH\n")
		return 2
	}
	path := pos[0]
	fromAdmin := false
	fs.Visit(func(f *flag.Flag) { fromAdmin = fromAdmin || f.Name == "admin" })
	if fromAdmin && (*managedDir != "" || *noManaged) {
		fmt.Fprint(stderr, "glbctl validate: -admin, -managed-dir and -no-managed exclude each other\n")
		return 2
	}
	b, where, err := managedBackend(path, *managedDir, *noManaged, fromAdmin, c)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl validate: %v\n", err)
		return 1
	}
	st, err := store.OpenBackend(path, b)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl validate: %v\n", err)
		return 1
	}
	defer st.Close()
	snap, diags := st.Load()
	if len(diags) > 0 {
		printDiags(stderr, diags)
	}
	if diags.HasErrors() {
		fmt.Fprintf(stderr, "%s: %d error(s)%s\n", path, countErrors(diags), where)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: %d zone(s), %d pool(s), %d member(s), %d service(s), hash %s;%s\n",
		path, len(snap.Zones.Zones()), len(snap.Pools), len(snap.Members), len(snap.Services), snap.Hash, where)
	return 0
}

// managedBackend is where validate reads the managed documents from, read-only, and how
// its verdict names them (" with the managed objects of ...").
func managedBackend(path, dir string, none, fromAdmin bool, c *adminClient) (store.Backend, string, error) {
	switch {
	case none:
		return &store.StaticBackend{}, " the operator's files alone", nil
	case fromAdmin:
		if err := c.init(); err != nil {
			return nil, "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), *c.timeout)
		defer cancel()
		var pools api.PoolList
		var services api.ServiceList
		var drains api.DrainList
		for _, r := range []struct {
			path string
			out  any
		}{{"/v1/pools", &pools}, {"/v1/services", &services}, {"/v1/drains", &drains}} {
			if err := c.do(ctx, http.MethodGet, r.path, nil, r.out); err != nil {
				return nil, "", fmt.Errorf("fetch the managed objects: %w", err)
			}
		}
		// Named as the node names them, in the managed folder beside its policy: the
		// compiler takes files in name order, and which of two clashing declarations it
		// reports (the operator's file, refusing the policy, or the document, left out)
		// depends on it.
		return &store.StaticBackend{Docs: store.Documents(pools.Pools, services.Services, drains.Drains), Where: store.DefaultManagedDir(path)},
			" with the managed objects of " + *c.base, nil
	}
	if dir == "" {
		dir = store.DefaultManagedDir(path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return &store.StaticBackend{}, " no managed folder " + dir, nil
		}
	} else if fi, err := os.Stat(dir); err != nil {
		return nil, "", err
	} else if !fi.IsDir() {
		return nil, "", fmt.Errorf("-managed-dir %s is not a folder", dir)
	}
	// A DirBackend made directly, not by NewDirBackend: validate must neither create the
	// folder nor remove a temporary file a running glbdns is writing in it.
	return &store.DirBackend{Dir: dir}, " with the managed objects of " + dir, nil
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// printDiags writes diagnostics as hcl's text writer does (file:line:col, summary, snippet).
// The files are parsed again here only to show snippets; the loader already reported
// everything.
func printDiags(w io.Writer, diags hcl.Diagnostics) {
	p := hclparse.NewParser()
	for _, d := range diags {
		if d.Subject != nil && strings.HasSuffix(d.Subject.Filename, ".hcl") {
			p.ParseHCLFile(d.Subject.Filename)
		}
	}
	tw := hcl.NewDiagnosticTextWriter(w, p.Files(), 100, false)
	for _, d := range diags {
		if d.Subject != nil {
			// One line that grep and editors understand, then hcl's rich rendering.
			fmt.Fprintf(w, "%s:%d:%d: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
		}
		_ = tw.WriteDiagnostic(d)
	}
}

func explain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("policy", "", "policy `path` (.hcl file or directory)")
	name := fs.String("name", "", "query `name`")
	qt := fs.String("type", "A", "query `type`")
	clientS := fs.String("client", "198.51.100.7", "the query's source `address` (the resolver)")
	ecsS := fs.String("ecs", "", "EDNS Client Subnet `prefix` the resolver sent (e.g. 203.0.113.0/24)")
	cityDB := fs.String("geoip-database", "", "GeoIP2 City or Country `mmdb` (default: the policy's geoip block)")
	asnDB := fs.String("geoip-asn-database", "", "GeoLite2 ASN `mmdb` (default: the policy's geoip block)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *name == "" {
		fmt.Fprint(stderr, "glbctl explain: -policy and -name are required\n")
		return 2
	}
	qtype, ok := dns.StringToType[strings.ToUpper(*qt)]
	if !ok {
		fmt.Fprintf(stderr, "glbctl explain: unknown type %q\n", *qt)
		return 2
	}
	client, err := netip.ParseAddr(*clientS)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl explain: bad -client: %v\n", err)
		return 2
	}
	c := policy.Client{Addr: client, SourcePrefix: client.BitLen()}
	if *ecsS != "" {
		pfx, err := netip.ParsePrefix(*ecsS)
		if err != nil {
			fmt.Fprintf(stderr, "glbctl explain: bad -ecs: %v\n", err)
			return 2
		}
		c = policy.Client{Addr: pfx.Masked().Addr(), SourcePrefix: pfx.Bits(), ECS: true}
	}
	snap, diags := policy.LoadPath(*path)
	if diags.HasErrors() {
		printDiags(stderr, diags)
		return 1
	}
	qname := dns.CanonicalName(*name)
	fmt.Fprintf(stdout, "query:   %s %s from %s", qname, dns.TypeToString[qtype], client)
	if c.ECS {
		fmt.Fprintf(stdout, " (ECS %s)", *ecsS)
	}
	fmt.Fprintln(stdout)
	z := snap.Zones.Find(qname)
	if z == nil {
		fmt.Fprintf(stdout, "zone:    none of %s\nanswer:  REFUSED (not authoritative)\n", zoneNames(snap))
		return 0
	}
	fmt.Fprintf(stdout, "zone:    %s\n", z.Origin())
	res := z.Lookup(qname, qtype)
	switch res.Kind {
	case zones.Service:
		svc := snap.Services[res.Service]
		fmt.Fprintf(stdout, "service: %s\n", svc.Name)
		if svc.NeedsGeo {
			if err := locate(stdout, snap, &c, *cityDB, *asnDB); err != nil {
				fmt.Fprintf(stderr, "glbctl explain: %v\n", err)
				return 1
			}
		}
		fmt.Fprint(stdout, svc.Explain(c, qtype, policy.AllUp{}).String())
		fmt.Fprintln(stdout, "health:  every member counted as up (glbctl reads the policy only)")
	case zones.Answer:
		fmt.Fprintln(stdout, "answer:  static")
		printRRs(stdout, res.Answer)
	case zones.CNAME:
		fmt.Fprintf(stdout, "answer:  CNAME to %s (the server follows it inside its zones)\n", res.Target)
		printRRs(stdout, res.Answer)
	case zones.NoData:
		fmt.Fprintln(stdout, "answer:  NOERROR, no data (SOA in authority)")
	case zones.NXDomain:
		fmt.Fprintln(stdout, "answer:  NXDOMAIN (SOA in authority)")
	case zones.Referral:
		fmt.Fprintln(stdout, "answer:  referral (delegation below this zone)")
		printRRs(stdout, res.Ns)
	}
	return 0
}

func printRRs(w io.Writer, rrs []dns.RR) {
	for _, rr := range rrs {
		fmt.Fprintf(w, "         %s\n", rr.String())
	}
}

func zoneNames(snap *policy.Snapshot) string {
	var names []string
	for _, z := range snap.Zones.Zones() {
		names = append(names, z.Origin())
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// locate looks the client up in the GeoIP databases (the flags, else the policy's geoip
// block), prints what was found, and fills c.Geo as glbdns does for geo and nearest
// services.
func locate(w io.Writer, snap *policy.Snapshot, c *policy.Client, city, asn string) error {
	pc, pa := snap.GeoIPPaths()
	if city == "" {
		city = pc
	}
	if asn == "" {
		asn = pa
	}
	if city == "" && asn == "" {
		fmt.Fprintln(w, "geoip:   no database: the default order applies")
		return nil
	}
	db, err := geoip.Open(city, asn)
	if err != nil {
		return err
	}
	defer db.Close()
	c.Geo, c.HasGeo = db.Lookup(c.Addr), true
	g := c.Geo
	fmt.Fprintf(w, "geoip:   %s: country %q continent %q asn %d %q", c.Addr, g.Country, g.Continent, g.ASN, g.ASOrg)
	if g.HasLocation {
		fmt.Fprintf(w, " location %.4f,%.4f", g.Lat, g.Lon)
	}
	fmt.Fprintf(w, " network %s\n", g.Network)
	return nil
}
