package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy/geoip"
)

// cityDB is the real MaxMind GeoIP2 City test database committed in testdata/geoip.
func cityDB(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// regionsPolicy: pools eu (two members), us and ap, each checked over HTTP on its own port;
// a geo service sends GB to eu first, North America to us first, Asia to ap first.
func regionsPolicy(db string, eu, us, ap []*backend) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
geoip {
  database = %q
}
`, db)
	pool := func(name string, bs []*backend) {
		fmt.Fprintf(&sb, "pool %q {\n  check \"http\" {\n    path     = \"/healthz\"\n    interval = \"1s\"\n    timeout  = \"500ms\"\n    rise     = 2\n    fall     = 2\n  }\n", name)
		for i, b := range bs {
			fmt.Fprintf(&sb, "  member \"%s%d\" {\n    address = %q\n    check \"http\" {\n      port = %s\n    }\n  }\n", name, i, b.ip(), b.port())
		}
		sb.WriteString("}\n")
	}
	pool("eu", eu)
	pool("us", us)
	pool("ap", ap)
	sb.WriteString(`service "app.glb.test" {
  policy  = "geo"
  pools   = ["eu", "us", "ap"]
  answers = 2
  ttl     = 10
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu", "us", "ap"]
    }
    rule {
      continents = ["NA"]
      pools      = ["us", "eu", "ap"]
    }
    rule {
      continents = ["AS"]
      pools      = ["ap", "us", "eu"]
    }
    default_pools = ["us", "eu", "ap"]
  }
}
`)
	return sb.String()
}

// TestThreeRegions: a GB client gets eu; with every eu backend stopped it gets the next
// region of its order (us); when they start again it returns to eu. A US client gets us, a
// CN client ap. Every reply's ECS scope is the length of the GeoIP network that decided it.
func TestThreeRegions(t *testing.T) {
	eu := []*backend{newBackend(t, "127.0.0.41"), newBackend(t, "127.0.0.42")}
	us := []*backend{newBackend(t, "127.0.0.43")}
	ap := []*backend{newBackend(t, "127.0.0.44")}
	db := cityDB(t)
	pol := regionsPolicy(db, eu, us, ap)
	_, hurl := startHealthd(t, "hd-regions", map[string]string{"p.hcl": pol})
	_, dnsAddr, _ := startGLBDNS(t, map[string]string{"p.hcl": pol}, "-health", hurl)

	geo, err := geoip.Open(db, "")
	if err != nil {
		t.Fatal(err)
	}
	// ask returns the sorted answer and checks the ECS scope against the GeoIP network.
	ask := func(client string) string {
		t.Helper()
		r := query(t, "udp", dnsAddr, "app.glb.test", dns.TypeA, withECS(client+"/32"))
		want := geo.Lookup(netip.MustParseAddr(client)).CityNetwork.Bits()
		if got := ecsScope(r); got != want {
			t.Fatalf("client %s: ECS scope %d, want the GeoIP network length %d", client, got, want)
		}
		a := answerAddrs(r)
		sort.Strings(a)
		return strings.Join(a, ",")
	}
	const gb, usClient, cn = "81.2.69.142", "216.160.83.56", "175.16.199.0"

	eventually(t, 10*time.Second, "GB client answered by eu", func() bool { return ask(gb) == ips(eu...) })
	if got := ask(usClient); got != ips(us...) {
		t.Fatalf("US client got %s, want us %s", got, ips(us...))
	}
	if got := ask(cn); got != ips(ap...) {
		t.Fatalf("CN client got %s, want ap %s", got, ips(ap...))
	}

	for _, b := range eu {
		b.stop()
	}
	stopped := time.Now()
	eventually(t, 10*time.Second, "GB client drained to us", func() bool { return ask(gb) == ips(us...) })
	t.Logf("MEASURE eu down -> GB client answered by us: %v", time.Since(stopped).Round(time.Millisecond))

	for _, b := range eu {
		b.restart()
	}
	restarted := time.Now()
	eventually(t, 10*time.Second, "GB client back on eu", func() bool { return ask(gb) == ips(eu...) })
	t.Logf("MEASURE eu back -> GB client answered by eu again: %v", time.Since(restarted).Round(time.Millisecond))

	// A client without ECS is located by its source address (127.0.0.1: not in the
	// database): the default order, and no ECS option in the reply.
	r := query(t, "udp", dnsAddr, "app.glb.test", dns.TypeA)
	if s := ecsScope(r); s != -1 {
		t.Fatalf("reply without ECS in the query carries ECS scope %d", s)
	}
	if a := answerAddrs(r); len(a) != 1 || a[0] != us[0].ip() {
		t.Fatalf("default order should answer us, got %v", a)
	}
}

// TestCorruptGeoIPRefused: a policy naming a corrupt GeoIP database is refused at start
// (exit status 3) with an error that names the file; on reload, the old database and
// policy keep serving.
func TestCorruptGeoIPRefused(t *testing.T) {
	bad, err := filepath.Abs("../testdata/geoip/GeoIP2-City-Test-Invalid-Node-Count.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	pol := func(db string) string {
		return fmt.Sprintf(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
geoip {
  database = %q
}
pool "eu" {
  member "a" {
    address = "192.0.2.1"
  }
}
service "app.glb.test" {
  policy = "geo"
  pools  = ["eu"]
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu"]
    }
  }
}
`, db)
	}
	dir := writePolicy(t, map[string]string{"p.hcl": pol(bad)})
	out, err := execBin(t, "glbdns", "-listen", "127.0.0.1:0", "-policy", dir, "-no-watch")
	ee, ok := err.(interface{ ExitCode() int })
	if !ok || ee.ExitCode() != 3 || !strings.Contains(out, "GeoIP2-City-Test-Invalid-Node-Count.mmdb") {
		t.Fatalf("exit %v, want status 3 and the file named:\n%s", err, out)
	}

	// Start on a good database, then point the policy at the corrupt one and reload.
	p, addr, pdir := startGLBDNS(t, map[string]string{"p.hcl": pol(cityDB(t))}, "-no-watch")
	if err := os.WriteFile(filepath.Join(pdir, "p.hcl"), []byte(pol(bad)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog(t, "reload refused", 5*time.Second)
	r := query(t, "udp", addr, "app.glb.test", dns.TypeA, withECS("81.2.69.142/32"))
	if a := answerAddrs(r); len(a) != 1 || a[0] != "192.0.2.1" || ecsScope(r) != 31 {
		t.Fatalf("after a refused reload: %v scope %d", a, ecsScope(r))
	}
}
