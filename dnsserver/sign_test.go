package dnsserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/dnssec"
	"github.com/glbdns/glbdns/policy"
)

// signedPolicy is a zone with a dnssec block over a KSK and a ZSK in a temp folder: a
// static name, a CNAME into a weighted service, a service with two address families, a
// delegation with a DS and one without. It returns the snapshot and the keys.
func signedPolicy(t testing.TB, alg uint8) (*policy.Snapshot, []*dnssec.Key) {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	ksk, _ := dnssec.Generate("sig.test", alg, dnssec.FlagKSK)
	zsk, _ := dnssec.Generate("sig.test", alg, dnssec.FlagZSK)
	for _, k := range []*dnssec.Key{ksk, zsk} {
		if err := k.Write(keys); err != nil {
			t.Fatal(err)
		}
	}
	const hcl = `zone "sig.test" {
  nameservers = ["ns1.sig.test"]
  dnssec {
    keys = "keys"
  }
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
  record "static" {
    type   = "A"
    values = ["192.0.2.10"]
  }
  record "alias" {
    type   = "CNAME"
    values = ["web.sig.test."]
  }
  record "*.wild" {
    type   = "A"
    values = ["192.0.2.77"]
  }
  record "child" {
    type   = "NS"
    values = ["ns.child.sig.test."]
  }
  record "ns.child" {
    type   = "A"
    values = ["192.0.2.54"]
  }
  record "secure" {
    type   = "NS"
    values = ["ns.other.test."]
  }
  record "secure" {
    type   = "DS"
    values = ["12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"]
  }
}
pool "p" {
  member "a" {
    address = "192.0.2.1"
    weight  = 2
  }
  member "b" {
    address = "2001:db8::1"
  }
}
service "web.sig.test" {
  policy = "weighted"
  pools  = ["p"]
}
pool "q" {
  member "c" {
    address = "192.0.2.3"
  }
  member "d" {
    address = "192.0.2.4"
  }
}
service "two.sig.test" {
  policy  = "round_robin"
  pools   = ["q"]
  answers = 2
}
`
	path := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, diags := policy.LoadPath(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return snap, []*dnssec.Key{ksk, zsk}
}

func startSigned(t *testing.T) (*Server, []*dnssec.Key) {
	t.Helper()
	snap, keys := signedPolicy(t, 13)
	s := New(Config{Addr: "127.0.0.1:0", Logger: testLogger(), UDPWorkers: 2})
	s.SetSnapshot(snap)
	return serve(t, s), keys
}

func doQuery(name string, qtype uint16) *dns.Msg {
	m := newQuery(name, qtype)
	m.SetEdns0(1232, true)
	return m
}

// verifyAll checks that every RRset of rrs other than RRSIGs has an RRSIG after it that
// verifies with one of keys, and returns the types signed.
func verifyAll(t *testing.T, rrs []dns.RR, keys []*dnssec.Key) []string {
	t.Helper()
	var signed []string
	sets := map[string][]dns.RR{}
	var order []string
	for _, rr := range rrs {
		h := rr.Header()
		k := strings.ToLower(h.Name) + " " + dns.TypeToString[h.Rrtype]
		if sig, ok := rr.(*dns.RRSIG); ok {
			k = strings.ToLower(h.Name) + " " + dns.TypeToString[sig.TypeCovered] + " sig"
		}
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	for _, k := range order {
		if strings.HasSuffix(k, " sig") {
			continue
		}
		sigs := sets[k+" sig"]
		if len(sigs) == 0 {
			t.Errorf("%s: no RRSIG", k)
			continue
		}
		ok := false
		for _, s := range sigs {
			for _, key := range keys {
				if s.(*dns.RRSIG).KeyTag == key.Tag() && s.(*dns.RRSIG).Verify(key.DNSKEY, sets[k]) == nil && s.(*dns.RRSIG).ValidityPeriod(time.Now()) {
					ok = true
				}
			}
		}
		if !ok {
			t.Errorf("%s: no RRSIG verifies", k)
		}
		signed = append(signed, k)
	}
	return signed
}

func TestSignedAnswers(t *testing.T) {
	s, keys := startSigned(t)
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  []string // the RRsets signed, answer then authority
	}{
		{"static.sig.test.", dns.TypeA, []string{"static.sig.test. A"}},
		{"web.sig.test.", dns.TypeA, []string{"web.sig.test. A"}},
		{"WEB.sig.test.", dns.TypeAAAA, []string{"web.sig.test. AAAA"}},
		{"alias.sig.test.", dns.TypeA, []string{"alias.sig.test. CNAME", "web.sig.test. A"}},
		{"sig.test.", dns.TypeDNSKEY, []string{"sig.test. DNSKEY"}},
		{"sig.test.", dns.TypeCDS, []string{"sig.test. CDS"}},
		{"Any.Wild.sig.test.", dns.TypeA, []string{"any.wild.sig.test. A"}},
		{"two.sig.test.", dns.TypeA, []string{"two.sig.test. A"}},
		{"two.sig.test.", dns.TypeA, []string{"two.sig.test. A"}}, // the other order
	} {
		r := exchange(t, s, "udp", doQuery(tc.name, tc.qtype))
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			t.Fatalf("%s %s: %v", tc.name, dns.TypeToString[tc.qtype], r)
		}
		got := verifyAll(t, append(r.Answer, r.Ns...), keys)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s %s: signed %v, want %v", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	// The DNSKEY RRset is signed by the KSK alone.
	r := exchange(t, s, "udp", doQuery("sig.test.", dns.TypeDNSKEY))
	for _, rr := range r.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.KeyTag != keys[0].Tag() {
			t.Errorf("DNSKEY signed by %d, want the KSK %d", sig.KeyTag, keys[0].Tag())
		}
	}
	// DO=0: unsigned, from the fast path as before; the keys are still answered.
	r = exchange(t, s, "udp", newQuery("static.sig.test.", dns.TypeA))
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == dns.TypeRRSIG {
			t.Fatal("an RRSIG in a DO=0 answer")
		}
	}
	if r = exchange(t, s, "udp", newQuery("sig.test.", dns.TypeDNSKEY)); len(r.Answer) != 2 {
		t.Fatalf("DNSKEY with DO=0: %v", r)
	}
}

