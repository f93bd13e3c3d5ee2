package policy

import (
	"net/netip"
	"time"

	"github.com/glbdns/glbdns/dnssec"
	"github.com/glbdns/glbdns/policy/balance"
	"github.com/glbdns/glbdns/zones"
)

// Snapshot is a compiled, validated policy. It is immutable once built: the server swaps
// whole snapshots atomically (atomic.Pointer) and reads them without locks.
type Snapshot struct {
	// Zones holds every zone with its static data; load-balanced names are stored in it as
	// zones.ServiceRef values that index Services.
	Zones *zones.Set
	// Services, indexed by zones.ServiceRef.
	Services []*Service
	// Pools in declaration order (files sorted by name, blocks in file order).
	Pools []*Pool
	// PoolByName finds a pool by its name.
	PoolByName map[string]*Pool
	// Members of every pool, indexed by Member.Index (dense, 0..len-1). A health view
	// built for this snapshot is a slice of the same length.
	Members []*Member
	// Signers sign the zones with a dnssec block, by origin (nil: none is signed). The
	// keys are read at every Load; Hash does not cover them.
	Signers map[string]*dnssec.Signer
	// Hash is a hex SHA-256 digest of the source files' names and contents (over the sum
	// of a SHA-256 per file, see hashSources): any file added, removed, renamed or changed
	// changes it. It tells operators (and metrics) which policy is loaded.
	Hash string
	// Files are the source files the snapshot was built from, sorted.
	Files []string

	// geoCity and geoASN are the databases the geoip block names, resolved against the
	// directory of the .hcl file; see GeoIPPaths.
	geoCity, geoASN string
}

// GeoIPPaths returns the GeoIP2 databases the policy's geoip block names (City or Country,
// and ASN), each "" when not set. The policy only records them: the server opens and
// watches them (geoip.NewWatcher) and fills Client.Geo for services that set NeedsGeo, so
// that a database update never needs a policy reload.
func (s *Snapshot) GeoIPPaths() (city, asn string) { return s.geoCity, s.geoASN }

// Service is a load-balanced name: its selection method, its pools and answer shape.
type Service struct {
	// Ref is the service's index in Snapshot.Services (and its zones.ServiceRef).
	Ref zones.ServiceRef
	// Name is the owner name, lower case and fully qualified ("www.glb.example.com.").
	// It may start with "*." for a wildcard service.
	Name string
	// File is the policy file that declares the service (as given to Load).
	File string
	// Zone is the origin of the zone the name lives in.
	Zone string
	// Method chooses members: round_robin, weighted or client_subnet_hash. For a steering
	// service it is the default of the pools that set no method of their own.
	Method Method
	// Steering chooses the order in which pools are tried (policy failover, geo or nearest);
	// SteerNone concatenates the members of all pools into one candidate set.
	Steering Steering
	// NeedsGeo says Select reads Client.Geo: the server must look the client up in the
	// GeoIP databases (once per query) before calling Select, and only then.
	NeedsGeo bool
	// GeoCity and GeoASN say which GeoIP databases Select reads for a NeedsGeo service
	// (City/Country for nearest and for rules on countries or continents; ASN for rules on
	// ASNs): the lookup skips the others. A geo service with network rules only needs
	// neither.
	GeoCity, GeoASN bool
	// Pools in the service's order. Without steering, all members of all pools are
	// candidates (pools are concatenated); with it, this is the failover order, the geo
	// default order (unless default_pools says otherwise) and the nearest tie order.
	Pools []*Pool
	// TTL of the answers, in seconds (default 30).
	TTL uint32
	// Answers is how many distinct members an answer carries (default 1); 0 means every
	// usable member (answers = 0 in the policy: "all").
	Answers int
	// WhenAllDown decides the answer when no candidate member is usable (default AllDownAll).
	WhenAllDown AllDown
	// Fallback is the pool answered from when WhenAllDown == AllDownFallback.
	Fallback *Pool
	// HashPrefix4 and HashPrefix6 truncate the client address before client_subnet_hash
	// hashes it (defaults 24 and 56).
	HashPrefix4, HashPrefix6 int

	// Compiled at load time so that Select only indexes. entries are the selection walk's:
	// one per pool of a steering service, or plain[:] for a plain service, whose one entry
	// is allocated with the Service (a policy of 100,000 services loads, and stays in
	// memory, with 100,000 allocations fewer).
	hasFam   [numFamilies]bool // the pools have members of the family (famV4, famV6, famHost)
	cname    bool              // the members are host names, answered as a CNAME
	entries  []entry
	plain    [1]entry
	srv      *srvTable    // the SRV targets and weights; nil when the members have no port
	geo      *geoTable    // geo services: the rule tables
	fallback *entry       // the fallback pool (when_all_down = "fallback")
	rand     balance.Rand // balance.Global{} outside tests
}

// Steering is how a service orders its pools before walking them as failover.
type Steering uint8

const (
	// SteerNone treats all pools as one set of members (round_robin, weighted,
	// client_subnet_hash policies).
	SteerNone Steering = iota
	// SteerFailover walks the pools in the service's order.
	SteerFailover
	// SteerGeo walks the pool order of the geo rule the client matches.
	SteerGeo
	// SteerNearest walks the pools by great-circle distance from the client, minus bias.
	SteerNearest
)

// Method is a member selection algorithm.
type Method uint8

