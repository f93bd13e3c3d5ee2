package geoip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// ErrNoDatabase is returned by Open and NewWatcher when both paths are empty.
var ErrNoDatabase = errors.New("no geoip database given")

// Info is what one lookup found. Data fields are zero when the databases have no data for
// the address (or no database of that kind was opened).
type Info struct {
	// Country is the ISO 3166-1 alpha-2 code, "GB", of the country the address is located
	// in, or, for records without one, of the country it is registered to.
	Country string
	// Continent is MaxMind's two-letter continent code: AF, AN, AS, EU, NA, OC or SA.
	Continent string
	// ASN is the autonomous system number announcing the address (0: unknown).
	ASN uint32
	// ASOrg is the organisation that holds ASN, when the database names it.
	ASOrg string
	// Lat and Lon are the approximate location in degrees (WGS 84), valid when HasLocation.
	// Country databases have no location.
	Lat, Lon    float64
	HasLocation bool
	// Network is the prefix within which every field above is the same: the more specific
	// of CityNetwork and ASNNetwork (both contain the address, so one contains the other).
	// A policy that used fields of both databases sets the ECS scope prefix length to its
	// Bits (RFC 7871 Section 7.2.1).
	Network netip.Prefix
	// CityNetwork is the prefix over which the City/Country database's answer (Country,
	// Continent, location) is the same, including "no data"; a policy that used only those
	// fields scopes its answer to it. Invalid when no such database is open or the lookup
	// failed.
	CityNetwork netip.Prefix
	// ASNNetwork is the same for the ASN database (ASN, ASOrg).
	ASNNetwork netip.Prefix
}

// DB is an immutable set of databases: an optional City or Country database and an optional
// ASN database, both held in memory (see the package documentation for why not mmap).
// It is safe for concurrent use; lookups take no lock.
type DB struct {
	city, asn         *mmdb
	cityPath, asnPath string
	// errs counts lookups that failed on a corrupt record; Verify makes that unexpected.
	errs atomic.Uint64
}

// Open reads and verifies the databases at cityOrCountryPath (a GeoIP2/GeoLite2 City or
// Country database) and asnPath (a GeoLite2-ASN or GeoIP2-ISP database). Either path may be
// empty, not both. A missing, unreadable, corrupt or wrong-type file is an error that names
// the file.
func Open(cityOrCountryPath, asnPath string) (*DB, error) {
	if cityOrCountryPath == "" && asnPath == "" {
		return nil, ErrNoDatabase
	}
	d := &DB{cityPath: cityOrCountryPath, asnPath: asnPath}
	var err error
	if cityOrCountryPath != "" {
		if d.city, err = openFile(cityOrCountryPath, isCityType, "a City or Country"); err != nil {
			return nil, err
		}
	}
	if asnPath != "" {
		if d.asn, err = openFile(asnPath, isASNType, "an ASN or ISP"); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// mmdb is one open database: the maxminddb reader walks the search tree, and data decodes
// records from the data section. Records are decoded through data.CursorAt rather than
// Result.Decode because Decode takes the record as an interface value, which moves it to the
// heap: one allocation per database per lookup that a direct method call avoids.
type mmdb struct {
	r    *maxminddb.Reader
	data *mmdbdata.Decoder
}

// metadataMarker starts an MMDB file's metadata section (MaxMind DB format spec, "Database
// Metadata").
var metadataMarker = []byte("\xAB\xCD\xEFMaxMind.com")

// dataDecoder returns a decoder over the data section of the verified database buf. The
// layout is the spec's: search tree (node_count * record_size / 4 bytes), a 16-byte zero
// separator, the data section, then the metadata marker. Offsets from Result.Offset are
// relative to the start of the data section. The string cache (safe for concurrent use)
// makes repeated strings such as country codes cost no allocation.
func dataDecoder(buf []byte, md maxminddb.Metadata) (*mmdbdata.Decoder, error) {
	const separator = 16
	end := bytes.LastIndex(buf, metadataMarker)
	start := md.NodeCount*(md.RecordSize/4) + separator
	if end < 0 || start > uint(end) {
		return nil, errors.New("invalid data section bounds")
	}
	return mmdbdata.NewDecoder(buf[start:end], 0, mmdbdata.WithStringCache()), nil
}

// isCityType reports whether an MMDB database_type has country and continent records:
// GeoIP2-City, GeoLite2-Country, GeoIP2-Enterprise, DBIP-City-Lite, ...
func isCityType(t string) bool {
	return strings.Contains(t, "City") || strings.Contains(t, "Country") || strings.Contains(t, "Enterprise")
}

// isASNType reports whether an MMDB database_type has autonomous_system_number records:
// GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite, ...
func isASNType(t string) bool {
	return strings.Contains(t, "ASN") || strings.Contains(t, "ISP")
}

// openFile reads path into memory, opens it and verifies all of it. Verification walks the
// whole search tree and data section once, so that corruption is found here and not by
// some query later. The maxminddb library rejects bad data with errors, but a panic from a
// file it did not foresee must not take the server (or the watcher) down either, hence the
// recover.
func openFile(path string, typeOK func(string) bool, want string) (m *mmdb, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("open geoip database %q: panic while reading: %v", path, p)
		}
	}()
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open geoip database: %w", err) // *PathError names the file
	}
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("open geoip database %q: %w", path, err)
	}
	if err := r.Verify(); err != nil {
		return nil, fmt.Errorf("open geoip database %q: corrupt: %w", path, err)
	}
	if t := r.Metadata.DatabaseType; !typeOK(t) {
		return nil, fmt.Errorf("open geoip database %q: database type %q is not %s database", path, t, want)
	}
	data, err := dataDecoder(buf, r.Metadata)
	if err != nil {
		return nil, fmt.Errorf("open geoip database %q: %w", path, err)
	}
	return &mmdb{r: r, data: data}, nil
}