func TestSignedDenial(t *testing.T) {
	s, keys := startSigned(t)
	// A name that does not exist: NOERROR, the SOA and an NSEC at the name with NXNAME.
	r := exchange(t, s, "udp", doQuery("nope.sig.test.", dns.TypeA))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("compact NXDOMAIN: %v", r)
	}
	nsec := findNSEC(r.Ns)
	if nsec == nil || !strings.EqualFold(nsec.Hdr.Name, "nope.sig.test.") || !hasType(nsec, dns.TypeNXNAME) || hasType(nsec, dns.TypeA) {
		t.Fatalf("NSEC %v", nsec)
	}
	if got := verifyAll(t, r.Ns, keys); len(got) != 2 {
		t.Fatalf("authority signed %v, want the SOA and the NSEC", got)
	}
	// A type absent at a static name: its other types, not the one asked.
	r = exchange(t, s, "udp", doQuery("static.sig.test.", dns.TypeTXT))
	nsec = findNSEC(r.Ns)
	if r.Rcode != dns.RcodeSuccess || nsec == nil || !hasType(nsec, dns.TypeA) || hasType(nsec, dns.TypeTXT) || hasType(nsec, dns.TypeNXNAME) {
		t.Fatalf("NODATA: %v", r)
	}
	verifyAll(t, r.Ns, keys)
	// At the apex: DNSKEY, CDS and CDNSKEY are in the bitmap.
	r = exchange(t, s, "udp", doQuery("sig.test.", dns.TypeTXT))
	if nsec = findNSEC(r.Ns); nsec == nil || !hasType(nsec, dns.TypeDNSKEY) || !hasType(nsec, dns.TypeSOA) || !hasType(nsec, dns.TypeNS) {
		t.Fatalf("apex NODATA: %v", r)
	}
	// A name a wildcard covers, signed as that name (labels: its own count), and a type
	// missing there denied with the wildcard's types.
	r = exchange(t, s, "udp", doQuery("x.wild.sig.test.", dns.TypeA))
	for _, rr := range r.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.Labels != 4 {
			t.Fatalf("wildcard answer signed with labels %d, want 4 (the name asked)", sig.Labels)
		}
	}
	r = exchange(t, s, "udp", doQuery("x.wild.sig.test.", dns.TypeTXT))
	if nsec = findNSEC(r.Ns); r.Rcode != dns.RcodeSuccess || nsec == nil || !hasType(nsec, dns.TypeA) || hasType(nsec, dns.TypeNXNAME) {
		t.Fatalf("NODATA under a wildcard: %v", r)
	}
	verifyAll(t, r.Ns, keys)
	// A referral to an unsigned child: its NS (unsigned) and the NSEC proving no DS.
	r = exchange(t, s, "udp", doQuery("www.child.sig.test.", dns.TypeA))
	if r.Authoritative || findNSEC(r.Ns) == nil || hasType(findNSEC(r.Ns), dns.TypeDS) {
		t.Fatalf("insecure referral: %v", r)
	}
	got := verifyAll(t, nonNS(r.Ns), keys)
	if len(got) != 1 || got[0] != "child.sig.test. NSEC" {
		t.Fatalf("insecure referral signed %v", got)
	}
	for _, rr := range r.Ns {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeNS {
			t.Fatal("the child's NS set is signed")
		}
	}
	// A referral to a signed child: the DS, signed.
	r = exchange(t, s, "udp", doQuery("www.secure.sig.test.", dns.TypeA))
	if got := verifyAll(t, nonNS(r.Ns), keys); len(got) != 1 || got[0] != "secure.sig.test. DS" {
		t.Fatalf("secure referral signed %v: %v", got, r)
	}
}

