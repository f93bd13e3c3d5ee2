package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/dnssec"
)

// glbctl runs glbctl with args and returns its exit status, stdout and stderr.
func glbctl(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// keygenOK runs glbctl dnssec keygen and returns the base name it printed.
func keygenOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := glbctl(append([]string{"dnssec", "keygen"}, args...)...)
	if code != 0 {
		t.Fatalf("keygen %v: exit %d: %s", args, code, errOut)
	}
	base := strings.TrimSuffix(out, "\n")
	if strings.Contains(base, "\n") || !strings.HasPrefix(base, "K") {
		t.Fatalf("keygen %v printed %q, want one base name", args, out)
	}
	return base
}

// TestDNSSECKeygenDS makes a key of each algorithm (by mnemonic and by number) and each
// role with glbctl dnssec keygen, reads its files back, and checks that glbctl dnssec ds
// prints the DS of exactly the key-signing ones: one line each, the DS of the DNSKEY in
// the .key file.
func TestDNSSECKeygenDS(t *testing.T) {
	roles := []struct {
		flag  string // "" for the default
		flags uint16
	}{{"", dnssec.FlagKSK}, {"-csk", dnssec.FlagKSK}, {"-ksk", dnssec.FlagKSK}, {"-zsk", dnssec.FlagZSK}}
	algs := []struct {
		arg string
		n   uint8
	}{{"", dns.ECDSAP256SHA256}, {"ECDSAP256SHA256", dns.ECDSAP256SHA256}, {"ed25519", dns.ED25519}, {"13", dns.ECDSAP256SHA256}, {"15", dns.ED25519}}
	for _, a := range algs {
		for _, r := range roles {
			t.Run(a.arg+r.flag, func(t *testing.T) {
				dir := t.TempDir()
				// Flags after ZONE, and the zone in upper case without its final dot.
				args := []string{"Example.TEST", "-dir", dir}
				if a.arg != "" {
					args = append(args, "-algorithm", a.arg)
				}
				if r.flag != "" {
					args = append(args, r.flag)
				}
				base := keygenOK(t, args...)
				k, err := dnssec.ReadKey(filepath.Join(dir, base))
				if err != nil {
					t.Fatal(err)
				}
				if k.DNSKEY.Hdr.Name != "example.test." || k.DNSKEY.Algorithm != a.n || k.DNSKEY.Flags != r.flags || base != k.FileBase() {
					t.Fatalf("key %s: %v, want example.test. algorithm %d flags %d", base, k.DNSKEY, a.n, r.flags)
				}
				fi, err := os.Stat(filepath.Join(dir, base+".private"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("private file: %v %v, want mode 0600", fi, err)
				}
				code, out, errOut := glbctl("dnssec", "ds", "-dir", dir, "example.test")
				if r.flags == dnssec.FlagZSK {
					if code != 1 || out != "" || !strings.Contains(errOut, "no key-signing key of example.test.") {
						t.Fatalf("ds of a ZSK alone: exit %d, stdout %q, stderr %q; want 1, nothing, a reason", code, out, errOut)
					}
					return
				}
				if code != 0 {
					t.Fatalf("ds: exit %d: %s", code, errOut)
				}
				checkDS(t, out, k.DNSKEY)
			})
		}
	}
}

// checkDS checks that out is one DS line, in dnssec-dsfromkey's form, of key.
func checkDS(t *testing.T, out string, key *dns.DNSKEY) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("ds printed %q, want one line", out)
	}
	rr, err := dns.NewRR(lines[0])
	if err != nil {
		t.Fatalf("ds line %q: %v", lines[0], err)
	}
	ds, ok := rr.(*dns.DS)
	want := key.ToDS(dns.SHA256)
	if !ok || ds.Hdr.Name != key.Hdr.Name || ds.KeyTag != key.KeyTag() || ds.Algorithm != key.Algorithm ||
		ds.DigestType != dns.SHA256 || !strings.EqualFold(ds.Digest, want.Digest) {
		t.Fatalf("ds line %q, want the SHA-256 DS %s", lines[0], want)
	}
	// Pasted at the parent as it is: no TTL (the parent sets its own), upper-case hex.
	f := strings.Fields(lines[0])
	if len(f) != 7 || f[1] != "IN" || f[2] != "DS" || f[6] != strings.ToUpper(f[6]) {
		t.Fatalf("ds line %q: want dnssec-dsfromkey's form, NAME IN DS TAG ALG 2 HEX", lines[0])
	}
}

// TestDNSSECDSPair: a KSK and a ZSK of a zone in one folder, with a key of another zone
// beside them: ds prints the KSK's DS alone.
func TestDNSSECDSPair(t *testing.T) {
	dir := t.TempDir()
	ksk := keygenOK(t, "example.test", "-dir", dir, "-ksk")
	keygenOK(t, "example.test", "-dir", dir, "-zsk")
	keygenOK(t, "other.test", "-dir", dir, "-ksk")
	k, err := dnssec.ReadKey(filepath.Join(dir, ksk))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := glbctl("dnssec", "ds", "example.test.", "-dir", dir)
	if code != 0 {
		t.Fatalf("ds: exit %d: %s", code, errOut)
	}
	checkDS(t, out, k.DNSKEY)
}

