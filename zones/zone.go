package zones

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Zone is one authoritative zone. See the package doc for its structure and semantics.
type Zone struct {
	origin string           // lower case, fully qualified
	apex   *node            // nodes[origin]
	nodes  map[string]*node // every owner name and empty non-terminal, lower case
	soa    *dns.SOA         // also the apex SOA RRset
	names  int              // nodes that own data or a service

	// targets maps a lower-case NS, MX or SRV target to the nodes whose RRset of that
	// type names it, so that inserting an address record refreshes their glue and
	// additional data.
	targets map[string][]*node
	// extra holds the additional data of a node's MX or SRV RRset: the in-zone A and
	// AAAA records of its targets (RFC 1034 section 4.3.2 step 6). A map rather than a
	// field of every RRset, as few names own either type.
	extra map[extraKey][]dns.RR

	// pos holds where the CNAME and DS records of zone files were read (Import), for
	// the diagnostics of the whole-zone checks.
	pos map[posKey]Pos

	// slab hands out nodes a batch at a time: one allocation per nodeBatch names instead
	// of one per name (a million-name zone file made a million).
	slab []node

	// gen is 0 for a zone that New made and one more than its base's for a zone that
	// Extend made. A node whose gen is below the zone's belongs to a zone it was extended
	// from, which may still serve: own copies it before a change.
	gen uint32
}

// Reserve makes room in the zone for n more names, so that inserting thousands of them
// (the services of a policy compiled again after an API write) does not grow its index of
// names step by step. It changes nothing the zone holds.
func (z *Zone) Reserve(n int) {
	if n <= 0 {
		return
	}
	nodes := make(map[string]*node, len(z.nodes)+n)
	maps.Copy(nodes, z.nodes)
	z.nodes = nodes
}

// Extend returns a zone that holds what z holds and takes more services (InsertService),
// with room for n of them, leaving z as it is: z's nodes are shared until one must
// change (the parent of a new name, a name that becomes a service), and then copied. An
// API write that adds one service to a zone of 10,000 thus copies the index of names and
// a node or two, instead of building the zone again. The extended zone takes no records
// (Insert, ImportFile): a record would change nodes in ways (glue, cuts, additional
// data) that copying one node at a time does not follow.
func (z *Zone) Extend(n int) *Zone {
	e := *z
	e.nodes = make(map[string]*node, len(z.nodes)+max(n, 0))
	maps.Copy(e.nodes, z.nodes)
	e.slab = nil // z's spare nodes are z's to hand out
	e.gen = z.gen + 1
	return &e
}

// own returns the zone's own copy of n, copying it first when it belongs to the zone
// this one was extended from.
func (z *Zone) own(n *node) *node {
	if n.gen == z.gen {
		return n
	}
	c := z.alloc()
	*c = *n
	c.gen = z.gen
	z.nodes[c.name] = c
	if n == z.apex {
		z.apex = c
	}
	for _, typ := range extraTypes {
		if x, ok := z.extra[extraKey{n, typ}]; ok {
			z.extra = maps.Clone(z.extra) // the base zone's map keys n
			z.extra[extraKey{c, typ}] = x
		}
	}
	return c
}

// alloc returns a zeroed node from the slab.
func (z *Zone) alloc() *node {
	if len(z.slab) == 0 {
		z.slab = make([]node, nodeBatch)
	}
	n := &z.slab[0]
	z.slab = z.slab[1:]
	return n
}

// nodeBatch is the number of nodes allocated at once; a batch lives as long as its zone.
const nodeBatch = 256

// rrset is the RRs of one type at one name (RFC 2181 section 5).
type rrset struct {
	typ uint16
	rrs []dns.RR
}

// node is one name of the zone.
type node struct {
	name    string
	parent  *node // nil at the apex
	wild    *node // the "*" child, source of synthesis for missing children (RFC 4592)
	rrsets  []rrset
	all     []dns.RR // every RR of rrsets, for qtype ANY
	service ServiceRef
	kids    int32  // child nodes; 0 lets a new cut skip looking for names below it
	gen     uint32 // the Zone.gen of the zone that made it
	cname   string // lower-case CNAME target, "" when the node has no CNAME
	// cut is the topmost delegation cut at or above this node (itself when it is one),
	// nil when the node is authoritative data.
	cut *node
	// glue holds the in-zone A/AAAA RRs of the node's NS targets; kept for cuts and the
	// apex only.
	glue []dns.RR
	// rs0 and rr0 are the storage of the node's first RRset and its first RR: most names
	// own one RRset of one record, which then costs no allocation of its own.
	rs0 [1]rrset
	rr0 [1]dns.RR
}

