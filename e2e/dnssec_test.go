package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/dnssec"
)

// signedZonePolicy is a signed zone (keys in KEYS) with a static name, a wildcard, a CNAME
// into a weighted service, a hashed and a geo service (GeoIP2 test database at CITY), then
// a round-robin service of two answers, a failover and a nearest one.
const signedZonePolicy = `geoip {
  database = "CITY"
}
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  dnssec {
    keys = "KEYS"
  }
  record "ns1" {
    type   = "A"
    values = ["127.0.0.1"]
  }
  record "static" {
    type   = "A"
    values = ["192.0.2.10"]
  }
  record "static" {
    type   = "TXT"
    values = ["hello"]
  }
  record "alias" {
    type   = "CNAME"
    values = ["web.glb.test."]
  }
  record "*.wild" {
    type   = "A"
    values = ["192.0.2.77"]
  }
}
pool "p" {
  location = [40.7, -74.0]
  member "a" {
    address = "192.0.2.1"
  }
  member "b" {
    address = "192.0.2.2"
  }
}
pool "eu" {
  location = [50.1, 8.7]
  member "e1" {
    address = "192.0.2.31"
  }
}
service "web.glb.test" {
  policy = "weighted"
  pools  = ["p"]
}
service "hashed.glb.test" {
  policy = "client_subnet_hash"
  pools  = ["p"]
}
service "geo.glb.test" {
  policy = "geo"
  pools  = ["eu", "p"]
  geo {
    rule {
      continents = ["EU"]
      pools      = ["eu"]
    }
    default_pools = ["p"]
  }
}
service "rr.glb.test" {
  policy  = "round_robin"
  pools   = ["p"]
  answers = 2
}
service "failover.glb.test" {
  policy = "failover"
  pools  = ["eu", "p"]
}
service "nearest.glb.test" {
  policy = "nearest"
  pools  = ["eu", "p"]
}
`

// unbound is a validating resolver on loopback with a stub zone glb.test at a glbdns and
// the zone's DS as its trust anchor.
type unbound struct {
	addr string
	dir  string
}

func startUnbound(t *testing.T, stub string, ds *dns.DS) *unbound {
	t.Helper()
	bin := needBinary(t, "/usr/sbin/unbound", "unbound")
	dir := t.TempDir()
	port := freeUDPPort(t)
	host, stubPort, _ := net.SplitHostPort(stub)
	conf := fmt.Sprintf(`server:
  interface: 127.0.0.1@%d
  port: %d
  do-ip6: no
  chroot: ""
  username: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: %q
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor: %q
  qname-minimisation: no
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  cache-max-ttl: 0
  cache-max-negative-ttl: 0
stub-zone:
  name: "glb.test"
  stub-addr: %s@%s
`, port, port, dir, filepath.Join(dir, "unbound.pid"), filepath.Join(dir, "unbound.log"),
		strings.ReplaceAll(ds.String(), "\t", " "), host, stubPort)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", path) // its log goes to logfile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u := &unbound{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	eventually(t, 10*time.Second, "unbound answers", func() bool {
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("version.server.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		_, _, err := c.Exchange(m, u.addr)
		return err == nil
	})
	return u
}

// resolve asks the resolver for name with DO=1, retrying a few times over a lost packet.
func (u *unbound) resolve(t *testing.T, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	c := &dns.Client{Timeout: 3 * time.Second}
	var err error
	for range 3 {
		var r *dns.Msg
		if r, _, err = c.Exchange(m, u.addr); err == nil {
			return r
		}
	}
	t.Fatalf("resolve %s: %v", name, err)
	return nil
}

func (u *unbound) log() string {
	b, _ := os.ReadFile(filepath.Join(u.dir, "unbound.log"))
	return string(b)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// writeSignedPolicy writes the signed policy and a combined signing key for glb.test into a
// temp folder; it returns the folder and the DS for the trust anchor.
func writeSignedPolicy(t *testing.T) (string, *dns.DS) {
	t.Helper()
	city, err := filepath.Abs("../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := dnssec.Generate("glb.test", 13, dnssec.FlagKSK)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Write(keys); err != nil {
		t.Fatal(err)
	}
	pol := strings.NewReplacer("KEYS", keys, "CITY", city).Replace(signedZonePolicy)
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "p.hcl"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "policy"), k.DS()
}

