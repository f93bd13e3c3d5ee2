// Package policy is the glbdns policy language and what it compiles to: HCL files decoded
// and validated with every error at file:line:col, compiled into an immutable Snapshot,
// and the selection that answers a load-balanced name from it. The language is documented
// for operators in docs/policy.md; this is the design record for whoever changes it.
//
// # Use
//
//	files, err := policy.ReadPath(path)   // a .hcl file, or a directory's *.hcl, sorted
//	snap, diags := policy.Load(files)     // or policy.LoadPath(path)
//	snap, diags = compiler.Load(files)    // a Compiler: the same, reusing its last Load
//	sel := svc.Select(client, qtype, health, dst) // per query: indexes only, allocates nothing
//	ex := svc.Explain(client, qtype, health)      // the same selection, and why (glbctl explain)
//
// Load is all or nothing: on any error the snapshot is nil and the diagnostics hold every
// error found, not the first, each built by one helper (decoder.errf) from the range of
// the attribute or block at fault. A failed reload therefore changes nothing: the server
// keeps serving its old snapshot. A Snapshot is never modified after Load returns; the
// server swaps whole snapshots with an atomic pointer and reads them without locks. The
// one mutable state inside is the round-robin cursors, which are atomic.
//
// # Compile
//
// Load follows caddy's lifecycle: decode every block against its schema, provision
// (defaults from package api, lower-case FQDNs, pool names resolved to pointers, members
// to dense indexes, everything a query needs precomputed), validate, and only then hand
// out the snapshot. Blocks compile in dependency order, whatever the file order: the
// geoip block, pools, zones, then services, which refer to all three. Files: load.go
// (reading, the order, the hash; a compilation and its units), compile.go (the Compiler
// and its records), diag.go (diagnostics and value decoding), content.go
// (the schema fast path), pool.go (pools, members, checks), zone.go (zones and their
// files), service.go (services), steer_load.go (the geoip block, the steering attributes
// of pools and the failover, geo and nearest tables).
//
// Parsing is package hclparse: hclsyntax's AST exactly, built faster for the plain HCL
// that large policies are written in, and large files parsed in concurrent chunks. Zone
// files import on goroutines of their own while services compile. Load of 10,000 services
// stays well under a second on 2 cores (BenchmarkLoadLarge10k); none of the speed changes
// a diagnostic.
//
// # Compile only what changed
//
// The policy store compiles the whole policy on every admin API write, the operator's
// files and one document per managed pool or service, and a write changes one document
// of thousands. A Compiler (compile.go) compiles them as Load does, through the same
// code, but reuses what its last successful Load made of every file whose name and
// contents are the same (compared byte for byte against its copy): 10,000 managed pools
// and 10,000 services cost some 15-20 ms a write instead of half a second
// (BenchmarkCompilerOneChange against BenchmarkLoadManaged10k).
//
// What is kept. After a Load that succeeded without any diagnostic, a record per file: a
// copy of its bytes, and for each top-level block what it compiled to: a geoip block's
// paths; a pool; a zone's recipe (its SOA, NS set and records, as decoded, before
// anything is inserted), the zone built and the services inserted into it; a service.
// The compiled objects are the snapshot's own; the syntax trees are dropped (20,000
// documents' trees take some 125 MiB, their compiled objects a few). Replaying a record
// reports nothing, because its Load reported nothing.
//
// What every Load does again. The files are sorted (the store hands them over sorted,
// which one pass sees; files in another order go where the last Load's positions put
// them), compared with the records, and the changed ones parsed. Every check between
// blocks is made again: duplicate geoip blocks, pools, zones and services, and which
// zone a service lives in; but when no block compiled from source takes the name of a
// pool or service of a record, the records' names are known distinct and the maps of
// names (PoolByName, and the ranges of pools and services) start from the last Load's,
// less the files dropped, instead of 20,000 lookups and insertions (prefill). The
// snapshot-wide structures are built again: Pools and PoolByName, Members and Services,
// the zone set, Files and Hash (on a goroutine of its own while services compile; the
// Hash sums a digest per file, which a record keeps, so only new files are hashed).
// Numbers (Member.Index, the index of health views, and Service.Ref, the zones' service
// references) are dense, 0..len-1. Load gives them in declaration order; so does a
// Compiler's Load that removes or changes a pool or service, but one that only adds
// keeps the last snapshot's numbers and numbers what it adds after them (stableMembers,
// stableRefs), so that a new pool or service does not move the numbers of half the
// others. Blocks take what they can from their records:
//
//   - A pool is a function of its block alone. Its members keep the indexes of the
//     snapshot it was compiled for; in declaration order, when the pools before it now
//     hold another number of members, it is copied with its members renumbered.
//   - A service is reused when what compiling it reads besides its block is what it
//     was: its pools and fallback (the very objects, or copies that only renumbered
//     their members, and then the service is copied with its candidates gathered from
//     them), the origin of its zone, and for a service that needs GeoIP the geoip
//     block's databases. A service whose Ref moved is copied. Otherwise its file is
//     parsed again and it compiles as in Load.
//   - A zone is the zone of the record when its file has the same contents (SHA-256)
//     and it receives the same services under the same Refs; it extends that zone
//     (zones.Zone.Extend, which copies the index of names and the nodes it changes) when
//     it receives them and new ones besides, under numbers kept; otherwise it is built
//     again from its recipe, its file imported again and the services inserted.
//   - Any block whose record would report something (a duplicate) or no longer fits
//     compiles from its source, so every diagnostic comes from the code Load runs, in
//     Load's order.
//
// Immutability. A Load writes only to objects it made: a pool, member, service or zone
// of a record is shared as it is or copied, never modified, and records are copied (per
// file) before any change, so the snapshot still serving while the next one is built,
// and a Compiler whose Load failed, are exactly as they were. The one mutable state, the
// round-robin cursors, goes on turning in a shared service; copies start at zero, as
// Load's services do.
//
// Equality is tested, not only argued: random edit sequences over every golden policy
// and a generated one (compile_test.go, FuzzCompiler) compare each Compiler.Load with a
// Load of the same files (reflect.DeepEqual of the snapshots, zones by what they hold;
// where the numbers differ, everything but the numbers, and the numbering's invariants;
// diagnostics with their ranges) and check that earlier snapshots did not change.
//
// # Select
//
// There is one selection algorithm (select.go). Every service walks an order of entries,
// each a set of candidate members with a need (how many must be usable for it to count as
// up) and a method with its own round-robin cursor. A failover, geo or nearest service
// has one entry per pool, needing the pool's min_healthy, and orders them per client
// (steer.go: the service's order, the geo rule the client matches, or distance minus
// bias); a round_robin, weighted or client_subnet_hash service is compiled to one entry
// holding all its pools' members, needing one, in an order of one. The walk answers from
// the first entry that is up; when none is, when_all_down decides (the first entry with
// any usable members, else fail open; SERVFAIL; or the fallback pool, itself an entry with
// the service's method and a cursor of its own). The entry's method then picks the
// members, with the algorithms of package balance. The ECS scope of the answer is the
// number of client address bits it depended on: the GeoIP network or rule prefix that
// ordered the pools, the hash prefix of client_subnet_hash, the longer of them, never
// longer than the source prefix (RFC 7871 section 7.2.1).
//
// Select indexes slices and asks Health about the candidates it walks: no lookup by name,
// no clock, no allocation once dst is large enough; the DNS fast path calls SelectFor so
// as not to copy the Client. Explain runs the same walk with a trace.
//
// least_connections (leastconn.go) is the one method that reads more than Up: the health
// view's load readings, through the optional Loads interface (a Health without them, such
// as AllUp, makes it weighted). It draws in proportion to spare capacity rather than
// answering the least loaded member, because a cached DNS answer reaches many clients at
// once (docs/policy.md has the rule and the herding simulation). A pool balanced by it
// needs a load block (loadsignal.go), which healthd reads.
//
// # Decisions
//
// Weight 0 takes a member out of rotation for every method, not only weighted (a drain,
// which the admin API sets, is health's business: a drained member is not Up). when_all_down
// = "all" fails open over the members of a weight above 0 (all of them if every one has
// weight 0). The
// fallback pool answers with its usable members, or all of them when none is usable. A
// host-name service answers one CNAME (RFC 2181 section 10.1) and cannot mix host names
// with addresses (RFC 1034 section 3.6.2). The snapshot Hash covers the .hcl files and
// the zone files they name, not the GeoIP databases: the policy only records their paths
// (Snapshot.GeoIPPaths), and the server opens and watches them, so that a database update
// needs no policy reload.
//
// # Related packages
//
// policy/hclparse parses; policy/balance holds the member selection algorithms (round
// robin, weighted sampling, rendezvous hashing), pure and in place; policy/geoip reads
// GeoIP2 databases into the Client.Geo that geo and nearest services order by;
// policy/store keeps the objects managed through the admin API beside the operator's
// files and compiles both with Load (or a Compiler).
package policy
