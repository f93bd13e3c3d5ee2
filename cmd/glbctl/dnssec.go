package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnssec"
)

// dnssecCmd runs glbctl dnssec SUBCOMMAND.
func dnssecCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "keygen":
			return keygen(args[1:], stdout, stderr)
		case "ds":
			return dsCmd(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, "glbctl dnssec: want keygen or ds\n")
	return 2
}

// keygen writes a new key of a zone into a folder in BIND's key-file format and prints
// its base name, as dnssec-keygen does, so that scripts written for one work with the
// other.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dnssec keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "`folder` to write the key files into (it must exist)")
	algS := fs.String("algorithm", "ECDSAP256SHA256", "`algorithm`: ECDSAP256SHA256 (13) or ED25519 (15)")
	ksk := fs.Bool("ksk", false, "a key-signing key (flags 257): signs the DNSKEY set; the parent's DS names it")
	zsk := fs.Bool("zsk", false, "a zone-signing key (flags 256): signs every other RRset")
	csk := fs.Bool("csk", false, "a combined signing key (flags 257) that signs everything (the default)")
	zone, ok := oneZone(fs, args, "keygen", stderr)
	if !ok {
		return 2
	}
	alg, err := dnssec.ParseAlgorithm(*algS)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl dnssec keygen: %v\n", err)
		return 2
	}
	roles := 0
	for _, b := range []bool{*ksk, *zsk, *csk} {
		if b {
			roles++
		}
	}
	if roles > 1 {
		fmt.Fprint(stderr, "glbctl dnssec keygen: -ksk, -zsk and -csk exclude each other\n")
		return 2
	}
	// A KSK and a CSK are the same key on disk (the SEP flag); which one a key acts as
	// depends on whether the zone also has a ZSK.
	flags := uint16(dnssec.FlagKSK)
	if *zsk {
		flags = dnssec.FlagZSK
	}
	// A new key whose tag an existing key of the zone already has would share its file
	// name: Write refuses it, and a fresh key almost surely has another tag. Retries are
	// few, so that a folder full of unwritable names fails instead of looping.
	for try := 0; ; try++ {
		k, err := dnssec.Generate(zone, alg, flags)
		if err != nil {
			fmt.Fprintf(stderr, "glbctl dnssec keygen: %v\n", err)
			return 1
		}
		err = k.Write(*dir)
		if errors.Is(err, os.ErrExist) && try < 8 {
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "glbctl dnssec keygen: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, k.FileBase())
		return 0
	}
}

// dsCmd prints the DS records (SHA-256) of a zone's key-signing keys, for the operator to
// give to the parent, in the form dnssec-dsfromkey -2 prints them. It reads the keys as
// glbdns does, private halves included, so that it never prints the DS of a key the
// server would refuse to sign with.
func dsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dnssec ds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "`folder` of the zone's key files")
	zone, ok := oneZone(fs, args, "ds", stderr)
	if !ok {
		return 2
	}
	keys, err := dnssec.ReadDir(*dir, zone)
	if err != nil {
		fmt.Fprintf(stderr, "glbctl dnssec ds: %v\n", err)
		return 1
	}
	var lines []string
	for _, k := range keys {
		if !k.KSK() {
			continue
		}
		ds := k.DS()
		// No TTL, as dnssec-dsfromkey prints it: the parent zone sets its own.
		lines = append(lines, fmt.Sprintf("%s IN DS %d %d %d %s", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest)))
	}
	if len(lines) == 0 {
		fmt.Fprintf(stderr, "glbctl dnssec ds: no key-signing key of %s in %s, only zone-signing keys (glbctl dnssec keygen -ksk makes one)\n", zone, *dir)
		return 1
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

// zoneArg is a zone name from the command line, fully qualified and in lower case, if it
// is a host name. A name with other octets (a '/', a space, an escape) is refused: it
// would end up in a file name, and a policy's zone does not have one in practice.
func zoneArg(s string) (string, bool) {
	z := dns.CanonicalName(s)
	return z, s != "" && api.ValidHost(z)
}

// oneZone parses the flags of a dnssec subcommand and its one ZONE argument; false (the
// reason told on stderr) when they are wrong: exit 2.
func oneZone(fs *flag.FlagSet, args []string, cmd string, stderr io.Writer) (string, bool) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return "", false
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "glbctl dnssec %s: want exactly one ZONE\n", cmd)
		return "", false
	}
	zone, ok := zoneArg(pos[0])
	if !ok {
		fmt.Fprintf(stderr, "glbctl dnssec %s: %q is not a valid zone name (labels of letters, digits, '-' or '_')\n", cmd, pos[0])
		return "", false
	}
	return zone, true
}
