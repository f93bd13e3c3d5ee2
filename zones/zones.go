// Package zones holds authoritative zone data: the apex SOA and NS set, static RRsets,
// wildcards (RFC 4592), delegation cuts, and references to load-balanced services, in a
// name tree that answers lookups (exact match, wildcard, closest encloser).
//
// It knows nothing of policy, health or sockets: a load-balanced name is stored as an
// opaque ServiceRef (an index the policy package assigns) and the lookup just reports it.
//
// All names are stored in lower case, fully qualified; lookups are case-insensitive.
//
// # Use
//
//	z, err := zones.New("glb.example.com.", soa, nsRRs)
//	err = z.Insert(rr)                      // static record; checked for CNAME conflicts, out-of-zone
//	err = z.InsertService("www.glb.example.com.", 3)
//	err = z.ImportFile(r, "db.example", defaultTTL) // RFC 1035 master file via miekg ZoneParser
//	inc, err := z.Import(data, path, zones.ImportOptions{DefaultTTL: ttl, IncludeRoot: dir}) // with $INCLUDE
//	errs := z.CheckDS(); errs = set.CheckCNAMEs(8, nil) // whole-zone checks, once built
//	set, err := zones.NewSet(z1, z2)        // refuses duplicate origins
//	zone := set.Find(qname)                 // longest-suffix zone, nil if none (REFUSED)
//	res := zone.Lookup(qname, qtype)        // never allocates for exact, non-wildcard hits
//
// # Data structure
//
// A zone is a map from the full lower-case owner name to a node, and every ancestor of
// an owner name down to the apex has a node too: the nodes without data are the empty
// non-terminals, which exist (RFC 4592 section 2.2.2) and answer NODATA, not NXDOMAIN.
// A map was chosen over a label tree because the common case, an exact hit, is then one
// hash lookup on the query name itself (a string, so no allocation), and the closest
// encloser of a missing name is found by walking its suffixes with dns.NextLabel, one
// lookup per label, again without allocating. Each node keeps a pointer to its "*" child,
// so the source of synthesis is found without building the string "*.<encloser>".
//
// Delegation cuts and glue are resolved at insert time, not at lookup time: every node
// points to the topmost cut at or above it, and every cut keeps its glue (the A/AAAA
// RRsets of in-zone NS targets) ready to return.
//
// # Semantics
//
//   - Exact hit: CNAME node gives Kind CNAME (or Answer when the qtype is CNAME or ANY),
//     a service node gives Kind Service for every qtype, else Answer or NoData.
//   - qtype ANY gives every RRset at the name flattened in one Answer; the server trims
//     it per RFC 8482.
//   - A name at or below a delegation cut gives Referral, with the NS set of the topmost
//     cut in Ns and its glue in Extra; other data there is occluded (kept, never served).
//     DS at the cut itself is answered by the parent side (RFC 4035 section 3.1.4.1): the
//     zone's DS RRset there, authoritatively, or NoData. A DS anywhere else (the apex,
//     a name without NS) is refused: at the apex by Insert, elsewhere by CheckDS, as the
//     NS set may come after the DS in a file.
//   - Missing name: the closest encloser's "*" child, when present, synthesises the answer
//     with owner = qname as asked (RFC 4592 section 3.3.1); otherwise NXDomain. An empty
//     non-terminal is an existing name, so it blocks the wildcard above it.
//   - An NS query at the apex also returns the in-zone addresses of the name servers in
//     Extra (RFC 1034 section 4.3.2 step 6, additional section processing), and an MX or
//     SRV answer those of its targets, authoritative ones only (not below a cut), kept
//     up to date at insert time as glue is.
//   - Lookup of a name outside the zone gives NXDomain; callers pick the zone with
//     Set.Find first and answer REFUSED when it returns nil.
//
// # Concurrency
//
// A Zone is built (New, Insert, InsertService, ImportFile) by one goroutine, then
// published and only read: Lookup, Find and the accessors are safe for concurrent use as
// long as nothing inserts any more. The policy package builds a fresh zone on every
// reload and swaps the whole snapshot, so no locking is needed on the query path.
package zones

import (
	"errors"

	"github.com/miekg/dns"
)

