package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// geoReloadPolicy: one member per pool; a geo service sends GB to eu, North America to us
// and every other client, or one the database does not know, to other.
func geoReloadPolicy(db string) string {
	return fmt.Sprintf(`zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
geoip {
  database = %q
}
pool "eu" {
  member "e" { address = "192.0.2.1" }
}
pool "us" {
  member "u" { address = "192.0.2.2" }
}
pool "other" {
  member "o" { address = "192.0.2.3" }
}
service "geo.glb.test" {
  policy  = "geo"
  pools   = ["eu", "us", "other"]
  ttl     = 10
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu"]
    }
    rule {
      continents = ["NA"]
      pools      = ["us"]
    }
    default_pools = ["other"]
  }
}
`, db)
}

// replaceByRename puts data at path as a new file renamed over the old one, as a database
// updater does: the watcher never sees a half-written file.
func replaceByRename(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestGeoIPReload: glbdns serves a geo service over a copy of the GeoIP2 City test
// database. Renamed over by the GeoLite2 City test database (which does not know
// 214.78.120.0, a US network of the first), the reload counts in
// glbdns_geoip_reloads_total{result="success"} and the new database answers: that client
// goes from the us pool to the default. Renamed over by garbage, the reload is refused:
// {result="failure"} counts it, an error names the file, and the GeoLite2 database keeps
// answering every client as before. The watcher polls every 10s (geoip.DefaultInterval),
// so each step waits for a poll.
func TestGeoIPReload(t *testing.T) {
	db := filepath.Join(t.TempDir(), "city.mmdb")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../testdata/geoip", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	replaceByRename(t, db, read("GeoIP2-City-Test.mmdb"))
	g, dnsAddr, _ := startGLBDNS(t, map[string]string{"p.hcl": geoReloadPolicy(db)}, "-admin", "127.0.0.1:0")
	admin := adminURL(t, g)

	answer := func(client string) string {
		r := query(t, "udp", dnsAddr, "geo.glb.test", dns.TypeA, withECS(client+"/32"))
		return strings.Join(answerAddrs(r), ",")
	}
	// check queries each client a few times and fails unless every answer is its want.
	check := func(when string, want map[string]string) {
		t.Helper()
		for range 5 {
			for client, w := range want {
				if got := answer(client); got != w {
					t.Fatalf("%s: client %s answered %q, want %q", when, client, got, w)
				}
			}
		}
	}
	reloads := func() (ok, failed float64) {
		m := scrape(t, admin)
		return m[`glbdns_geoip_reloads_total{result="success"}`], m[`glbdns_geoip_reloads_total{result="failure"}`]
	}
	const gb, us, cn = "81.2.69.142", "214.78.120.0", "175.16.199.0"
	check("GeoIP2 City", map[string]string{gb: "192.0.2.1", us: "192.0.2.2", cn: "192.0.2.3"})
	if ok, failed := reloads(); ok != 0 || failed != 0 {
		t.Fatalf("geoip reloads %v/%v at start, want 0/0", ok, failed)
	}

	replaceByRename(t, db, read("GeoLite2-City-Test.mmdb"))
	took := eventually(t, 25*time.Second, "a successful reload counted", func() bool { ok, _ := reloads(); return ok == 1 })
	t.Logf("MEASURE new database renamed in -> reload counted: %v (poll every 10s)", took.Round(time.Millisecond))
	if _, failed := reloads(); failed != 0 {
		t.Errorf("a valid database counted %v failed reloads", failed)
	}
	after := map[string]string{gb: "192.0.2.1", us: "192.0.2.3", cn: "192.0.2.3"}
	check("GeoLite2 City", after)

	replaceByRename(t, db, []byte("not a MaxMind database\n"))
	took = eventually(t, 25*time.Second, "a failed reload counted", func() bool { _, failed := reloads(); return failed == 1 })
	t.Logf("MEASURE garbage renamed in -> refusal counted: %v", took.Round(time.Millisecond))
	if ok, _ := reloads(); ok != 1 {
		t.Errorf("geoip reloads success %v after garbage, want still 1", ok)
	}
	g.waitLog(t, "geoip reload refused", 5*time.Second)
	if !strings.Contains(g.Logs(), db) {
		t.Errorf("the refusal does not name %s:\n%s", db, g.Logs())
	}
	check("garbage refused", after)
}