func (n *node) hasData() bool { return len(n.rrsets) > 0 || n.service != NoService }

func (n *node) get(t uint16) []dns.RR {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			rrs := n.rrsets[i].rrs
			return rrs[:len(rrs):len(rrs)] // no spare capacity: an append by the caller copies
		}
	}
	return nil
}

// New returns a zone for origin with the apex SOA and NS set. The RRs are copied, their
// owner names must be the origin (any case), and ns must hold at least one NS record.
func New(origin string, soa *dns.SOA, ns []dns.RR) (*Zone, error) {
	o := strings.ToLower(dns.Fqdn(origin))
	if _, ok := dns.IsDomainName(o); !ok || origin == "" {
		return nil, fmt.Errorf("new zone %q: %w", origin, ErrBadName)
	}
	if soa == nil {
		return nil, fmt.Errorf("new zone %q: %w", o, ErrNoSOA)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("new zone %q: %w", o, ErrNoNS)
	}
	apex := &node{name: o, service: NoService}
	z := &Zone{
		origin:  o,
		apex:    apex,
		nodes:   map[string]*node{o: apex},
		targets: map[string][]*node{},
	}
	if err := z.Insert(soa); err != nil {
		return nil, fmt.Errorf("new zone %q: %w", o, err)
	}
	for _, rr := range ns {
		if rr == nil || rr.Header().Rrtype != dns.TypeNS {
			return nil, fmt.Errorf("new zone %q: apex ns set holds a non-ns record: %w", o, ErrNoNS)
		}
		if lower(dns.Fqdn(rr.Header().Name)) != o {
			return nil, fmt.Errorf("new zone %q: ns record %q not at the apex: %w", o, rr.Header().Name, ErrOutOfZone)
		}
		if err := z.Insert(rr); err != nil {
			return nil, fmt.Errorf("new zone %q: %w", o, err)
		}
	}
	return z, nil
}

// Origin returns the zone's origin, lower case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

// SOA returns the apex SOA. It is shared with the zone: do not modify it.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// NS returns the apex NS RRset. It is shared with the zone: do not modify it.
func (z *Zone) NS() []dns.RR { return z.apex.get(dns.TypeNS) }

// NegativeTTL returns the TTL of negative answers: the SOA MINIMUM field, capped by the
// TTL of the SOA record itself (RFC 2308 section 5). The server puts the SOA in the
// authority section of NXDOMAIN and NODATA answers with this TTL.
func (z *Zone) NegativeTTL() uint32 {
	return min(z.soa.Hdr.Ttl, z.soa.Minttl)
}

// Names returns the number of owner names that hold records or a service; empty
// non-terminals are not counted.
func (z *Zone) Names() int { return z.names }

// inZone reports whether the lower-case, fully qualified name is the origin or below it.
func (z *Zone) inZone(name string) bool {
	if z.origin == "." {
		return true
	}
	if !strings.HasSuffix(name, z.origin) {
		return false
	}
	if len(name) == len(z.origin) {
		return true
	}
	i := len(name) - len(z.origin) - 1
	if name[i] != '.' {
		return false
	}
	// The dot before the origin must be a label separator, not an escaped "\.".
	bs := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		bs++
	}
	return bs%2 == 0
}

// parentName returns the name with its first label removed; name must not be the origin.
func parentName(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// closest returns the deepest existing node at or above the in-zone name.
func (z *Zone) closest(name string) *node {
	if n := z.nodes[name]; n != nil {
		return n
	}
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		if n := z.nodes[name[off:]]; n != nil {
			return n
		}
	}
	return z.apex
}

// node returns the node for the in-zone name, creating it and its missing ancestors
// (empty non-terminals) as needed.
func (z *Zone) node(name string) *node {
	if n := z.nodes[name]; n != nil {
		return n
	}
	return z.newNode(name)
}

// newNode creates the node of a name that has none yet, and its missing ancestors.
func (z *Zone) newNode(name string) *node {
	p := z.own(z.node(parentName(name)))
	n := z.alloc()
	*n = node{name: name, parent: p, service: NoService, cut: p.cut, gen: z.gen}
	p.kids++
	if strings.HasPrefix(name, "*.") {
		p.wild = n
	}
	z.nodes[name] = n
	return n
}

