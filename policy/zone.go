package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/dnssec"
	"github.com/glbdns/glbdns/zones"
)

var zoneSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "nameservers", Required: true},
		{Name: "ttl"},
		{Name: "file"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "soa"},
		{Type: "record", LabelNames: []string{"name"}},
		{Type: "dnssec"},
	},
}

var dnssecSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "keys", Required: true},
		{Name: "validity"},
		{Name: "dnskey_ttl"},
	},
}

// zoneDNSSEC is a zone's dnssec block: where its keys are and how long its signatures
// last. The keys are read at every Load, even of a zone taken from a Compiler's record,
// so that a key added for a rollover is published by a reload.
type zoneDNSSEC struct {
	dir       string // the keys folder, resolved against the policy file's
	validity  time.Duration
	dnskeyTTL uint32    // of the DNSKEY, CDS and CDNSKEY sets
	rng       hcl.Range // the keys attribute, for its errors
}

var soaSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "mname"}, {Name: "rname"}, {Name: "serial"}, {Name: "refresh"},
		{Name: "retry"}, {Name: "expire"}, {Name: "minimum"},
	},
}

var recordSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true},
		{Name: "values", Required: true},
		{Name: "ttl"},
	},
}

// Zone defaults. The SOA timers are RIPE-203's recommendations for a small, rarely
// changing zone, except minimum: it is the negative-caching TTL (RFC 2308 section 4) and
// is kept short so that a newly added load-balanced name is not hidden for long.
const (
	defaultZoneTTL = 3600
	defaultRefresh = 3600
	defaultRetry   = 600
	defaultExpire  = 604800
	defaultMinimum = 60
)

// validName reports whether s is a syntactically valid, fully qualified domain name.
func validName(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && s != ""
}

// validHost reports whether s (fully qualified) is a host name: labels of letters, digits,
// hyphens and underscores, 1 to 63 octets, 253 in all (RFC 1123 section 2.1, with the
// underscore that service names use in practice). dns.IsDomainName alone accepts any
// octet, spaces included, which is never what an operator meant in a host attribute.
func validHost(s string) bool { return api.ValidHost(s) }

func (c *compilation) zone(blk *hcl.Block, dir string) {
	origin := fqdn(blk.Labels[0])
	labelRng := blk.LabelRanges[0]
	content, diags := bodyContent(blk.Body, zoneSchema)
	c.add(diags)
	if !validName(origin) {
		c.errf(labelRng, "Invalid zone origin", "%q is not a valid domain name.", blk.Labels[0])
		return
	}
	for _, z := range c.zones {
		if z.origin == origin {
			c.errf(labelRng, "Duplicate zone", "Zone %q is already declared at %s.", origin, posString(z.rng))
			return
		}
	}
	ttl := uint32(defaultZoneTTL)
	if a := content.Attributes["ttl"]; a != nil {
		if v, ok := c.ttl(a); ok {
			ttl = v
		}
	}
	var ns []dns.RR
	var mname string
	if a := content.Attributes["nameservers"]; a != nil {
		names, rngs, _ := c.strList(a)
		if len(names) == 0 && len(rngs) == 0 {
			c.errf(a.Expr.Range(), "Missing nameservers", "Zone %q needs at least one name server for its apex NS set (RFC 1034 section 4.2.1).", origin)
		}
		for i, n := range names {
			h := fqdn(n)
			if !validHost(h) {
				c.errf(rngs[i], "Invalid name server", "%q is not a valid host name.", n)
				continue
			}
			if mname == "" {
				mname = h
			}
			ns = append(ns, &dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}, Ns: h})
		}
	}
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      mname,
		Mbox:    "hostmaster." + origin,
		Serial:  1,
		Refresh: defaultRefresh, Retry: defaultRetry, Expire: defaultExpire, Minttl: defaultMinimum,
	}
	soaBlocks := content.Blocks.OfType("soa")
	for i, sb := range soaBlocks {
		if i > 0 {
			c.errf(sb.DefRange, "Duplicate soa block", "Zone %q already has an soa block at %s.", origin, posString(soaBlocks[0].DefRange))
			continue
		}
		c.soa(sb, soa)
	}
	if len(ns) == 0 {
		return // reported above
	}
	z, err := zones.New(origin, soa, ns)
	if err != nil {
		c.errf(blk.DefRange, "Invalid zone", "Zone %q: %v.", origin, err)
		return
	}
	zs := &zoneState{origin: origin, z: z, rng: labelRng}
	if c.cc != nil {
		zs.recipe = &zoneRecipe{origin: origin, rng: labelRng, soa: soa, ns: ns}
	}
	c.zones = append(c.zones, zs)
	if blocks := content.Blocks.OfType("dnssec"); len(blocks) > 0 {
		for _, b := range blocks[1:] {
			c.errf(b.DefRange, "Duplicate dnssec block", "Zone %q already has a dnssec block at %s.", origin, posString(blocks[0].DefRange))
		}
		zs.dnssec = c.dnssecBlock(blocks[0], dir)
		if zs.recipe != nil {
			zs.recipe.dnssec = zs.dnssec
		}
	}
	for _, rb := range content.Blocks.OfType("record") {
		c.record(zs, rb, ttl)
	}
	if a := content.Attributes["file"]; a != nil {
		c.zoneFile(zs, a, dir, ttl)
	}
}

