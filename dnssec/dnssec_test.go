package dnssec

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestKeyFilesRoundTrip(t *testing.T) {
	for alg := range Algorithms {
		dir := t.TempDir()
		k, err := Generate("Example.Test", alg, FlagKSK)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Write(dir); err != nil {
			t.Fatal(err)
		}
		if err := k.Write(dir); err == nil {
			t.Fatal("a second Write overwrote the key")
		}
		fi, err := os.Stat(k.Base + ".private")
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("private file: %v %v, want mode 0600", fi, err)
		}
		if want := filepath.Join(dir, fmt.Sprintf("Kexample.test.+%03d+", alg)); !strings.HasPrefix(k.Base, want) {
			t.Fatalf("base %q, want the prefix %q", k.Base, want)
		}
		keys, err := ReadDir(dir, "example.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].Tag() != k.Tag() || !keys[0].KSK() || keys[0].DNSKEY.PublicKey != k.DNSKEY.PublicKey {
			t.Fatalf("read back %+v, want key %d", keys, k.Tag())
		}
		// The private key read back signs what the DNSKEY verifies.
		s, err := NewSigner("example.test.", keys, Config{})
		if err != nil {
			t.Fatal(err)
		}
		a := mustRR(t, "www.example.test. 300 IN A 192.0.2.1")
		sigs, err := s.Sign([]dns.RR{a}, time.Now())
		if err != nil || len(sigs) != 1 {
			t.Fatalf("sign: %v %v", sigs, err)
		}
		if err := sigs[0].(*dns.RRSIG).Verify(k.DNSKEY, []dns.RR{a}); err != nil {
			t.Fatalf("algorithm %d: the signature does not verify: %v", alg, err)
		}
	}
}

func TestReadDirRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadDir(dir, "example.test"); err == nil || !strings.Contains(err.Error(), "glbctl dnssec keygen") {
		t.Fatalf("no key: %v", err)
	}
	a, _ := Generate("example.test", 13, FlagKSK)
	b, _ := Generate("example.test", 13, FlagKSK)
	if err := a.Write(dir); err != nil {
		t.Fatal(err)
	}
	// b's private key under a's name: refused, not signed with.
	if err := os.WriteFile(a.Base+".private", []byte(b.DNSKEY.PrivateKeyString(b.Signer)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir, "example.test"); err == nil || !strings.Contains(err.Error(), "not the DNSKEY's") {
		t.Fatalf("mismatched private key: %v", err)
	}
}

