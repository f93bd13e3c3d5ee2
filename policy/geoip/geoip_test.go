package geoip

import (
	"errors"
	"io/fs"
	"math"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
)

// testdata is MaxMind's test databases, committed at the repository root (see its README.md).
const testdata = "../../testdata/geoip/"

var (
	cityDB    = filepath.Join(testdata, "GeoIP2-City-Test.mmdb")
	countryDB = filepath.Join(testdata, "GeoIP2-Country-Test.mmdb")
	asnDB     = filepath.Join(testdata, "GeoLite2-ASN-Test.mmdb")
)

func mustOpen(t testing.TB, city, asn string) *DB {
	t.Helper()
	d, err := Open(city, asn)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", city, asn, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestLookup checks addresses whose records are listed in GeoIP2-City-Test.source.json and
// GeoLite2-ASN-Test.source.json.
func TestLookup(t *testing.T) {
	d := mustOpen(t, cityDB, asnDB)
	tests := []struct {
		name string
		addr string
		want Info
	}{
		{
			name: "GB London, no ASN record",
			addr: "81.2.69.142",
			want: Info{Country: "GB", Continent: "EU", Lat: 51.5142, Lon: -0.0931, HasLocation: true,
				CityNetwork: netip.MustParsePrefix("81.2.69.142/31")},
		},
		{
			name: "US with ASN but no AS organisation",
			addr: "216.160.83.56",
			want: Info{Country: "US", Continent: "NA", Lat: 47.2513, Lon: -122.3149, HasLocation: true, ASN: 209,
				CityNetwork: netip.MustParsePrefix("216.160.83.56/29"), ASNNetwork: netip.MustParsePrefix("216.160.64.0/18")},
		},
		{
			name: "SE, adjacent ASN networks with equal data merged",
			addr: "89.160.20.113",
			want: Info{Country: "SE", Continent: "EU", Lat: 58.4167, Lon: 15.6167, HasLocation: true,
				ASN: 29518, ASOrg: "Bredband2 AB",
				CityNetwork: netip.MustParsePrefix("89.160.20.112/28"), ASNNetwork: netip.MustParsePrefix("89.160.0.0/17")},
		},
		{
			name: "CN",
			addr: "175.16.199.0",
			want: Info{Country: "CN", Continent: "AS", Lat: 43.88, Lon: 125.3228, HasLocation: true,
				CityNetwork: netip.MustParsePrefix("175.16.199.0/24")},
		},
		{
			name: "BT with ASN but no AS organisation",
			addr: "67.43.156.1",
			want: Info{Country: "BT", Continent: "AS", Lat: 27.5, Lon: 90.5, HasLocation: true, ASN: 35908,
				CityNetwork: netip.MustParsePrefix("67.43.156.0/24"), ASNNetwork: netip.MustParsePrefix("67.43.152.0/21")},
		},
		{
			name: "IPv4-mapped IPv6 looked up as IPv4",
			addr: "::ffff:81.2.69.142",
			want: Info{Country: "GB", Continent: "EU", Lat: 51.5142, Lon: -0.0931, HasLocation: true,
				CityNetwork: netip.MustParsePrefix("81.2.69.142/31")},
		},
		{
			name: "IPv6 JP",
			addr: "2001:218::1",
			want: Info{Country: "JP", Continent: "AS", Lat: 35.68536, Lon: 139.75309, HasLocation: true,
				CityNetwork: netip.MustParsePrefix("2001:218::/32")},
		},
		{
			name: "IPv6 DE",
			addr: "2a02:d180::1",
			want: Info{Country: "DE", Continent: "EU", Lat: 51.5, Lon: 10.5, HasLocation: true,
				CityNetwork: netip.MustParsePrefix("2a02:d180::/29")},
		},
		{
			name: "IPv6 ASN only, ASN network more specific than the empty city one",
			addr: "2001:1700::1",
			want: Info{ASN: 6730, ASOrg: "Sunrise Communications AG",
				ASNNetwork: netip.MustParsePrefix("2001:1700::/27")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.Lookup(netip.MustParseAddr(tt.addr))
			// The networks not given in the table hold "no data"; check that they contain
			// the address instead of hard-coding the test tree's shape.
			a := netip.MustParseAddr(tt.addr).Unmap()
			if !tt.want.CityNetwork.IsValid() {
				if !got.CityNetwork.Contains(a) {
					t.Errorf("CityNetwork %v does not contain %v", got.CityNetwork, a)
				}
				tt.want.CityNetwork = got.CityNetwork
			}
			if !tt.want.ASNNetwork.IsValid() {
				if !got.ASNNetwork.Contains(a) {
					t.Errorf("ASNNetwork %v does not contain %v", got.ASNNetwork, a)
				}
				tt.want.ASNNetwork = got.ASNNetwork
			}
			tt.want.Network = tt.want.CityNetwork
			if tt.want.ASNNetwork.Bits() > tt.want.Network.Bits() {
				tt.want.Network = tt.want.ASNNetwork
			}
			if got != tt.want {
				t.Errorf("Lookup(%s)\n got %+v\nwant %+v", tt.addr, got, tt.want)
			}
			if d.Errors() != 0 {
				t.Errorf("Errors() = %d, want 0", d.Errors())
			}
		})
	}
}

// TestLookupAgreesWithGeoIP2 compares our decoder with geoip2-golang's typed structs on
// every test address, so the hand-written decoder cannot drift from the reference.
func TestLookupAgreesWithGeoIP2(t *testing.T) {
	d := mustOpen(t, cityDB, asnDB)
	ref, err := geoip2.Open(cityDB)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, s := range []string{"81.2.69.142", "2.125.160.216", "89.160.20.112", "216.160.83.56",
		"149.101.100.0", "175.16.199.0", "202.196.224.0", "67.43.156.0", "2001:218::1", "2a02:d180::1", "1.1.1.1"} {
		t.Run(s, func(t *testing.T) {
			a := netip.MustParseAddr(s)
			got := d.Lookup(a)
			c, err := ref.City(a)
			if err != nil {
				t.Fatal(err)
			}
			want := c.Country.ISOCode
			if want == "" {
				want = c.RegisteredCountry.ISOCode
			}
			if got.Country != want || got.Continent != c.Continent.Code {
				t.Errorf("got %s/%s, geoip2 says %s/%s", got.Country, got.Continent, want, c.Continent.Code)
			}
			if got.HasLocation != c.Location.HasCoordinates() ||
				(got.HasLocation && (got.Lat != *c.Location.Latitude || got.Lon != *c.Location.Longitude)) {
				t.Errorf("location %v %v,%v; geoip2 says %+v", got.HasLocation, got.Lat, got.Lon, c.Location)
			}
			if c.HasData() && got.CityNetwork != c.Traits.Network {
				t.Errorf("CityNetwork %v, geoip2 says %v", got.CityNetwork, c.Traits.Network)
			}
		})
	}
}

func TestLookupNoData(t *testing.T) {
	d := mustOpen(t, cityDB, asnDB)
	for _, s := range []string{"10.0.0.1", "1.1.1.1", "2001:db8::1"} {
		t.Run(s, func(t *testing.T) {
			a := netip.MustParseAddr(s)
			got := d.Lookup(a)
			// The networks say over which prefix "no data" holds; everything else is zero.
			if !got.CityNetwork.Contains(a) || !got.ASNNetwork.Contains(a) || !got.Network.Contains(a) {
				t.Errorf("networks %v %v %v do not contain %v", got.CityNetwork, got.ASNNetwork, got.Network, a)
			}
			got.Network, got.CityNetwork, got.ASNNetwork = netip.Prefix{}, netip.Prefix{}, netip.Prefix{}
			if got != (Info{}) {
				t.Errorf("Lookup(%s) = %+v, want no data", s, got)
			}
		})
	}
	if got := d.Lookup(netip.Addr{}); got != (Info{}) {
		t.Errorf("Lookup(invalid) = %+v, want zero Info", got)
	}
}

func TestOpenKinds(t *testing.T) {
	a := netip.MustParseAddr("89.160.20.112")
	tests := []struct {
		name      string
		city, asn string
		want      Info // only the data fields are compared
	}{
		{"country only", countryDB, "", Info{Country: "SE", Continent: "EU"}},
		{"geolite city only", filepath.Join(testdata, "GeoLite2-City-Test.mmdb"), "",
			Info{Country: "SE", Continent: "EU", Lat: 58.4167, Lon: 15.6167, HasLocation: true}},
		{"asn only", "", asnDB, Info{ASN: 29518, ASOrg: "Bredband2 AB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustOpen(t, tt.city, tt.asn).Lookup(a)
			if tt.city == "" && got.CityNetwork.IsValid() || tt.asn == "" && got.ASNNetwork.IsValid() {
				t.Errorf("network set for a database not opened: %+v", got)
			}
			got.Network, got.CityNetwork, got.ASNNetwork = netip.Prefix{}, netip.Prefix{}, netip.Prefix{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name      string
		city, asn string
		bad       string // the file the error must name; "" for ErrNoDatabase
		is        error
	}{
		{"no database", "", "", "", ErrNoDatabase},
		{"missing file", filepath.Join(testdata, "nope.mmdb"), "", filepath.Join(testdata, "nope.mmdb"), fs.ErrNotExist},
		{"invalid node count", filepath.Join(testdata, "GeoIP2-City-Test-Invalid-Node-Count.mmdb"), asnDB,
			filepath.Join(testdata, "GeoIP2-City-Test-Invalid-Node-Count.mmdb"), nil},
		{"broken search tree", "", filepath.Join(testdata, "MaxMind-DB-test-broken-search-tree-24.mmdb"),
			filepath.Join(testdata, "MaxMind-DB-test-broken-search-tree-24.mmdb"), nil},
		{"not an mmdb file", filepath.Join(testdata, "README.md"), "", filepath.Join(testdata, "README.md"), nil},
		{"asn db given as city db", asnDB, "", asnDB, nil},
		{"city db given as asn db", "", cityDB, cityDB, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(tt.city, tt.asn)
			if err == nil {
				_ = d.Close()
				t.Fatal("Open succeeded, want error")
			}
			t.Log(err)
			if tt.bad != "" && !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("error %q does not name %s", err, tt.bad)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"London to New York", 51.5074, -0.1278, 40.7128, -74.0060, 5570, 20},
		{"same point", 48.8566, 2.3522, 48.8566, 2.3522, 0, 1e-9},
		{"quarter meridian", 0, 0, 90, 0, math.Pi / 2 * earthRadiusKm, 1e-6},
		{"antipodes", 0, 0, 0, 180, math.Pi * earthRadiusKm, 1e-6},
		{"across the date line", 0, 179.5, 0, -179.5, 111.2, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Distance(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
			if math.Abs(got-tt.want) > tt.tol {
				t.Errorf("Distance = %.3f km, want %.3f ± %g", got, tt.want, tt.tol)
			}
			if back := Distance(tt.lat2, tt.lon2, tt.lat1, tt.lon1); math.Abs(back-got) > 1e-9 {
				t.Errorf("not symmetric: %v vs %v", got, back)
			}
		})
	}
}

var benchAddrs = func() []netip.Addr {
	var as []netip.Addr
	for _, s := range []string{"81.2.69.142", "216.160.83.56", "89.160.20.113", "175.16.199.0",
		"67.43.156.1", "2001:218::1", "2a02:d180::1", "10.0.0.1"} {
		as = append(as, netip.MustParseAddr(s))
	}
	return as
}()

var sink Info

// BenchmarkLookup is the query hot path: City and ASN databases, a mix of addresses.
func BenchmarkLookup(b *testing.B) {
	d := mustOpen(b, cityDB, asnDB)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = d.Lookup(benchAddrs[i%len(benchAddrs)])
		i++
	}
}

// BenchmarkLookupTypedGeoIP2 is the alternative not taken: geoip2-golang's typed City and
// ASN structs on the same addresses.
func BenchmarkLookupTypedGeoIP2(b *testing.B) {
	city, err := geoip2.Open(cityDB)
	if err != nil {
		b.Fatal(err)
	}
	defer city.Close()
	asn, err := geoip2.Open(asnDB)
	if err != nil {
		b.Fatal(err)
	}
	defer asn.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := benchAddrs[i%len(benchAddrs)]
		i++
		c, _ := city.City(a)
		n, _ := asn.ASN(a)
		sink = Info{Country: c.Country.ISOCode, Continent: c.Continent.Code, ASN: uint32(n.AutonomousSystemNumber),
			ASOrg: n.AutonomousSystemOrganization, CityNetwork: c.Traits.Network, ASNNetwork: n.Network}
	}
}