// dnssecBlock decodes a zone's dnssec block; nil when it has errors.
func (c *compilation) dnssecBlock(blk *hcl.Block, dir string) *zoneDNSSEC {
	content, diags := bodyContent(blk.Body, dnssecSchema)
	c.add(diags)
	a := content.Attributes["keys"]
	if a == nil {
		return nil
	}
	keys, ok := c.str(a)
	if !ok {
		return nil
	}
	if keys == "" {
		c.errf(a.Expr.Range(), "Invalid keys folder", "The keys attribute names the folder of the zone's key files (glbctl dnssec keygen writes them).")
		return nil
	}
	if !filepath.IsAbs(keys) {
		keys = filepath.Join(dir, keys)
	}
	d := &zoneDNSSEC{dir: keys, validity: dnssec.DefaultValidity, dnskeyTTL: dnssec.DefaultDNSKEYTTL, rng: a.Expr.Range()}
	if v := content.Attributes["dnskey_ttl"]; v != nil {
		if ttl, ok := c.ttl(v); ok {
			d.dnskeyTTL = ttl
		}
	}
	if v := content.Attributes["validity"]; v != nil {
		if dur, ok := c.duration(v); ok {
			if dur < 2*time.Hour || dur > 90*24*time.Hour {
				c.errf(v.Expr.Range(), "Invalid validity", "A signature's validity must be between 2h (past the hour it is made in and the clock skew allowed) and 2160h (90 days), not %s.", dur)
				return nil
			}
			d.validity = dur
		}
	}
	return d
}

// signers reads the keys of every zone with a dnssec block into the snapshot's Signers,
// reporting a folder or key that does not load at the block's keys attribute.
func (c *compilation) signers() {
	for _, zs := range c.zones {
		d := zs.dnssec
		if d == nil && zs.old != nil {
			d = zs.old.dnssec
		}
		if d == nil {
			continue
		}
		keys, err := dnssec.ReadDir(d.dir, zs.origin)
		if err != nil {
			c.errf(d.rng, "Cannot load DNSSEC keys", "Zone %q: %v.", zs.origin, err)
			continue
		}
		s, err := dnssec.NewSigner(zs.origin, keys, dnssec.Config{Validity: d.validity, DNSKEYTTL: d.dnskeyTTL})
		if err != nil {
			c.errf(d.rng, "Invalid DNSSEC keys", "%v.", err)
			continue
		}
		if c.snap.Signers == nil {
			c.snap.Signers = map[string]*dnssec.Signer{}
		}
		c.snap.Signers[zs.origin] = s
	}
}