// TestSignerRoles: a KSK and a ZSK: the KSK signs the DNSKEY RRset only, the ZSK the rest;
// a combined key signs both; signatures are the same within the hour and verify with
// the records in any order; a wildcard RRset is signed with its label count.
func TestSignerRoles(t *testing.T) {
	ksk, _ := Generate("example.test", 13, FlagKSK)
	zsk, _ := Generate("example.test", 13, FlagZSK)
	s, err := NewSigner("example.test", []*Key{ksk, zsk}, Config{Jitter: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 20, 0, 0, time.UTC)
	keys, err := s.Sign(s.DNSKEYs(), now)
	if err != nil || len(keys) != 1 || keys[0].(*dns.RRSIG).KeyTag != ksk.Tag() {
		t.Fatalf("DNSKEY signed by %v (%v), want the KSK alone", keys, err)
	}
	if err := keys[0].(*dns.RRSIG).Verify(ksk.DNSKEY, s.DNSKEYs()); err != nil {
		t.Fatal(err)
	}
	rrset := []dns.RR{mustRR(t, "web.example.test. 30 IN A 192.0.2.2"), mustRR(t, "web.example.test. 30 IN A 192.0.2.1")}
	sigs, _ := s.Sign(rrset, now)
	sig := sigs[0].(*dns.RRSIG)
	if len(sigs) != 1 || sig.KeyTag != zsk.Tag() {
		t.Fatalf("A signed by %v, want the ZSK", sigs)
	}
	if err := sig.Verify(zsk.DNSKEY, []dns.RR{rrset[1], rrset[0]}); err != nil {
		t.Fatalf("the other order: %v", err)
	}
	inc, exp := sig.Inception, sig.Expiration
	if want := uint32(now.Truncate(time.Hour).Add(-Skew).Unix()); inc != want {
		t.Fatalf("inception %d, want %d (an hour before the hour)", inc, want)
	}
	if want := uint32(now.Truncate(time.Hour).Add(DefaultValidity).Unix()); exp != want {
		t.Fatalf("expiration %d, want %d", exp, want)
	}
	again, _ := s.Sign(rrset, now.Add(30*time.Minute))
	if again[0].(*dns.RRSIG).Expiration != exp {
		t.Fatal("two signatures in one hour have different times")
	}
	wild, _ := s.Sign([]dns.RR{mustRR(t, "*.example.test. 30 IN A 192.0.2.3")}, now)
	if l := wild[0].(*dns.RRSIG).Labels; l != 2 {
		t.Fatalf("wildcard signature labels %d, want 2", l)
	}
	if _, err := NewSigner("example.test", []*Key{zsk}, Config{}); err == nil {
		t.Fatal("a zone with no KSK was taken")
	}
	// Two algorithms (a 13 KSK, a 15 ZSK): every RRset is signed with both.
	ed, _ := Generate("example.test", 15, FlagZSK)
	two, _ := NewSigner("example.test", []*Key{ksk, ed}, Config{})
	if sigs, _ := two.Sign(rrset, now); len(sigs) != 2 {
		t.Fatalf("A signed with %d keys, want one of each algorithm", len(sigs))
	}
	if sigs, _ := two.Sign(two.DNSKEYs(), now); len(sigs) != 2 {
		t.Fatalf("DNSKEY signed with %d keys, want one of each algorithm", len(sigs))
	}
	combined, _ := NewSigner("example.test", []*Key{ksk}, Config{})
	if sigs, _ := combined.Sign(rrset, now); len(sigs) != 1 || sigs[0].(*dns.RRSIG).KeyTag != ksk.Tag() {
		t.Fatalf("a combined key signs the A RRset: %v", sigs)
	}
}

func TestDenial(t *testing.T) {
	n := Denial("nope.example.test.", []uint16{dns.TypeNXNAME}, 300)
	if n.NextDomain != "\\000.nope.example.test." {
		t.Fatalf("next %q", n.NextDomain)
	}
	if got := n.String(); !strings.Contains(got, "RRSIG NSEC NXNAME") {
		t.Fatalf("NSEC %q: want the types RRSIG NSEC NXNAME", got)
	}
	// It packs: the escaped zero label is wire format.
	m := new(dns.Msg)
	m.Answer = []dns.RR{n}
	if _, err := m.Pack(); err != nil {
		t.Fatal(err)
	}
	d := Denial("web.example.test.", []uint16{dns.TypeAAAA, dns.TypeA, dns.TypeA}, 60)
	if got := d.TypeBitMap; len(got) != 4 || got[0] != dns.TypeA || got[1] != dns.TypeAAAA || got[2] != dns.TypeRRSIG || got[3] != dns.TypeNSEC {
		t.Fatalf("bitmap %v", got)
	}
}

// TestDSMatchesBIND: when BIND's dnssec-dsfromkey is installed, it computes the same DS
// from the .key file glbdns wrote (the file format and the digest both agree).
func TestDSMatchesBIND(t *testing.T) {
	tool, err := exec.LookPath("dnssec-dsfromkey")
	if err != nil {
		t.Skip("no dnssec-dsfromkey (Debian's bind9-utils)")
	}
	dir := t.TempDir()
	k, _ := Generate("example.test", 13, FlagKSK)
	if err := k.Write(dir); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "-2", k.Base+".key").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ds := k.DS()
	if !strings.Contains(strings.ToUpper(string(out)), strings.ToUpper(ds.Digest)) {
		t.Fatalf("dnssec-dsfromkey: %s\nours: %s", out, ds)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}