// below returns the nodes strictly below n (nil for a nil n). Nodes keep no child lists
// (a slice per name would cost more memory than the scan saves), so a node with
// children costs one pass over the zone.
func (z *Zone) below(n *node) []*node {
	if n == nil || n.kids == 0 {
		return nil
	}
	var out []*node
	for _, m := range z.nodes {
		if m != n && atOrBelow(m.name, n.name) {
			out = append(out, m)
		}
	}
	return out
}

// atOrBelow reports whether the lower-case name is top or a name below it.
func atOrBelow(name, top string) bool {
	return name == top || top == "." || strings.HasSuffix(name, "."+top)
}

// Insert adds a static record to the zone; the record is copied and its owner name
// lower-cased. Records of the same name and type form one RRset: an identical record is
// dropped silently (RFC 2181 section 5), and differing TTLs are all lowered to the
// smallest (RFC 2181 section 5.2 forbids mixed TTLs; the lowest errs towards freshness).
// An SOA at the apex replaces the zone's SOA. NS records below the apex make a
// delegation cut. The returned errors wrap the sentinels of this package.
func (z *Zone) Insert(rr dns.RR) error { return z.insert(rr, false) }

// insert is Insert; owned says that nothing else holds rr (ImportFile's records, fresh
// from the parser), so it is stored as it is, its owner name lower-cased in place,
// instead of copied: a copy per record is a third of the records' memory churn when a
// zone file holds a million names.
func (z *Zone) insert(rr dns.RR, owned bool) error {
	if rr == nil {
		return fmt.Errorf("insert: nil record: %w", ErrUnsupportedType)
	}
	if z.gen > 0 {
		return fmt.Errorf("insert: zone %s was extended from another: it takes services only", z.origin)
	}
	h := rr.Header()
	name := lower(dns.Fqdn(h.Name))
	err := z.admit(name, h)
	if err == nil && h.Rrtype == dns.TypeSOA {
		z.setSOA(rr, name)
		return nil
	}
	var dup, newCut bool
	n := z.nodes[name]
	if err == nil {
		dup, newCut, err = z.conflicts(n, rr, name)
	}
	if err != nil {
		// The prefix is built only on error: Sprintf on every record of a large zone file
		// costs more than the rest of the checks.
		return fmt.Errorf("insert %s %s: %w", name, dns.TypeToString[h.Rrtype], err)
	}
	if !dup {
		z.add(n, rr, name, owned, newCut)
	}
	return nil
}

// admit checks the record's name, class and type against the zone.
func (z *Zone) admit(name string, h *dns.RR_Header) error {
	if _, ok := dns.IsDomainName(name); !ok || h.Name == "" {
		return ErrBadName
	}
	if h.Class != dns.ClassINET {
		return fmt.Errorf("class %s: %w", dns.ClassToString[h.Class], ErrUnsupportedClass)
	}
	if !z.inZone(name) {
		return fmt.Errorf("zone %s: %w", z.origin, ErrOutOfZone)
	}
	switch t := h.Rrtype; {
	case t == dns.TypeSOA:
		if name != z.origin {
			return ErrSOANotAtApex
		}
	case t == dns.TypeDS:
		if name == z.origin {
			// The apex DS is the parent zone's data (RFC 4035 section 2.4).
			return fmt.Errorf("ds at the apex belongs in the parent zone: %w", ErrDSNotAtCut)
		}
	case t == dns.TypeDNAME:
		// Served without synthesising the CNAMEs of RFC 6672 section 3.2, a DNAME would
		// answer only resolvers that synthesise themselves.
		return fmt.Errorf("dname is not synthesised: %w", ErrUnsupportedType)
	case t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3 || t == dns.TypeNSEC3PARAM ||
		t == dns.TypeDNSKEY || t == dns.TypeCDS || t == dns.TypeCDNSKEY || t == dns.TypeSIG || t == dns.TypeNXT:
		// Signatures and denial records of a signed zone, served beside answers we
		// neither sign nor deny with them, would make validators fail the zone.
		return fmt.Errorf("%s: glbdns does not sign zones: %w", dns.TypeToString[t], ErrUnsupportedType)
	case t == dns.TypeNone || t == dns.TypeOPT || t == dns.TypeTSIG || t == dns.TypeTKEY || t >= 128 && t <= 255:
		// Pseudo-records and QTYPEs (RFC 6895 section 3.1) are not data.
		return fmt.Errorf("type %d is not a data type: %w", t, ErrUnsupportedType)
	}
	return nil
}