// Lookup returns what the databases know about a. IPv4-mapped IPv6 addresses are looked up
// as IPv4 and zones are ignored. A lookup that fails on a corrupt record returns no data and
// no network for that database and is counted in Errors.
func (d *DB) Lookup(a netip.Addr) Info {
	return d.LookupIn(a, true, true)
}

// LookupIn is Lookup in the City/Country database only when city is set and in the ASN
// database only when asn is set: a query pays only for the data its service reads (an
// mmdb lookup is a few hundred nanoseconds).
func (d *DB) LookupIn(a netip.Addr, city, asn bool) Info {
	var info Info
	if !a.IsValid() {
		return info
	}
	a = a.Unmap().WithZone("")
	if d.city != nil && city {
		res := d.city.r.Lookup(a)
		var rec cityRecord
		c, found, err := d.city.record(res)
		if found {
			err = rec.decode(c)
		}
		if err != nil {
			d.errs.Add(1)
		} else {
			info.CityNetwork = network(res, a)
			info.Country = rec.country
			if info.Country == "" {
				info.Country = rec.registeredCountry
			}
			info.Continent = rec.continent
			if rec.hasLat && rec.hasLon {
				info.Lat, info.Lon, info.HasLocation = rec.lat, rec.lon, true
			}
		}
	}
	if d.asn != nil && asn {
		res := d.asn.r.Lookup(a)
		var rec asnRecord
		c, found, err := d.asn.record(res)
		if found {
			err = rec.decode(c)
		}
		if err != nil {
			d.errs.Add(1)
		} else {
			info.ASNNetwork = network(res, a)
			info.ASN, info.ASOrg = rec.number, rec.org
		}
	}
	info.Network = info.CityNetwork
	if info.ASNNetwork.Bits() > info.Network.Bits() {
		info.Network = info.ASNNetwork
	}
	return info
}

// record returns a cursor at the record res found, whether there is one, and the lookup's
// error.
func (m *mmdb) record(res maxminddb.Result) (c mmdbdata.Cursor, found bool, err error) {
	if err := res.Err(); err != nil {
		return c, false, err
	}
	if !res.Found() {
		return c, false, nil
	}
	return m.data.CursorAt(uint(res.Offset())), true, nil
}

// network returns the prefix a lookup of a stopped at. For an IPv4 address in a database
// whose tree ends before the IPv4 subtree (no IPv4 data at all) maxminddb reports an IPv6
// prefix; all of IPv4 then shares the "no data" answer.
func network(res maxminddb.Result, a netip.Addr) netip.Prefix {
	p := res.Prefix()
	if !p.IsValid() || !p.Contains(a) {
		p, _ = a.Prefix(0)
	}
	return p
}

// Errors returns the number of lookups that failed on a corrupt record since Open.
func (d *DB) Errors() uint64 { return d.errs.Load() }

// Close releases the databases. Lookups after Close find nothing. Because the data is in
// memory, a DB that is merely dropped (as the Watcher does with replaced ones) needs no
// Close: the garbage collector frees it once no lookup uses it. Close must not be called
// while lookups on d may still run.
func (d *DB) Close() error {
	var errs []error
	if d.city != nil {
		errs = append(errs, d.city.r.Close())
	}
	if d.asn != nil {
		errs = append(errs, d.asn.r.Close())
	}
	return errors.Join(errs...)
}

// describe returns log attributes for the databases in d: paths, types and build times.
func (d *DB) describe() []any {
	var attrs []any
	add := func(prefix, path string, m *mmdb) {
		if m == nil {
			return
		}
		r := m.r
		attrs = append(attrs, prefix+"_path", path, prefix+"_type", r.Metadata.DatabaseType,
			prefix+"_build", r.Metadata.BuildTime().UTC().Format(time.RFC3339))
	}
	add("city", d.cityPath, d.city)
	add("asn", d.asnPath, d.asn)
	return attrs
}