// TestDNSSECValidates: unbound, a validating resolver with the zone's DS as its trust
// anchor, in front of glbdns, validates (AD=1) a static name, a weighted, a hashed, a geo,
// a round-robin (two members), a failover and a nearest answer, ANY, a CNAME into a service, a name that does not exist (compact denial: NOERROR
// with an NSEC of NXNAME), a type that does not, and a wildcard's answer and missing type;
// after a member is drained, the new
// answer validates too. BIND's delv validates the same names. A signature corrupted on the
// way (a proxy flips a byte of every RRSIG) makes unbound answer SERVFAIL.
func TestDNSSECValidates(t *testing.T) {
	dir, ds := writeSignedPolicy(t)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, addr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", dir,
		"-admin", "127.0.0.1:0", "-admin-token-file", tokenFile, "-rrl-exempt", "127.0.0.0/8")
	u := startUnbound(t, addr, ds)

	type check struct {
		name  string
		qtype uint16
		rcode int
		data  bool // an answer, else NODATA
	}
	checks := []check{
		{"static.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"web.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"hashed.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"geo.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"rr.glb.test.", dns.TypeA, dns.RcodeSuccess, true}, // two members in one RRset
		{"failover.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"nearest.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"static.glb.test.", dns.TypeANY, dns.RcodeSuccess, true},
		{"alias.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"nope.glb.test.", dns.TypeA, dns.RcodeSuccess, false}, // compact denial: NOERROR
		{"static.glb.test.", dns.TypeAAAA, dns.RcodeSuccess, false},
		{"glb.test.", dns.TypeDNSKEY, dns.RcodeSuccess, true},
		{"any.wild.glb.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"any.wild.glb.test.", dns.TypeTXT, dns.RcodeSuccess, false},
	}
	validate := func(when string) {
		for _, c := range checks {
			r := u.resolve(t, c.name, c.qtype)
			if r.Rcode != c.rcode || !r.AuthenticatedData || (len(r.Answer) > 0) != c.data {
				t.Errorf("%s: %s %s: rcode %s AD %v, %d answers; want %s AD=1\n%v\nunbound log:\n%s", when, c.name, dns.TypeToString[c.qtype],
					dns.RcodeToString[r.Rcode], r.AuthenticatedData, len(r.Answer), dns.RcodeToString[c.rcode], r, u.log())
			}
		}
	}
	validate("all up")

	// A member drained: the weighted answer changes and still validates.
	admin := adminURL(t, g)
	if code, body := adminCall(t, "POST", admin+"/v1/pools/p/members/a/drain", adminToken, map[string]string{"duration": "10m", "reason": "dnssec test"}); code != 201 {
		t.Fatalf("drain: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "the drained member leaves the answers", func() bool {
		return answerSet(t, addr, "web.glb.test") == "192.0.2.2"
	})
	validate("a drained")
	if r := u.resolve(t, "web.glb.test.", dns.TypeA); len(r.Answer) == 0 || !strings.Contains(r.Answer[0].String(), "192.0.2.2") {
		t.Errorf("after the drain, unbound answers %v", r.Answer)
	}

	// delv, BIND's validating lookup, with the same trust anchor.
	if delv, err := exec.LookPath("delv"); err == nil {
		anchor := filepath.Join(t.TempDir(), "anchor.conf")
		line := fmt.Sprintf("trust-anchors { %s static-ds %d %d %d %q; };\n", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
		if err := os.WriteFile(anchor, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(addr)
		for _, c := range checks {
			out, _ := runTool(t, nil, delv, "@"+host, "-p", port, "-a", anchor, "+root=glb.test", c.name, dns.TypeToString[c.qtype])
			if !strings.Contains(out, "fully validated") {
				t.Errorf("delv %s %s:\n%s", c.name, dns.TypeToString[c.qtype], out)
			}
		}
	} else {
		t.Log("no delv (Debian's bind9-dnsutils): skipped")
	}

	// Corrupted signatures: unbound refuses them.
	proxy := corruptingProxy(t, addr)
	bad := startUnbound(t, proxy, ds)
	if r := bad.resolve(t, "static.glb.test.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("a corrupted signature: %s AD %v, want SERVFAIL\n%v", dns.RcodeToString[r.Rcode], r.AuthenticatedData, r)
	}
}

// corruptingProxy relays UDP DNS to upstream and flips a byte of the signature of every
// RRSIG in the replies; it returns its address.
func corruptingProxy(t *testing.T, upstream string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			go func() {
				up, err := net.Dial("udp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				_ = up.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := up.Write(req); err != nil {
					return
				}
				rb := make([]byte, 65535)
				m, err := up.Read(rb)
				if err != nil {
					return
				}
				msg := new(dns.Msg)
				if msg.Unpack(rb[:m]) != nil {
					return
				}
				for _, sec := range [][]dns.RR{msg.Answer, msg.Ns} {
					for _, rr := range sec {
						if sig, ok := rr.(*dns.RRSIG); ok {
							raw, err := base64.StdEncoding.DecodeString(sig.Signature)
							if err == nil && len(raw) > 0 {
								raw[len(raw)/2] ^= 0x01
								sig.Signature = base64.StdEncoding.EncodeToString(raw)
							}
						}
					}
				}
				out, err := msg.Pack()
				if err == nil {
					_, _ = pc.WriteTo(out, from)
				}
			}()
		}
	}()
	return pc.LocalAddr().String()
}

// TestDNSSECZSKRollover: a ZSK rollover by pre-publication, as docs/dnssec.md plans it,
// with unbound validating at each step: a KSK and a ZSK; a second ZSK added and glbdns
// reloaded (three DNSKEYs, every RRset signed by both ZSKs); the old ZSK removed and
// reloaded (two DNSKEYs, signed by the new one). The parent's DS (the KSK's) never changes.
func TestDNSSECZSKRollover(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	gen := func(flags uint16) *dnssec.Key {
		k, err := dnssec.Generate("glb.test", 13, flags)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Write(keys); err != nil {
			t.Fatal(err)
		}
		return k
	}
	ksk, oldZSK := gen(dnssec.FlagKSK), gen(dnssec.FlagZSK)
	pol := strings.NewReplacer("KEYS", keys, "CITY", "/nonexistent.mmdb").Replace(signedZonePolicy)
	pol = pol[strings.Index(pol, "zone "):] // no geoip block
	pol = pol[:strings.Index(pol, "service \"geo.glb.test\"")]
	// A DNSKEY TTL of 1 s: the wait between the rollover's steps (docs/dnssec.md, step 3).
	pol = strings.Replace(pol, "    keys = ", "    dnskey_ttl = 1\n    keys = ", 1)
	policyDir := writePolicy(t, map[string]string{"p.hcl": pol})
	g, addr := start(t, "glbdns", "addr", "-listen", "127.0.0.1:0", "-policy", policyDir, "-rrl-exempt", "127.0.0.0/8", "-no-watch")
	u := startUnbound(t, addr, ksk.DS())

	step := func(what string, zsks ...*dnssec.Key) {
		t.Helper()
		r := query(t, "udp", addr, "glb.test.", dns.TypeDNSKEY, func(m *dns.Msg) { m.SetEdns0(1232, true) })
		if n := countType(r.Answer, dns.TypeDNSKEY); n != 1+len(zsks) {
			t.Fatalf("%s: %d DNSKEYs, want %d", what, n, 1+len(zsks))
		}
		r = query(t, "udp", addr, "static.glb.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) })
		var tags []uint16
		for _, rr := range r.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok {
				tags = append(tags, sig.KeyTag)
			}
		}
		if len(tags) != len(zsks) {
			t.Fatalf("%s: signed by %v, want the ZSKs %v", what, tags, zsks)
		}
		for _, k := range zsks {
			if !slices.Contains(tags, k.Tag()) {
				t.Fatalf("%s: signed by %v, not by ZSK %d", what, tags, k.Tag())
			}
		}
		for _, name := range []string{"static.glb.test.", "web.glb.test.", "nope.glb.test."} {
			if r := u.resolve(t, name, dns.TypeA); !r.AuthenticatedData || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: %s not validated: %v\n%s", what, name, r, u.log())
			}
		}
	}
	step("before", oldZSK)
	newZSK := gen(dnssec.FlagZSK)
	g.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the new ZSK is published", func() bool {
		r := query(t, "udp", addr, "glb.test.", dns.TypeDNSKEY)
		return countType(r.Answer, dns.TypeDNSKEY) == 3
	})
	step("both ZSKs", oldZSK, newZSK)
	time.Sleep(1500 * time.Millisecond) // the DNSKEY TTL: no cache holds the set without the new key
	step("both ZSKs, a DNSKEY TTL later", oldZSK, newZSK)
	for _, ext := range []string{".key", ".private"} {
		if err := os.Remove(oldZSK.Base + ext); err != nil {
			t.Fatal(err)
		}
	}
	g.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the old ZSK is withdrawn", func() bool {
		r := query(t, "udp", addr, "glb.test.", dns.TypeDNSKEY)
		return countType(r.Answer, dns.TypeDNSKEY) == 2
	})
	step("after", newZSK)
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}