func (c *compilation) soa(blk *hcl.Block, soa *dns.SOA) {
	content, diags := bodyContent(blk.Body, soaSchema)
	c.add(diags)
	for _, name := range []string{"mname", "rname"} {
		a := content.Attributes[name]
		if a == nil {
			continue
		}
		s, ok := c.str(a)
		if !ok {
			continue
		}
		if name == "rname" {
			// Accept a mail address: RFC 1035 section 8 writes hostmaster@example.com as
			// hostmaster.example.com.
			s = strings.Replace(s, "@", ".", 1)
		}
		h := fqdn(s)
		if !validHost(h) {
			c.errf(a.Expr.Range(), "Invalid "+name, "%q is not a valid domain name.", s)
			continue
		}
		if name == "mname" {
			soa.Ns = h
		} else {
			soa.Mbox = h
		}
	}
	for _, f := range []struct {
		name string
		dst  *uint32
	}{{"serial", &soa.Serial}, {"refresh", &soa.Refresh}, {"retry", &soa.Retry}, {"expire", &soa.Expire}, {"minimum", &soa.Minttl}} {
		a := content.Attributes[f.name]
		if a == nil {
			continue
		}
		max := int64(maxTTL)
		if f.name == "serial" {
			max = 1<<32 - 1 // RFC 1982 serial numbers are unsigned 32-bit
		}
		if v, ok := c.integer(a, 0, max); ok {
			*f.dst = uint32(v)
		}
	}
}

// ownerName resolves a record label: "@" is the apex, a trailing dot makes it absolute,
// anything else is relative to the origin (as in an RFC 1035 master file).
func ownerName(label, origin string) string {
	switch {
	case label == "@":
		return origin
	case strings.HasSuffix(label, "."):
		return strings.ToLower(label)
	case origin == ".":
		return strings.ToLower(label) + "."
	default:
		return strings.ToLower(label) + "." + origin
	}
}

func (c *compilation) record(zs *zoneState, blk *hcl.Block, zoneTTL uint32) {
	content, diags := bodyContent(blk.Body, recordSchema)
	c.add(diags)
	owner := ownerName(blk.Labels[0], zs.origin)
	labelRng := blk.LabelRanges[0]
	if !validName(owner) {
		c.errf(labelRng, "Invalid record name", "%q is not a valid domain name.", blk.Labels[0])
		return
	}
	if !dns.IsSubDomain(zs.origin, owner) {
		c.errf(labelRng, "Record outside zone", "Record %q is not in zone %q.", owner, zs.origin)
		return
	}
	ttl := zoneTTL
	if a := content.Attributes["ttl"]; a != nil {
		v, ok := c.ttl(a)
		if !ok {
			return
		}
		ttl = v
	}
	ta := content.Attributes["type"]
	va := content.Attributes["values"]
	if ta == nil || va == nil {
		return // hcl reported the missing attribute
	}
	typ, ok := c.str(ta)
	if !ok {
		return
	}
	typ = strings.ToUpper(typ)
	rrtype, known := dns.StringToType[typ]
	switch {
	case !known:
		c.errf(ta.Expr.Range(), "Invalid record type", "%q is not a DNS record type.", typ)
		return
	case rrtype == dns.TypeSOA:
		c.errf(ta.Expr.Range(), "Invalid record type", "The SOA record is set by the zone's soa block.")
		return
	case rrtype == dns.TypeNS && owner == zs.origin:
		c.errf(ta.Expr.Range(), "Invalid record type", "The apex NS set is set by the zone's nameservers attribute.")
		return
	}
	values, rngs, _ := c.strList(va)
	if len(values) == 0 && len(rngs) == 0 {
		c.errf(va.Expr.Range(), "Missing record values", "Record %q needs at least one value.", owner)
		return
	}
	for i, v := range values {
		// The value is parsed as a master-file line with $ORIGIN set to the zone, so that
		// relative names in rdata ("10 mail") mean the same as in a zone file.
		line := fmt.Sprintf("%s %d IN %s %s", owner, ttl, typ, v)
		zp := dns.NewZoneParser(strings.NewReader(line), zs.origin, "")
		rr, ok := zp.Next()
		if err := zp.Err(); err != nil || !ok {
			msg := "no record"
			if err != nil {
				// The parser's position is within the synthetic line, meaningless to
				// the operator: the diagnostic's own range locates the value.
				msg, _, _ = strings.Cut(err.Error(), " at line: ")
				msg = strings.TrimPrefix(msg, "dns: ")
			}
			c.errf(rngs[i], "Invalid record value", "%q is not valid %s data: %s.", v, typ, msg)
			continue
		}
		if _, more := zp.Next(); more {
			c.errf(rngs[i], "Invalid record value", "%q holds more than one record.", v)
			continue
		}
		if err := zs.z.Insert(rr); err != nil {
			c.zoneErr(labelRng, owner, err)
			continue
		} else if zs.recipe != nil {
			zs.recipe.records = append(zs.recipe.records, rr) // Insert copied it
		}
		if rrtype == dns.TypeCNAME || rrtype == dns.TypeDS {
			if zs.recRng == nil {
				zs.recRng = map[recKey]hcl.Range{}
			}
			zs.recRng[recKey{owner, rrtype}] = labelRng
		}
	}
}

