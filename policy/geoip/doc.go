// Package geoip answers "where is this client, and on which network" for geo steering, from
// MaxMind GeoIP2 / GeoLite2 databases (MMDB format) read with
// github.com/oschwald/maxminddb-golang/v2, the reader underneath geoip2-golang.
//
// # What is read
//
// A [DB] holds one City or Country database (GeoIP2 or GeoLite2, Enterprise and DB-IP City/
// Country work too) and, optionally, one ASN database (GeoLite2-ASN, GeoIP2-ISP). A lookup
// decodes only the five fields steering uses: country.iso_code (falling back to
// registered_country.iso_code when the record has no country, as for some anycast and
// satellite ranges), continent.code, location.latitude/longitude, and
// autonomous_system_number/_organization. Records are decoded by a hand-written cursor
// decoder that reads those keys, skips everything else (names in eight languages,
// subdivisions, postal codes, ...) and stops once it has what it needs. A City+ASN lookup
// takes about a third of the time of geoip2-golang's typed City and ASN structs and
// allocates nothing, against four allocations and 1.2 kB (BenchmarkLookup,
// BenchmarkLookupTypedGeoIP2).
//
// Every [Info] also carries the networks that decided it: CityNetwork and ASNNetwork are the
// prefixes in which each database's answer is constant, and Network the more specific of the
// two. A DNS answer that depended on geo data sets the EDNS Client Subnet scope prefix
// length to the length of the network it actually used (RFC 7871 Section 7.2.1), so that a
// resolver's cache does not serve the answer to clients the database would place elsewhere.
// For an address without data the networks are still filled in: "no data" holds for the
// whole empty prefix, which is a valid scope too.
//
// # Files are read into memory, not mmapped
//
// [Open] reads each file into a byte slice and opens it with maxminddb.OpenBytes instead of
// letting the library mmap it. A reloaded database replaces the old one by an atomic pointer
// swap while queries may still be running on the old one; with mmap the old mapping could only
// be unmapped once no lookup can touch it any more (unmapping earlier faults the process), and
// knowing that needs reference counting on the hot path. With a byte slice the old DB is
// simply garbage collected when the last lookup drops it. It also means that a database file
// rewritten in place (which mmap would expose half-written to lookups) cannot hurt a loaded
// DB. The cost is the file size in heap (about 70 MB for GeoIP2-City, twice that briefly
// during a reload), which a DNS server can afford.
//
// Every opened database is checked in full with maxminddb's Reader.Verify (search tree,
// data section, metadata) before it is used, because a corrupt file must be refused at load
// time rather than fail on some queries later. Verifying a production City database takes
// in the order of a second, paid at startup and in the watcher goroutine, never on queries.
//
// # Reload
//
// A [Watcher] polls the files' size, modification time and identity (inode) every
// Interval (10s by default) and, when either changed, opens both files again as a new [DB]
// and publishes it with an atomic.Pointer store; [Watcher.Current] is a single atomic load.
// Polling is used rather than inotify because GeoIP files are replaced in ways inotify
// reports poorly or not at all (geoipupdate's rename over the old file, Kubernetes' symlink
// swaps of mounted volumes, network file systems), and the databases change at most twice a
// week, so seconds of delay do not matter. A new file that is missing, truncated or corrupt
// is refused: the error is logged, the failed counter rises, and the old DB keeps serving.
// A refused file version is not retried until the file changes again, so one bad upload
// logs and counts once.
package geoip
