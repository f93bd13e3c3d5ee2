// Package dnssec holds a zone's DNSSEC keys and makes its signatures and denials: keys in
// the BIND key-file format (K<zone>+<alg>+<tag>.key and .private, as dnssec-keygen and
// ldns-keygen write them), the DS for the parent, RRSIGs over RRsets in canonical form
// (RFC 4034 Section 6), and compact denial of existence (RFC 9824). It knows nothing of
// sockets or of the policy: glbctl writes keys with it, the policy loads them, and the
// DNS server signs with a zone's Signer.
//
// Algorithms: ECDSAP256SHA256 (13, the default) and ED25519 (15): small signatures, fast
// to make online, and the two RFC 8624 recommends for signing.
package dnssec

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Key flags (RFC 4034 Section 2.1.1): a zone key, with the secure entry point bit for a
// key-signing key (or a combined signing key).
const (
	FlagZSK = 256
	FlagKSK = 257
)

// Key is a zone's DNSKEY with its private half.
type Key struct {
	DNSKEY *dns.DNSKEY
	Signer crypto.Signer
	// Base is the file name the key was read from or written to, without .key or
	// .private ("" for a key never on disk).
	Base string
}

// Tag is the key tag (RFC 4034 Appendix B).
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// KSK reports whether the key has the secure entry point flag: it signs the DNSKEY
// RRset (and CDS, CDNSKEY); the parent's DS names it.
func (k *Key) KSK() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// Algorithms are the signing algorithms taken, by number.
var Algorithms = map[uint8]string{dns.ECDSAP256SHA256: "ECDSAP256SHA256", dns.ED25519: "ED25519"}

// ParseAlgorithm takes an algorithm by number ("13") or mnemonic ("ECDSAP256SHA256",
// "ED25519", any case).
func ParseAlgorithm(s string) (uint8, error) {
	for n, name := range Algorithms {
		if strings.EqualFold(s, name) || s == fmt.Sprint(n) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("algorithm %q: want ECDSAP256SHA256 (13) or ED25519 (15)", s)
}

// Generate makes a new key for zone: flags FlagKSK for a key-signing (or combined) key,
// FlagZSK for a zone-signing key.
func Generate(zone string, alg uint8, flags uint16) (*Key, error) {
	if _, ok := Algorithms[alg]; !ok {
		return nil, fmt.Errorf("algorithm %d: want 13 (ECDSAP256SHA256) or 15 (ED25519)", alg)
	}
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: alg}
	priv, err := k.Generate(256) // P-256; Ed25519 ignores it
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("generate key: not a signer")
	}
	return &Key{DNSKEY: k, Signer: signer}, nil
}

// FileBase is the key's file name without extension, as BIND names it:
// K<zone>+<alg, 3 digits>+<tag, 5 digits>.
func (k *Key) FileBase() string {
	return fmt.Sprintf("K%s+%03d+%05d", k.DNSKEY.Hdr.Name, k.DNSKEY.Algorithm, k.Tag())
}

// Write writes the key into dir as FileBase().key (the DNSKEY record) and .private
// (mode 0600), and sets Base. It refuses to overwrite a key.
func (k *Key) Write(dir string) error {
	base := filepath.Join(dir, k.FileBase())
	role := "zone-signing"
	if k.KSK() {
		role = "key-signing"
	}
	pub := fmt.Sprintf("; This is a %s key, keyid %d, for %s\n%s\n", role, k.Tag(), k.DNSKEY.Hdr.Name, k.DNSKEY.String())
	priv := k.DNSKEY.PrivateKeyString(k.Signer)
	for _, f := range []struct {
		name string
		data string
		mode os.FileMode
	}{{base + ".private", priv, 0o600}, {base + ".key", pub, 0o644}} {
		fh, err := os.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("write key: %w", err)
		}
		_, err = fh.WriteString(f.data)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if f.name == base+".key" {
				os.Remove(base + ".private") // no half key left to read
			}
			return fmt.Errorf("write key: %w", err)
		}
	}
	k.Base = base
	return nil
}

// ReadKey reads the key of base (a path without .key/.private): the DNSKEY record of
// base.key and the private key of base.private, which must match it.
func ReadKey(base string) (*Key, error) {
	pub, err := os.ReadFile(base + ".key")
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	rr, err := dns.NewRR(stripComments(string(pub)))
	if err != nil {
		return nil, fmt.Errorf("read key %s.key: %w", base, err)
	}
	k, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("read key %s.key: a %s record, not a DNSKEY", base, dns.TypeToString[rr.Header().Rrtype])
	}
	if _, ok := Algorithms[k.Algorithm]; !ok {
		return nil, fmt.Errorf("read key %s.key: algorithm %d; glbdns signs with 13 (ECDSAP256SHA256) or 15 (ED25519)", base, k.Algorithm)
	}
	f, err := os.Open(base + ".private")
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	priv, err := k.ReadPrivateKey(f, base+".private")
	if err != nil {
		return nil, fmt.Errorf("read key %s.private: %w", base, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("read key %s.private: not a signing key", base)
	}
	if !samePublic(k, signer) {
		return nil, fmt.Errorf("read key %s: the private key is not the DNSKEY's", base)
	}
	return &Key{DNSKEY: k, Signer: signer, Base: base}, nil
}

// ReadDir reads every key of zone in dir (K<zone>+*.key with its .private), sorted by
// file name. A zone with no key there is an error.
func ReadDir(dir, zone string) ([]*Key, error) {
	zone = dns.CanonicalName(zone)
	names, err := filepath.Glob(filepath.Join(globEscape(dir), globEscape("K"+zone+"+")+"*.key"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var keys []*Key
	for _, n := range names {
		k, err := ReadKey(strings.TrimSuffix(n, ".key"))
		if err != nil {
			return nil, err
		}
		if k.DNSKEY.Hdr.Name != zone {
			return nil, fmt.Errorf("read key %s: the DNSKEY is for %s, not %s", n, k.DNSKEY.Hdr.Name, zone)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key of %s in %s (K%s+*.key; glbctl dnssec keygen makes one)", zone, dir, zone)
	}
	return keys, nil
}

// DS is the parent's DS record for the key, with a SHA-256 digest (RFC 4509).
func (k *Key) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// samePublic reports whether signer's public key is the DNSKEY's: a signature it makes
// verifies with the DNSKEY.
func samePublic(k *dns.DNSKEY, signer crypto.Signer) bool {
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: k.Hdr.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET},
		TypeCovered: dns.TypeDNSKEY, Algorithm: k.Algorithm, Labels: uint8(dns.CountLabel(k.Hdr.Name)),
		OrigTtl: k.Hdr.Ttl, Expiration: 2000000000, Inception: 1000000000, KeyTag: k.KeyTag(), SignerName: k.Hdr.Name}
	return sig.Sign(signer, []dns.RR{k}) == nil && sig.Verify(k, []dns.RR{k}) == nil
}

// stripComments drops the ";" comment lines of a .key file, which dns.NewRR would read
// as an empty record.
func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, ";") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// globEscape escapes Glob's metacharacters in a literal part of a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