// recKey names the records of one type at one name of a zone.
type recKey struct {
	name string
	typ  uint16
}

// checkZones makes the checks of the built zones as a whole: DS records only at
// delegation points, and no CNAME loop or chain longer than the server follows (see
// zones.Set.CheckCNAMEs). Each error is reported at the record: its record block, or its
// line of the zone file.
// onlyAddressesAdded reports whether the zones are those of the Compiler's last Load but
// for services added that answer addresses (no CNAME): every zone the record's, or that
// extended with such services (stable Refs, so every service of the last snapshot is there
// as it was). The checks of checkZones then pass as they did: a DS stays where the
// records put it, and a name that answers addresses ends a CNAME chain, so it can shorten
// chains and break loops but never make one.
func (c *compilation) onlyAddressesAdded() bool {
	if !c.stableRefs {
		return false
	}
	for _, zs := range c.zones {
		if !zs.reused && !zs.extended {
			return false
		}
	}
	for k := range c.pending {
		if p := &c.pending[k]; !p.shared && p.s.cname {
			return false
		}
	}
	return true
}

func (c *compilation) checkZones(set *zones.Set) {
	byZone := make(map[*zones.Zone]*zoneState, len(c.zones))
	for _, zs := range c.zones {
		byZone[zs.z] = zs
	}
	where := func(name string, typ uint16) (hcl.Range, string) {
		z := set.Find(name)
		zs := byZone[z]
		if zs == nil {
			return hcl.Range{}, name
		}
		if r, ok := zs.recRng[recKey{name, typ}]; ok {
			return r, name + " at " + posString(r)
		}
		if r := c.svcRng[name]; r != nil { // a host-name service, which answers a CNAME
			return *r, "service " + name + " at " + posString(*r)
		}
		if p, ok := z.RecordPos(name, typ); ok {
			r := hcl.Range{Filename: p.File, Start: hcl.Pos{Line: p.Line, Column: 1}, End: hcl.Pos{Line: p.Line, Column: 1}}
			return r, name + " at " + p.String()
		}
		return zs.rng, name
	}
	for _, zs := range c.zones {
		for _, err := range zs.z.CheckDS() {
			re := err.(*zones.RecordError)
			rng, _ := where(re.Name, dns.TypeDS)
			c.errf(rng, "DS not at a delegation", "%v: a DS record belongs at a delegation point, the parent side of a cut (RFC 4034 section 5); give the name NS records or remove the DS.", err)
		}
	}
	for _, err := range set.CheckCNAMEs(zones.MaxCNAMEChain, c.serviceHosts) {
		re := err.(*zones.RecordError)
		rng, _ := where(re.Names[0], dns.TypeCNAME)
		places := make([]string, len(re.Names))
		for i, n := range re.Names {
			_, places[i] = where(n, dns.TypeCNAME)
		}
		summary, hint := "CNAME chain too long", fmt.Sprintf("The server follows at most %d CNAMEs in our zones; point the first ones at the end of the chain.", zones.MaxCNAMEChain)
		if errors.Is(err, zones.ErrCNAMELoop) {
			summary, hint = "CNAME loop", "No name at the end of it has data; a resolver would get only CNAMEs."
		}
		c.errf(rng, summary, "%v (records: %s). %s", err, strings.Join(places, ", "), hint)
	}
}