// Errors returned by New, Insert, InsertService and ImportFile (wrapped with the name and
// record at fault). The policy package matches them with errors.Is to build diagnostics.
var (
	// ErrOutOfZone: the owner name is not the origin nor below it.
	ErrOutOfZone = errors.New("name is outside the zone")
	// ErrCNAMEConflict: a CNAME beside other data, or two different CNAMEs, at one name
	// (RFC 1034 section 3.6.2, RFC 2181 section 10.1).
	ErrCNAMEConflict = errors.New("cname and other data at the same name")
	// ErrCNAMEAtApex: the apex always owns SOA and NS, so it can never own a CNAME.
	ErrCNAMEAtApex = errors.New("cname at the zone apex")
	// ErrServiceConflict: a load-balanced name cannot also own static records, nor be
	// declared twice: the policy answers every qtype there.
	ErrServiceConflict = errors.New("service and other data at the same name")
	// ErrServiceAtApex: the apex must answer SOA and NS itself, so it cannot be a service.
	ErrServiceAtApex = errors.New("service at the zone apex")
	// ErrOccluded: a service at or below a delegation cut would never be served.
	ErrOccluded = errors.New("service at or below a delegation cut")
	// ErrWildcardNS: delegating a wildcard name is undefined (RFC 4592 section 4.2).
	ErrWildcardNS = errors.New("ns records at a wildcard name")
	// ErrSOANotAtApex: a zone has exactly one SOA, at its apex (RFC 1035 section 5.2).
	ErrSOANotAtApex = errors.New("soa record not at the zone apex")
	// ErrUnsupportedType: every data type miekg/dns parses is served (HTTPS, SVCB, TLSA,
	// NAPTR, SSHFP, CAA, DS at cuts, RFC 3597 TYPEnnn, ...) but DNAME (not synthesised),
	// the records of a signed zone (RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY, CDS, CDNSKEY:
	// glbdns does not sign) and pseudo-types (OPT, TSIG, QTYPEs), which are refused
	// rather than served half-right.
	ErrUnsupportedType = errors.New("unsupported record type")
	// ErrDSNotAtCut: a DS record only exists at a delegation point, on the parent side
	// (RFC 4034 section 5); not at the apex, nor at a name without NS records.
	ErrDSNotAtCut = errors.New("ds record not at a delegation point")
	// ErrCNAMELoop: CNAMEs in our zones that lead back to themselves.
	ErrCNAMELoop = errors.New("cname loop")
	// ErrCNAMEChain: a chain of more CNAMEs in our zones than the server follows.
	ErrCNAMEChain = errors.New("cname chain too long")
	// ErrUnsupportedClass: only class IN is served.
	ErrUnsupportedClass = errors.New("unsupported record class")
	// ErrBadName: the name is not a valid domain name.
	ErrBadName = errors.New("invalid domain name")
	// ErrNoSOA: New was given no SOA record.
	ErrNoSOA = errors.New("zone has no soa record")
	// ErrNoNS: New was given no NS record; a zone without an apex NS set cannot be
	// delegated to (RFC 1034 section 4.2.1).
	ErrNoNS = errors.New("zone has no apex ns records")
	// ErrDuplicateZone: NewSet was given two zones with the same origin.
	ErrDuplicateZone = errors.New("duplicate zone origin")
)

// ServiceRef identifies a load-balanced name; it is an index into the policy snapshot's
// services. NoService marks a node without one.
type ServiceRef int32

// NoService is the ServiceRef of a name that is not load-balanced.
const NoService ServiceRef = -1

// Kind says what a lookup found.
type Kind uint8

const (
	// Answer: Result.Answer holds the RRset of the asked type (owner = the qname for
	// wildcard answers, synthesised per RFC 4592).
	Answer Kind = iota
	// NoData: the name exists (or a wildcard matched) but has no RRset of the asked type.
	// The server puts the SOA in authority.
	NoData
	// NXDomain: the name does not exist and no wildcard covers it; SOA in authority.
	NXDomain
	// Referral: the name is at or below a delegation cut (an NS set below the apex).
	// Result.Ns holds the delegation NS set, Result.Extra the glue A/AAAA from this zone.
	Referral
	// CNAME: the name owns a CNAME and the asked type is not CNAME. Result.Answer holds
	// the CNAME RR (owner = qname); Result.Target is its target. The server chases it.
	CNAME
	// Service: the name (exactly or through a wildcard) is load-balanced; Result.Service
	// holds the reference. The server asks the policy for the answer, whatever the qtype.
	Service
)

// Result is the outcome of Zone.Lookup. Slices are shared with the zone and must not be
// modified by the caller (copy before shuffling or rewriting).
type Result struct {
	Kind    Kind
	Answer  []dns.RR
	Ns      []dns.RR
	Extra   []dns.RR
	Target  string     // CNAME target, lower case, fully qualified
	Service ServiceRef // for Kind == Service; NoService otherwise
	// Wildcard is true when the result was synthesised from a wildcard (RFC 4592).
	Wildcard bool
}
