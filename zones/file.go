package zones

import (
	"fmt"
	"io"

	"github.com/miekg/dns"
)

// ImportFile reads an RFC 1035 master file into the zone with miekg's ZoneParser.
// $ORIGIN starts as the zone origin and records without a TTL (and no $TTL) get
// defaultTTL. $INCLUDE is refused: a zone file must not be able to read, and leak in
// error messages, other files of the host.
//
// Apex data in the file: an SOA replaces the zone's SOA (the file is then the source of
// truth for serial and negative TTL); NS records extend the apex NS set given to New
// (identical ones are dropped), so policy-declared name servers and the file's add up.
// Every record goes through Insert, so records outside the zone, CNAME conflicts and the
// other rules of Insert refuse the file.
//
// Syntax errors keep miekg's position ("FILE: dns: ... at line: L:C"). ZoneParser does
// not report the position of a record that parses but is refused, so such errors name
// the file, the record's ordinal and the record itself. The whole file is parsed before
// the first insert, so a syntax error leaves the zone untouched; a refused record leaves
// the records before it inserted, and the caller must then discard the zone (the policy
// package builds a fresh zone on every load).
func (z *Zone) ImportFile(r io.Reader, filename string, defaultTTL uint32) error {
	zp := dns.NewZoneParser(r, z.origin, filename)
	zp.SetDefaultTTL(defaultTTL)
	zp.SetIncludeAllowed(false)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("import zone %s: %w", z.origin, err)
	}
	if extra := len(rrs) - len(z.nodes); extra > 1024 {
		// Size the name map for the file once, instead of regrowing it (and rehashing
		// every name) about twenty times on the way to a million names.
		nodes := make(map[string]*node, len(z.nodes)+len(rrs))
		for k, v := range z.nodes {
			nodes[k] = v
		}
		z.nodes = nodes
	}
	for i, rr := range rrs {
		if err := z.insert(rr, true); err != nil {
			return fmt.Errorf("import zone %s: %s: record %d %q: %w", z.origin, filename, i+1, rr.String(), err)
		}
	}
	return nil
}