const (
	// RoundRobin rotates the usable members per query.
	RoundRobin Method = iota
	// Weighted picks members at random in proportion to their weights (0 = out of rotation).
	Weighted
	// ClientSubnetHash picks members by rendezvous hashing of the client's subnet.
	ClientSubnetHash
	// LeastConnections picks members at random in proportion to their spare capacity,
	// from the load (active connections) healthd reads; see leastconn.go.
	LeastConnections
)

// AllDown is what a service answers when none of its candidate members is usable.
type AllDown uint8

const (
	// AllDownAll answers as if every member were up (fail open).
	AllDownAll AllDown = iota
	// AllDownServFail answers SERVFAIL.
	AllDownServFail
	// AllDownFallback answers from the service's Fallback pool: its usable members, or all
	// of them when none is usable.
	AllDownFallback
)

// Pool is a named group of members with the checks that healthd runs against them.
type Pool struct {
	Name string
	// File is the policy file that declares the pool (as given to Load).
	File    string
	Region  string
	Members []*Member
	Checks  []*Check
	// Load is the pool's load block (nil without one): what least_connections needs.
	Load *LoadSignal
	// ColdStart is the pool's cold_start block (nil without one): healthd's probing of
	// members that may scale to zero.
	ColdStart *ColdStart

	// The attributes below matter only to steering services (failover, geo, nearest).

	// Lat and Lon are the pool's location in degrees, valid when HasLocation; the nearest
	// policy measures the client's distance to it.
	Lat, Lon    float64
	HasLocation bool
	// Bias in kilometres is subtracted from the client's distance by nearest: a positive
	// bias draws clients from farther away, a negative one sends them elsewhere sooner.
	Bias float64
	// Method chooses members inside the pool when HasMethod; else the service's method.
	Method    Method
	HasMethod bool
	// MinHealthy is how many usable members the pool needs to count as up (default 1);
	// when MinHealthyPercent > 0 it is that percentage of the pool's members of the asked
	// family instead, rounded up.
	MinHealthy        int
	MinHealthyPercent int

	// Port is the default port of the pool's members in SRV answers (0: none).
	Port uint16

	// UnknownIs says how the pool's members count while their health is unknown (never
	// probed yet, or no fresh healthd reporter after the grace period): UnknownDefault
	// leaves it to the server's -health-unknown-is flag (up unless set otherwise).
	UnknownIs UnknownIs
}

// UnknownIs is a pool's unknown_is attribute.
type UnknownIs uint8

const (
	// UnknownDefault: the server's default (-health-unknown-is, "up" unless set).
	UnknownDefault UnknownIs = iota
	// UnknownUp fails open: a member nobody has verdicts on keeps getting traffic.
	UnknownUp
	// UnknownDown fails closed: a member needs a fresh "up" verdict to be answered.
	UnknownDown
)

// String returns "up", "down" or "" (the default).
func (u UnknownIs) String() string {
	switch u {
	case UnknownUp:
		return "up"
	case UnknownDown:
		return "down"
	}
	return ""
}

// Member is one backend: an address (answered as A or AAAA by family) or a host name
// (answered as a CNAME, for serverless and CDN endpoints).
type Member struct {
	// Index is the member's dense index in Snapshot.Members (valid for this snapshot only).
	Index int
	// Pool and Name form the member's stable identity across reloads ("web-eu", "fra-1").
	Pool, Name string
	// Addr is the member's address; invalid (zero) for a host-name member.
	Addr netip.Addr
	// Host is the CNAME target of a host-name member, lower case, fully qualified; "" for
	// an address member.
	Host string
	// Weight for the weighted method; 0 takes the member out of rotation for every method.
	// Default 1.
	Weight uint32
	// Port is the port an SRV answer gives for the member: its port attribute, else its
	// pool's; 0 when neither sets one.
	Port uint16
	// Checks are the pool's checks with this member's overrides applied.
	Checks []*Check
	// Load is its pool's load signal (on the port of its own check, when it overrides
	// the pool's), nil when the pool has none.
	Load *LoadSignal

	idHash uint64 // balance.StringHash(ID()): the rendezvous identity, fixed at load
}

// ID is the member's stable identity, "pool/member", used by the health API.
func (m *Member) ID() string { return m.Pool + "/" + m.Name }

// Check is one health check of a pool's members, as healthd runs it.
type Check struct {
	// Name is the check block's label ("http").
	Name string
	// Type is the prober: "http", "https", "tcp" or "dns".
	Type string
	// Port to probe on the member's address (for host-name members, on the host).
	Port int
	// Interval between probes (default 5s), Timeout of one probe (default 2s, < Interval).
	Interval, Timeout time.Duration
	// Rise consecutive successes bring a member up, Fall consecutive failures take it
	// down (defaults 2 and 3, as gdnsd's up_thresh/down_thresh spirit: quick to fail over,
	// a little slower to trust a recovery).
	Rise, Fall int

	// HTTP(S): Method (default GET), Path (default "/"), Host header, extra Headers,
	// ExpectStatus ranges (default 200-399), ExpectBody substring or ExpectBodyRegexp,
	// ServerName for TLS SNI, Insecure skips TLS verification, FollowRedirects.
	Method           string
	Path             string
	Host             string
	Headers          map[string]string
	ExpectStatus     []StatusRange
	ExpectBody       string
	ExpectBodyRegexp string
	ServerName       string
	Insecure         bool
	FollowRedirects  bool

	// TCP: Send these bytes after connecting and expect a reply starting with Expect.
	Send, Expect string

	// DNS: query QName/QType and expect rcode ExpectRcode (default NOERROR) and, when set,
	// an answer containing ExpectAnswer (the RR's rdata in presentation format).
	QName, QType, ExpectRcode, ExpectAnswer string
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }
