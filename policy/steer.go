package policy

import (
	"math"
	"math/bits"
	"net/netip"

	"github.com/glbdns/glbdns/policy/geoip"
)

// This file orders a steering service's pools for one client, the first step of the
// selection walk (select.go): failover keeps the service's order, geo takes the order of
// the rule the client matches, nearest sorts by distance minus bias. Each also says how
// many leading client address bits the order depended on, for the ECS scope.

// matchKind is what decided a geo service's pool order.
type matchKind uint8

const (
	matchDefault matchKind = iota
	matchNetwork
	matchASN
	matchCountry
	matchContinent
)

func (k matchKind) String() string {
	return [...]string{"default", "networks", "asns", "countries", "continents"}[k]
}

// order returns the order of the walk for the client (indexes into s.entries) and the
// number of leading client address bits it depended on.
func (s *Service) order(c *Client, buf *[maxSteerPools]uint8, tr *trace) ([]uint8, int) {
	switch s.Steering {
	case SteerGeo:
		rule, kind, scope := s.geo.match(c)
		if tr != nil {
			tr.rule = s.geo.describe(rule, kind)
		}
		return s.geo.orders[rule], scope
	case SteerNearest:
		return s.nearest(c, buf, tr)
	case SteerFailover:
		if tr != nil {
			tr.rule = "failover: the service's pool order"
		}
	}
	return s.poolOrder(), 0 // failover, and a plain service's one entry
}

// nearest orders the pools by great-circle distance from the client minus each pool's
// bias (pools without a location last, ties in service order). Without a client location
// the service's order answers; the scope is then still the City network, because having
// no location is itself what the database says about that network.
func (s *Service) nearest(c *Client, buf *[maxSteerPools]uint8, tr *trace) ([]uint8, int) {
	if !c.HasGeo {
		if tr != nil {
			tr.rule = "nearest: no GeoIP data for the client; the service's pool order"
		}
		return s.poolOrder(), 0
	}
	scope := netBits(c.Geo.CityNetwork, c.Addr)
	if !c.Geo.HasLocation {
		if tr != nil {
			tr.rule = "nearest: the client has no location; the service's pool order"
		}
		return s.poolOrder(), scope
	}
	var score [maxSteerPools]float64
	n := len(s.entries)
	order := buf[:n]
	for i := range s.entries {
		order[i] = uint8(i)
		score[i] = math.Inf(1)
		if p := s.entries[i].pool; p.HasLocation {
			score[i] = geoip.Distance(c.Geo.Lat, c.Geo.Lon, p.Lat, p.Lon) - p.Bias
		}
	}
	// Insertion sort: stable, in place, and n is small.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && score[order[j]] < score[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	if tr != nil {
		tr.rule = "nearest: distance from the client's location minus bias"
		tr.scores = append([]float64(nil), score[:n]...)
	}
	return order, scope
}

// netBits is the prefix length of a GeoIP network; a lookup that failed (invalid network)
// says nothing about the neighbours, so the answer is scoped to the whole address.
func netBits(p netip.Prefix, a netip.Addr) int {
	if !p.IsValid() {
		return a.BitLen()
	}
	return p.Bits()
}

// match finds the geo rule for the client with the documented precedence: networks
// (longest prefix) > asns > countries > continents > default. It returns the rule index
// (len(rules) for the default), what matched, and how many leading client address bits
// the choice depended on (RFC 7871 section 7.2.1): the matched network's length, the
// GeoIP network of the data used, widened so that the scope contains no address a more
// specific network rule would answer differently.
func (g *geoTable) match(c *Client) (int, matchKind, int) {
	a := c.Addr.Unmap()
	rule, kind, scope := len(g.rules), matchDefault, 0
	for _, n := range g.nets {
		if n.p.Contains(a) {
			rule, kind, scope = int(n.rule)-1, matchNetwork, n.p.Bits()
			break
		}
	}
	if kind == matchDefault && c.HasGeo {
		// The ASN lookup mattered once ASN rules exist (matching or not), and so did the
		// City lookup when the ASN rules did not decide.
		info := &c.Geo
		if g.needASN {
			scope = netBits(info.ASNNetwork, a)
			if r := g.asn[info.ASN]; r != 0 && info.ASN != 0 {
				rule, kind = int(r)-1, matchASN
			}
		}
		if kind == matchDefault && g.needCity {
			scope = max(scope, netBits(info.CityNetwork, a))
			if i := code2(info.Country); i >= 0 && g.country[i] != 0 {
				rule, kind = int(g.country[i])-1, matchCountry
			} else if i := code2(info.Continent); i >= 0 && g.continent[i] != 0 {
				rule, kind = int(g.continent[i])-1, matchContinent
			}
		}
	}
	// A more specific network rule inside the scope would answer some of its addresses
	// differently: lengthen the scope until it excludes that network. g.nets is longest
	// first, so the loop ends at the first rule no longer than the scope.
	for _, n := range g.nets {
		if n.p.Bits() <= scope {
			break
		}
		if n.p.Contains(a) {
			continue // the matched rule itself (or a longer one that holds the address)
		}
		if cp := commonBits(a, n.p.Addr()); cp >= scope {
			scope = cp + 1
		}
	}
	return rule, kind, scope
}

// commonBits is the length of the common leading bits of two addresses; -1 across
// families.
func commonBits(a, b netip.Addr) int {
	if a.Is4() != b.Is4() {
		return -1
	}
	if a.Is4() {
		x, y := a.As4(), b.As4()
		return bits.LeadingZeros32(be32(x[:]) ^ be32(y[:]))
	}
	x, y := a.As16(), b.As16()
	hi := bits.LeadingZeros64(be64(x[:8]) ^ be64(y[:8]))
	if hi < 64 {
		return hi
	}
	return 64 + bits.LeadingZeros64(be64(x[8:])^be64(y[8:]))
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 { return uint64(be32(b[:4]))<<32 | uint64(be32(b[4:])) }