// CheckDS returns an error for every DS record that is not at a delegation point: a DS
// set describes the child zone of a cut and is answered there by the parent (RFC 4034
// section 5, RFC 4035 section 3.1.4.1), so elsewhere it means a missing NS set or a typo.
// It is a check of the whole zone, since the NS set may follow the DS in a file. Each
// error wraps ErrDSNotAtCut and is a *RecordError.
func (z *Zone) CheckDS() []error {
	var errs []error
	for name, n := range z.nodes {
		if n.get(dns.TypeDS) == nil || n.cut == n {
			continue
		}
		why := "no ns records there"
		if n.cut != nil {
			why = "below the delegation " + n.cut.name
		}
		errs = append(errs, &RecordError{Name: name, Type: dns.TypeDS, Err: fmt.Errorf("ds record at %s, %s: %w", name, why, ErrDSNotAtCut)})
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.(*RecordError).Name, b.(*RecordError).Name) })
	return errs
}

// RecordError is an error about the record(s) of one type at one name, found by a check
// of the whole zone (CheckDS, Set.CheckCNAMEs); RecordPos says where a zone file had them.
type RecordError struct {
	Name  string // lower case, fully qualified
	Type  uint16
	Names []string // for CNAME chains: the owners along the chain, in order
	Err   error
}