// serviceHosts is where a host-name service sends a query by CNAME: the hosts of its
// members, and of its fallback pool; nil for an address service.
func (c *compilation) serviceHosts(ref zones.ServiceRef) []string {
	if int(ref) < 0 || int(ref) >= len(c.snap.Services) {
		return nil
	}
	svc := c.snap.Services[ref]
	if svc == nil || !svc.cname {
		return nil
	}
	var hosts []string
	pools := svc.Pools
	if svc.Fallback != nil {
		pools = append(slices.Clip(pools), svc.Fallback)
	}
	for _, p := range pools {
		for _, m := range p.Members {
			if m.Host != "" && !slices.Contains(hosts, m.Host) {
				hosts = append(hosts, m.Host)
			}
		}
	}
	return hosts
}

// zoneErr maps the zones package's sentinel errors to diagnostics at the offending block.
func (c *compilation) zoneErr(rng hcl.Range, owner string, err error) {
	summary := "Invalid record"
	switch {
	case errors.Is(err, zones.ErrOutOfZone):
		summary = "Record outside zone"
	case errors.Is(err, zones.ErrCNAMEConflict):
		summary = "CNAME and other data"
	case errors.Is(err, zones.ErrCNAMEAtApex):
		summary = "CNAME at zone apex"
	case errors.Is(err, zones.ErrServiceConflict):
		summary = "Service and other data"
	case errors.Is(err, zones.ErrServiceAtApex):
		summary = "Service at zone apex"
	case errors.Is(err, zones.ErrOccluded):
		summary = "Service below delegation"
	case errors.Is(err, zones.ErrWildcardNS):
		summary = "NS at wildcard"
	case errors.Is(err, zones.ErrUnsupportedType):
		summary = "Unsupported record type"
	case errors.Is(err, zones.ErrUnsupportedClass):
		summary = "Unsupported record class"
	case errors.Is(err, zones.ErrBadName):
		summary = "Invalid record name"
	}
	c.errf(rng, summary, "%s: %v.", owner, err)
}