func findNSEC(rrs []dns.RR) *dns.NSEC {
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NSEC); ok {
			return n
		}
	}
	return nil
}

func hasType(n *dns.NSEC, t uint16) bool {
	for _, x := range n.TypeBitMap {
		if x == t {
			return true
		}
	}
	return false
}

// nonNS is rrs without the NS records and their signatures (a referral's).
func nonNS(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS {
			continue
		}
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeNS {
			continue
		}
		out = append(out, rr)
	}
	return out
}

// BenchmarkSignedStatic and BenchmarkSignedWeighted measure a DO=1 answer of a signed zone
// (the general path) from a warm signature cache, per algorithm; the Cold ones with no
// cache, a signature made for every reply.
func BenchmarkSignedStatic(b *testing.B) { benchSigned(b, "static.sig.test.", 0) }

func BenchmarkSignedWeighted(b *testing.B) { benchSigned(b, "web.sig.test.", 0) }

func BenchmarkSignedStaticCold(b *testing.B) { benchSigned(b, "static.sig.test.", -1) }

// BenchmarkFastPathSignedStatic and BenchmarkFastPathSignedWeighted are DO=1 answers of
// a signed zone on the fast path, their RRSIGs appended from a warm signature cache.
func BenchmarkFastPathSignedStatic(b *testing.B) { benchFastSigned(b, "static.sig.test.") }

func BenchmarkFastPathSignedWeighted(b *testing.B) { benchFastSigned(b, "web.sig.test.") }

// BenchmarkFastPathSignedTwo is a round-robin answer of two members, their order turning
// with every answer: one RRset to the cache, whatever the order.
func BenchmarkFastPathSignedTwo(b *testing.B) { benchFastSigned(b, "two.sig.test.") }

func benchFastSigned(b *testing.B, name string) {
	for _, alg := range []uint8{13, 15} {
		b.Run(dnssec.Algorithms[alg], func(b *testing.B) {
			snap, _ := signedPolicy(b, alg)
			s := New(Config{Logger: testLogger()})
			s.SetSnapshot(snap)
			benchFastOn(b, s, doQuery(name, dns.TypeA), "198.51.100.7:5353", dns.RcodeSuccess)
		})
	}
}

func benchSigned(b *testing.B, name string, cache int) {
	for _, alg := range []uint8{13, 15} {
		b.Run(dnssec.Algorithms[alg], func(b *testing.B) {
			snap, _ := signedPolicy(b, alg)
			s := New(Config{Logger: testLogger(), SignatureCache: cache})
			s.SetSnapshot(snap)
			benchGeneral(b, s, doQuery(name, dns.TypeA))
		})
	}
}

// TestPresign: the one-record answers of a single-answer service are signed ahead, for
// this hour and the next, so that answering them signs nothing.
func TestPresign(t *testing.T) {
	s, keys := startSigned(t)
	c := s.SignatureCache()
	deadline := time.Now().Add(10 * time.Second)
	for c.Len() < 4 { // web.sig.test's two members, two windows
		if time.Now().After(deadline) {
			t.Fatalf("%d RRsets presigned after 10 s, want 4", c.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	misses := c.Misses.Load()
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := exchange(t, s, "udp", doQuery("Web.Sig.Test.", qt))
		if got := verifyAll(t, r.Answer, keys); len(got) != 1 {
			t.Fatalf("%s: signed %v", dns.TypeToString[qt], got)
		}
	}
	if got := c.Misses.Load() - misses; got != 0 {
		t.Fatalf("answering the presigned service signed %d RRsets, want 0", got)
	}
	// The next window's signatures are there too: an answer an hour on is a hit.
	sg := s.state.Load().snap.Signers["sig.test."]
	before := c.Hits.Load()
	rr := memberRR(s.state.Load().snap.Services[0], s.state.Load().snap.Services[0].Pools[0].Members[0])
	if _, err := c.Sign(sg, []dns.RR{rr}, time.Now().Add(time.Hour)); err != nil || c.Hits.Load() != before+1 {
		t.Fatalf("the next hour's signature was not presigned (%v)", err)
	}
}