func (e *RecordError) Error() string { return e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

// setSOA installs the apex SOA: one per zone, replaced rather than added.
func (z *Zone) setSOA(rr dns.RR, name string) {
	soa := dns.Copy(rr).(*dns.SOA)
	soa.Hdr.Name = name
	if !z.apex.hasData() {
		z.names++
	}
	z.soa = soa
	z.apex.setRRset(dns.TypeSOA, []dns.RR{soa})
}

// conflicts checks rr against what node n (nil: no node yet) already holds, before any
// node is created, so that a refused record leaves no trace (not even an empty
// non-terminal, which would turn NXDOMAIN into NODATA). dup says rr repeats the node's
// CNAME (its TTL is lowered to the lesser, and nothing else changes); newCut that rr is
// the first NS of a delegation below the apex.
func (z *Zone) conflicts(n *node, rr dns.RR, name string) (dup, newCut bool, err error) {
	h := rr.Header()
	if n != nil && n.service != NoService {
		return false, false, ErrServiceConflict
	}
	if h.Rrtype == dns.TypeCNAME {
		if name == z.origin {
			return false, false, ErrCNAMEAtApex
		}
		if n != nil && len(n.rrsets) > 0 {
			if n.cname == "" {
				return false, false, ErrCNAMEConflict
			}
			if dns.IsDuplicate(n.rrsets[0].rrs[0], canonical(rr, name)) {
				lowerTTL(n.rrsets[0].rrs, h.Ttl)
				return true, false, nil
			}
			return false, false, fmt.Errorf("a second cname: %w", ErrCNAMEConflict)
		}
	} else if n != nil && n.cname != "" {
		return false, false, ErrCNAMEConflict
	}
	if h.Rrtype != dns.TypeNS || name == z.origin {
		return false, false, nil
	}
	if strings.HasPrefix(name, "*.") {
		return false, false, ErrWildcardNS
	}
	if n != nil && n.get(dns.TypeNS) != nil {
		return false, false, nil // the cut exists already
	}
	// Only names below the new cut can be occluded, and a name without child nodes has
	// none: the usual delegation (NS first, glue after) then costs no scan of the zone,
	// which would make a zone of many delegations quadratic.
	for _, m := range z.below(n) {
		if m.service != NoService && atOrBelow(m.name, name) {
			return false, false, fmt.Errorf("service %s would be occluded: %w", m.name, ErrOccluded)
		}
	}
	return false, true, nil
}

// add stores rr (admitted and checked) at node n, created when nil, and keeps the zone's
// indexes: the node's CNAME target, NS targets and cuts, and glue.
func (z *Zone) add(n *node, rr dns.RR, name string, owned, newCut bool) {
	if n == nil {
		n = z.newNode(name)
	}
	if !n.hasData() {
		z.names++
	}
	c := rr
	if owned {
		rr.Header().Name = name
	} else {
		c = canonical(rr, name)
	}
	n.add(c)
	switch rr.Header().Rrtype {
	case dns.TypeCNAME:
		n.cname = lower(dns.Fqdn(c.(*dns.CNAME).Target))
	case dns.TypeNS:
		z.addTarget(c.(*dns.NS).Ns, n)
		if newCut && (n.parent.cut == nil) {
			// n becomes the topmost cut for itself and every name below it. When a cut
			// above exists already, everything here points to that one and stays so.
			// Addresses below it are now glue, not authoritative data: the additional
			// data naming them is made again.
			n.cut = n
			for _, m := range z.below(n) {
				m.cut = n
				for _, d := range z.targets[m.name] {
					z.refreshExtra(d)
				}
			}
		}
		z.refreshGlue(n)
	case dns.TypeMX:
		z.addTarget(c.(*dns.MX).Mx, n)
		z.refreshExtra(n)
	case dns.TypeSRV:
		z.addTarget(c.(*dns.SRV).Target, n)
		z.refreshExtra(n)
	case dns.TypeA, dns.TypeAAAA:
		for _, d := range z.targets[name] {
			z.refreshGlue(d)
			z.refreshExtra(d)
		}
	}
}

// InsertService makes name a load-balanced name answered by the policy for every
// qtype. The name may be a wildcard ("*.lb.example.com."), which then covers the names
// that do not exist below its parent (RFC 4592). A service cannot be at the apex, beside
// static data, twice, or at or below a delegation cut.
func (z *Zone) InsertService(name string, ref ServiceRef) error {
	n := lower(dns.Fqdn(name))
	what := func() string { return "insert service " + n }
	if _, ok := dns.IsDomainName(n); !ok || name == "" {
		return fmt.Errorf("%s: %w", what(), ErrBadName)
	}
	if ref < 0 {
		return fmt.Errorf("%s: negative service reference %d", what(), ref)
	}
	if !z.inZone(n) {
		return fmt.Errorf("%s: zone %s: %w", what(), z.origin, ErrOutOfZone)
	}
	if n == z.origin {
		return fmt.Errorf("%s: %w", what(), ErrServiceAtApex)
	}
	if c := z.closest(n); c.cut != nil {
		return fmt.Errorf("%s: delegation %s: %w", what(), c.cut.name, ErrOccluded)
	}
	if m := z.nodes[n]; m != nil && m.hasData() {
		return fmt.Errorf("%s: %w", what(), ErrServiceConflict)
	}
	m := z.own(z.node(n))
	m.service = ref
	z.names++
	return nil
}

// canonical returns a copy of rr owned by the lower-case name.
func canonical(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// add puts rr into its RRset: duplicates are dropped, TTLs lowered to the smallest.
func (n *node) add(rr dns.RR) {
	t := rr.Header().Rrtype
	for i := range n.rrsets {
		s := &n.rrsets[i]
		if s.typ != t {
			continue
		}
		ttl := min(rr.Header().Ttl, s.rrs[0].Header().Ttl)
		lowerTTL(s.rrs, ttl)
		for _, o := range s.rrs {
			if dns.IsDuplicate(o, rr) {
				return
			}
		}
		rr.Header().Ttl = ttl
		s.rrs = append(s.rrs, rr)
		n.flatten()
		return
	}
	if len(n.rrsets) == 0 {
		// Capacity 1: a second RRset or record is appended to a copy.
		n.rr0[0] = rr
		n.rs0[0] = rrset{typ: t, rrs: n.rr0[:1:1]}
		n.rrsets = n.rs0[:1:1]
		n.flatten()
		return
	}
	n.rrsets = append(n.rrsets, rrset{typ: t, rrs: []dns.RR{rr}})
	n.flatten()
}

// setRRset replaces (or adds) the RRset of type t.
func (n *node) setRRset(t uint16, rrs []dns.RR) {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			n.rrsets[i].rrs = rrs
			n.flatten()
			return
		}
	}
	n.rrsets = append(n.rrsets, rrset{typ: t, rrs: rrs})
	n.flatten()
}

// flatten rebuilds the ANY view of the node, in a fresh slice so that a Result already
// handed out keeps its contents.
func (n *node) flatten() {
	var all []dns.RR
	if len(n.rrsets) == 1 {
		// The common single-RRset name shares its RRset's array, capped at its length:
		// a later append to the RRset copies or writes past what all can see, so a
		// Result handed out still keeps its contents.
		rrs := n.rrsets[0].rrs
		n.all = rrs[:len(rrs):len(rrs)]
		return
	}
	for _, s := range n.rrsets {
		all = append(all, s.rrs...)
	}
	n.all = all
}

func lowerTTL(rrs []dns.RR, ttl uint32) {
	for _, rr := range rrs {
		if rr.Header().Ttl > ttl {
			rr.Header().Ttl = ttl
		}
	}
}