func (c *compilation) zoneFile(zs *zoneState, a *hcl.Attribute, dir string, ttl uint32) {
	name, ok := c.str(a)
	if !ok {
		return
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	zf := &zoneFile{path: path, rng: a.Expr.Range(), ttl: ttl, root: dir}
	if zs.recipe != nil {
		zs.recipe.file = zf
	}
	c.importZone(zs, zf)
}

// zoneFile is a zone's file attribute: the path (relative ones resolved against the
// directory of the .hcl file), where to report its errors (the attribute's value), and
// the zone's default TTL for its records.
type zoneFile struct {
	path string
	rng  hcl.Range
	ttl  uint32
	root string // the policy folder: $INCLUDE reads only files inside it
}

// zoneImport is a zone file being read and imported on a goroutine of its own, so that a
// large file (a million names: seconds of parsing) loads on one core while the services
// compile on the other. Only the goroutine touches the zone until waitImports; the
// services are inserted into the zones after that (see service).
type zoneImport struct {
	zs        *zoneState
	file      *zoneFile
	data      []byte
	readErr   error
	importErr error
	// included are the files the zone file included ($INCLUDE), read by the import (or,
	// for a zone reused whole, by compareZones), for the hash and the watch.
	included []zones.Included
	read     chan struct{} // closed once data and readErr are set
	done     chan struct{} // closed once importErr is set too
}

// importZone reads and imports the zone's file on a goroutine of its own.
func (c *compilation) importZone(zs *zoneState, zf *zoneFile) {
	im := &zoneImport{zs: zs, file: zf, read: make(chan struct{}), done: make(chan struct{})}
	zs.im = im
	c.imports = append(c.imports, im)
	c.startImport(im, false)
}

// startImport starts im's goroutine: it reads the file unless read says im.data (or
// im.readErr) holds it already (and im.read is closed), and imports it into the zone.
func (c *compilation) startImport(im *zoneImport, read bool) {
	if c.importSem == nil {
		c.importSem = make(chan struct{}, runtime.GOMAXPROCS(0))
	}
	zs, zf := im.zs, im.file
	go func() {
		defer close(im.done)
		c.importSem <- struct{}{}
		defer func() { <-c.importSem }()
		defer func() {
			if r := recover(); r != nil {
				im.importErr = fmt.Errorf("panic importing zone file: %v", r)
			}
		}()
		if !read {
			im.data, im.readErr = c.readFile(zf.path)
			close(im.read)
		}
		if im.readErr == nil {
			im.included, im.importErr = zs.z.Import(im.data, zf.path, c.importOptions(zf))
		}
	}()
}

// fileErrors reports the errors of a zone file import, each as a diagnostic at its
// place in the zone file (file:line, and the column of a syntax error), with a last one
// at the file attribute counting those left out.
// readFile reads a zone file: through the Compiler's ReadFile when it has one.
func (c *compilation) readFile(name string) ([]byte, error) {
	if c.cc != nil && c.cc.ReadFile != nil {
		return c.cc.ReadFile(name)
	}
	return os.ReadFile(name)
}

// importOptions are the options of zf's import: $INCLUDE confined to its folder, or
// refused when the Compiler reads files from elsewhere than the file system.
func (c *compilation) importOptions(zf *zoneFile) zones.ImportOptions {
	if c.cc != nil && c.cc.ReadFile != nil {
		return zones.ImportOptions{DefaultTTL: zf.ttl, ReadFile: c.cc.ReadFile}
	}
	return zones.ImportOptions{DefaultTTL: zf.ttl, IncludeRoot: zf.root}
}

func (c *compilation) fileErrors(im *zoneImport) {
	var fe *zones.FileErrors
	if !errors.As(im.importErr, &fe) {
		c.errf(im.file.rng, "Invalid zone file", "Zone %q: %v.", im.zs.origin, im.importErr)
		return
	}
	for _, e := range fe.Errs {
		summary := "Invalid zone file record"
		if e.Col > 0 {
			summary = "Zone file syntax error"
		}
		if errors.Is(e.Err, zones.ErrInclude) {
			summary = "Invalid $INCLUDE"
		}
		col := max(e.Col, 1)
		rng := hcl.Range{Filename: e.File, Start: hcl.Pos{Line: e.Line, Column: col}, End: hcl.Pos{Line: e.Line, Column: col}}
		c.errf(rng, summary, "Zone %q (file attribute at %s): %v.", im.zs.origin, posString(im.file.rng), e.Err)
	}
	if fe.Omitted > 0 {
		c.errf(im.file.rng, "Too many zone file errors", "Zone %q: %d more errors in %s and the files it includes are not shown (at most %d are).",
			im.zs.origin, fe.Omitted, im.file.path, zones.MaxFileErrors)
	}
}

// waitImports waits for every zone file import and reports their errors, in the order
// of the zone blocks.
func (c *compilation) waitImports() {
	for _, im := range c.imports {
		<-im.done
		if im.readErr != nil {
			c.errf(im.file.rng, "Cannot read zone file", "Zone %q: %v.", im.zs.origin, im.readErr)
			continue
		}
		if im.importErr != nil {
			c.fileErrors(im)
		}
	}
	c.imports = nil
}