// TestDNSSECDSNoKey: ds in a folder with no key of the zone, or with its ZSKs alone,
// exits 1 with a reason on stderr and prints nothing on stdout.
func TestDNSSECDSNoKey(t *testing.T) {
	empty := t.TempDir()
	zsks := t.TempDir()
	keygenOK(t, "example.test", "-dir", zsks, "-zsk")
	keygenOK(t, "example.test", "-dir", zsks, "-zsk", "-algorithm", "ED25519")
	keygenOK(t, "other.test", "-dir", zsks, "-ksk")
	for dir, reason := range map[string]string{empty: "no key of example.test.", zsks: "no key-signing key of example.test."} {
		code, out, errOut := glbctl("dnssec", "ds", "example.test", "-dir", dir)
		if code != 1 || out != "" || !strings.Contains(errOut, reason) {
			t.Fatalf("ds in %s: exit %d, stdout %q, stderr %q; want 1, nothing, %q", dir, code, out, errOut, reason)
		}
	}
}

// TestDNSSECRefuses: bad arguments exit 2 with a reason and write nothing; a folder that
// does not exist exits 1; the help shows both commands.
func TestDNSSECRefuses(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args   []string
		reason string
	}{
		{[]string{"dnssec"}, "want keygen or ds"},
		{[]string{"dnssec", "sign"}, "want keygen or ds"},
		{[]string{"dnssec", "keygen", "-dir", dir}, "want exactly one ZONE"},
		{[]string{"dnssec", "keygen", "a.test", "b.test", "-dir", dir}, "want exactly one ZONE"},
		{[]string{"dnssec", "keygen", "", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", "../evil.test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", "a/b.test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", "a..test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", "with space.test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", strings.Repeat("a", 64) + ".test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-algorithm", "RSASHA256"}, `algorithm "RSASHA256"`},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-algorithm", "8"}, `algorithm "8"`},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-algorithm", "14"}, `algorithm "14"`},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-ksk", "-zsk"}, "exclude each other"},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-csk", "-zsk"}, "exclude each other"},
		{[]string{"dnssec", "keygen", "example.test", "-dir", dir, "-bogus"}, "-bogus"},
		{[]string{"dnssec", "ds", "a/b.test", "-dir", dir}, "not a valid zone name"},
		{[]string{"dnssec", "ds", "-dir", dir}, "want exactly one ZONE"},
	}
	for _, c := range cases {
		code, out, errOut := glbctl(c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.reason) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errOut, c.reason)
		}
	}
	if code, out, _ := glbctl("help"); code != 0 || !strings.Contains(out, "glbctl dnssec keygen ZONE") || !strings.Contains(out, "glbctl dnssec ds ZONE") {
		t.Errorf("help: exit %d, no glbctl dnssec in:\n%s", code, out)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("refused commands wrote %v", names)
	}
	code, _, errOut := glbctl("dnssec", "keygen", "example.test", "-dir", filepath.Join(dir, "missing"))
	if code != 1 || !strings.Contains(errOut, "missing") {
		t.Fatalf("keygen into a missing folder: exit %d: %s", code, errOut)
	}
}

// bindTool runs one of BIND's tools (bind9-utils), which the test needs.
func bindTool(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

// dsFromZone is what dnssec-dsfromkey -2 prints for the KSKs (by default it leaves the
// others out) among every .key file of the zone in dir, read as one zone file.
func dsFromZone(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "Kexample.test.+*.key"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no key files in %s: %v", dir, err)
	}
	zone := "$TTL 3600\n" // dnssec-dsfromkey -f refuses records without one
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		zone += string(b)
	}
	zf := filepath.Join(t.TempDir(), "keys.db")
	if err := os.WriteFile(zf, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return sortedLines(bindTool(t, dir, "dnssec-dsfromkey", "-2", "-f", zf, "example.test"))
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(l)
	return l
}