func contains(ns []*node, n *node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// addTarget records that node n names target in its NS, MX or SRV RRset.
func (z *Zone) addTarget(target string, n *node) {
	t := lower(dns.Fqdn(target))
	if t == "." || !z.inZone(t) {
		return // SRV "." says there is no such service (RFC 2782); others are not ours
	}
	if !contains(z.targets[t], n) {
		z.targets[t] = append(z.targets[t], n)
	}
}

// extraKey names the MX or SRV RRset of a node.
type extraKey struct {
	n   *node
	typ uint16
}

// extraTypes are the types whose answers carry the addresses of their targets in the
// additional section (RFC 1034 section 4.3.2 step 6, RFC 2782 for SRV, RFC 5321 section
// 5.1 for MX). NS is answered with the glue of its node.
var extraTypes = [...]uint16{dns.TypeMX, dns.TypeSRV}

// refreshExtra recomputes the additional data of d's MX and SRV RRsets: the A and AAAA
// RRsets of their targets in this zone, each target once, in the order of the records,
// and only authoritative data (a target at or below a delegation is the child's, and a
// CNAME or a service owns no static addresses).
func (z *Zone) refreshExtra(d *node) {
	for _, typ := range extraTypes {
		rrs := d.get(typ)
		if rrs == nil {
			continue
		}
		var extra []dns.RR
		var seen []*node
		for _, rr := range rrs {
			var t string
			switch v := rr.(type) {
			case *dns.MX:
				t = v.Mx
			case *dns.SRV:
				t = v.Target
			}
			m := z.nodes[lower(dns.Fqdn(t))]
			if m == nil || m.cut != nil || slices.Contains(seen, m) {
				continue
			}
			seen = append(seen, m)
			extra = append(extra, m.get(dns.TypeA)...)
			extra = append(extra, m.get(dns.TypeAAAA)...)
		}
		k := extraKey{d, typ}
		switch {
		case len(extra) > 0:
			if z.extra == nil {
				z.extra = map[extraKey][]dns.RR{}
			}
			z.extra[k] = extra
		case z.extra != nil:
			delete(z.extra, k)
		}
	}
}

// refreshGlue recomputes the in-zone addresses of d's NS targets: the glue of a cut
// (RFC 1034 section 4.2.1) or the additional data of the apex NS set. Targets outside
// this zone are left to resolvers; a target below another cut of this zone (sibling
// glue) is included because this zone holds its only copy.
func (z *Zone) refreshGlue(d *node) {
	var glue []dns.RR
	for _, rr := range d.get(dns.TypeNS) {
		t := lower(dns.Fqdn(rr.(*dns.NS).Ns))
		if !z.inZone(t) {
			continue
		}
		if m := z.nodes[t]; m != nil {
			glue = append(glue, m.get(dns.TypeA)...)
			glue = append(glue, m.get(dns.TypeAAAA)...)
		}
	}
	d.glue = glue
}

// lower returns s with ASCII letters in lower case, without allocating when s has none
// in upper case (the usual query). Per RFC 4343 only ASCII letters compare
// case-insensitively.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// Same reports whether z and o hold the same data: the same names, each with the same
// records, service, delegation, glue and additional data, and the same SOA. A zone
// extended with services (Extend) and one built whole with them are the same when every
// answer they give is, though their nodes are laid out apart.
func (z *Zone) Same(o *Zone) bool {
	if z.origin != o.origin || z.names != o.names || len(z.nodes) != len(o.nodes) || !reflect.DeepEqual(z.soa, o.soa) {
		return false
	}
	name := func(n *node) string {
		if n == nil {
			return ""
		}
		return n.name
	}
	for k, a := range z.nodes {
		b := o.nodes[k]
		if b == nil || a.service != b.service || a.cname != b.cname || a.kids != b.kids ||
			name(a.parent) != name(b.parent) || name(a.wild) != name(b.wild) || name(a.cut) != name(b.cut) ||
			!reflect.DeepEqual(a.rrsets, b.rrsets) || !reflect.DeepEqual(a.all, b.all) || !reflect.DeepEqual(a.glue, b.glue) {
			return false
		}
		for _, typ := range extraTypes {
			if !reflect.DeepEqual(z.extra[extraKey{a, typ}], o.extra[extraKey{b, typ}]) {
				return false
			}
		}
	}
	return true
}

// Same reports whether the sets hold the same zones (Zone.Same).
func (s *Set) Same(o *Set) bool {
	if len(s.zones) != len(o.zones) {
		return false
	}
	for i, z := range s.zones {
		if !z.Same(o.zones[i]) {
			return false
		}
	}
	return true
}
