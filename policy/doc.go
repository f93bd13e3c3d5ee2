// Package policy is the glbdns policy language: HCL decoding with hcl.Diagnostics (every
// error carries file:line:col), validation, compilation into an immutable Snapshot, and the
// member selection algorithms that answer a load-balanced name.
//
// CONTRACT (written before the implementation; dnsserver, healthd and cmd code against it):
//
//	// Loading. path is a .hcl file or a directory of .hcl files (not recursive, sorted).
//	// On any error the snapshot is nil and diags holds every error found (not just the first).
//	snap, diags := policy.LoadPath(path)
//	snap, diags := policy.Load([]policy.File{{Name: "a.hcl", Data: src}}) // zone-file paths
//	                                            // resolve relative to filepath.Dir(Name)
//
//	// Health is how selection sees member health. Implementations must be safe for
//	// concurrent lock-free reads. policy.AllUp{} says every member is up.
//	type Health interface{ Up(m *Member) bool }
//
//	// Client is what selection may key on: the ECS address when the query carried ECS
//	// (already masked to SourcePrefix), else the query's source address (SourcePrefix =
//	// Addr.BitLen(), ECS = false).
//	type Client struct { Addr netip.Addr; SourcePrefix int; ECS bool
//	                     Geo geoip.Info; HasGeo bool } // Geo: filled by the server, once
//	                     // per query, only when svc.NeedsGeo (geo and nearest services)
//	city, asn := snap.GeoIPPaths() // the geoip block's databases; the server opens/watches them
//
//	// Select chooses the answer for one query. qtype A picks IPv4 members, AAAA IPv6
//	// members; a service whose pools hold host-name members answers a CNAME for every
//	// qtype. dst is a reusable buffer (Select appends to dst[:0]); the hot path allocates
//	// nothing.
//	sel := svc.Select(client, qtype, health, dst)
//	type Selection struct {
//	    Members  []*Member // the chosen members, distinct, len <= svc.Answers
//	    CNAME    bool      // Members[0].Host is the CNAME target
//	    ServFail bool      // when_all_down = "servfail" and nothing usable
//	    AllDown  bool      // nothing was usable; when_all_down decided the answer
//	    Scope    int       // ECS scope prefix the answer depended on (0 if none)
//	}
//	// len(Members) == 0 && !ServFail means NODATA (no member of the asked family).
//
//	// Explain runs the same selection and says why, for glbctl explain.
//	ex := svc.Explain(client, qtype, health) // ex.String() is a human-readable report
//
// The policy language itself is documented in docs/policy.md.
//
// Decisions beyond the contract: weight 0 drains a member for every method, not only
// weighted; when_all_down = "all" fails open over the non-drained members (all of them if
// every one is drained); the fallback pool answers with its usable members, or all of
// them when none is usable; a host-name service answers one CNAME (RFC 2181 section 10.1);
// the snapshot Hash covers the .hcl files and the zone files they name (not the GeoIP
// databases, which the server watches on its own). Steering services (failover, geo,
// nearest) order pools, walk them as failover by min_healthy, and pick members with each
// pool's method; see steer.go and docs/policy.md. The algorithms
// themselves live in policy/balance; Select only filters and indexes.
package policy