// TestDNSSECBIND checks glbctl against BIND's own tools, both ways: keys dnssec-keygen
// makes (a ZSK and a KSK of ECDSAP256SHA256, a KSK of ED25519) are read by glbctl dnssec
// ds, which prints for the two KSKs the DS lines dnssec-dsfromkey -2 prints, byte for
// byte; keys glbctl makes give the same DS lines in dnssec-dsfromkey -2, and
// dnssec-signzone signs a zone with a KSK and ZSK pair of each algorithm from glbctl.
// It needs Debian's bind9-utils and is skipped without it.
func TestDNSSECBIND(t *testing.T) {
	for _, tool := range []string{"dnssec-keygen", "dnssec-dsfromkey", "dnssec-signzone"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian's bind9-utils): %v", tool, err)
		}
	}
	t.Run("BIND's keys", func(t *testing.T) {
		dir := t.TempDir()
		zsk := strings.TrimSpace(bindTool(t, dir, "dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-K", dir, "example.test"))
		// A folder with BIND's ZSK alone: read (private file and all), and no DS.
		code, out, errOut := glbctl("dnssec", "ds", "example.test", "-dir", dir)
		if code != 1 || out != "" || !strings.Contains(errOut, "no key-signing key") {
			t.Fatalf("ds with BIND's ZSK %s alone: exit %d, stdout %q, stderr %q", zsk, code, out, errOut)
		}
		var want []string
		for _, alg := range []string{"ECDSAP256SHA256", "ED25519"} {
			ksk := strings.TrimSpace(bindTool(t, dir, "dnssec-keygen", "-q", "-a", alg, "-f", "KSK", "-K", dir, "example.test"))
			want = append(want, strings.TrimSuffix(bindTool(t, dir, "dnssec-dsfromkey", "-2", ksk+".key"), "\n"))
		}
		slices.Sort(want)
		code, out, errOut = glbctl("dnssec", "ds", "example.test", "-dir", dir)
		if code != 0 {
			t.Fatalf("ds of BIND's keys: exit %d: %s", code, errOut)
		}
		if got := sortedLines(out); !slices.Equal(got, want) {
			t.Fatalf("glbctl dnssec ds:\n%s\ndnssec-dsfromkey -2 of the KSKs:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if fromZone := dsFromZone(t, dir); !slices.Equal(fromZone, want) {
			t.Fatalf("dnssec-dsfromkey -2 -f of every key:\n%s\nwant the KSKs':\n%s", strings.Join(fromZone, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("glbctl's keys", func(t *testing.T) {
		dir := t.TempDir()
		var want []string
		for _, alg := range []string{"ECDSAP256SHA256", "ED25519"} {
			for _, role := range []string{"-csk", "-ksk", "-zsk"} {
				base := keygenOK(t, "example.test", "-dir", dir, "-algorithm", alg, role)
				ds := strings.TrimSuffix(bindTool(t, dir, "dnssec-dsfromkey", "-2", base+".key"), "\n")
				if role != "-zsk" {
					want = append(want, ds)
				}
			}
		}
		slices.Sort(want)
		code, out, errOut := glbctl("dnssec", "ds", "example.test", "-dir", dir)
		if code != 0 {
			t.Fatalf("ds: exit %d: %s", code, errOut)
		}
		if got := sortedLines(out); !slices.Equal(got, want) || len(got) != 4 {
			t.Fatalf("glbctl dnssec ds:\n%s\ndnssec-dsfromkey -2 of the KSKs:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if fromZone := dsFromZone(t, dir); !slices.Equal(fromZone, want) {
			t.Fatalf("dnssec-dsfromkey -2 -f of every key:\n%s\nwant:\n%s", strings.Join(fromZone, "\n"), strings.Join(want, "\n"))
		}
	})
	// The private files too: BIND signs with them, and its verifier (which
	// dnssec-signzone runs on its output) accepts the signatures.
	for _, alg := range []string{"ECDSAP256SHA256", "ED25519"} {
		t.Run("dnssec-signzone "+alg, func(t *testing.T) {
			dir := t.TempDir()
			zone := "$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.53\nwww IN A 192.0.2.1\n"
			tags := map[string]uint16{}
			for _, role := range []string{"-ksk", "-zsk"} {
				k, err := dnssec.ReadKey(filepath.Join(dir, keygenOK(t, "example.test", "-dir", dir, "-algorithm", alg, role)))
				if err != nil {
					t.Fatal(err)
				}
				tags[role] = k.Tag()
				zone += k.DNSKEY.String() + "\n"
			}
			if err := os.WriteFile(filepath.Join(dir, "example.test.db"), []byte(zone), 0o644); err != nil {
				t.Fatal(err)
			}
			// dnssec-signzone verifies the zone it signed and fails if it does not verify.
			bindTool(t, dir, "dnssec-signzone", "-q", "-o", "example.test", "-K", dir, "-f", "signed.db", "example.test.db")
			signed, err := os.ReadFile(filepath.Join(dir, "signed.db"))
			if err != nil {
				t.Fatal(err)
			}
			// The DNSKEY set is signed with the KSK, the others with the ZSK.
			bySet := map[uint16][]uint16{}
			zp := dns.NewZoneParser(bytes.NewReader(signed), "example.test.", "signed.db")
			for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
				if sig, ok := rr.(*dns.RRSIG); ok {
					bySet[sig.TypeCovered] = append(bySet[sig.TypeCovered], sig.KeyTag)
				}
			}
			if err := zp.Err(); err != nil {
				t.Fatal(err)
			}
			for _, typ := range []uint16{dns.TypeDNSKEY, dns.TypeSOA, dns.TypeNS, dns.TypeA} {
				want := tags["-zsk"]
				if typ == dns.TypeDNSKEY {
					want = tags["-ksk"]
				}
				if !slices.Contains(bySet[typ], want) {
					t.Errorf("%s RRset signed by %v, want key %d among them", dns.TypeToString[typ], bySet[typ], want)
				}
			}
		})
	}
}
