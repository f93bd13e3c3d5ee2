// Package dnsserver is glbdns's authoritative DNS server: UDP and TCP listeners, message
// parsing, EDNS(0) and EDNS Client Subnet, and answers built from the zones, the policy
// snapshot and the current health view.
//
// # Serving
//
// UDP is served by Config.UDPWorkers read loops, each on its own socket bound with
// SO_REUSEPORT so that the kernel spreads queries across them; a loop reads and writes in
// batches and answers inline, never one goroutine per query. On Linux each socket leaves
// the Go netpoller and its loop waits in a blocking recvmmsg, as a C server's UDP thread
// does (udp_linux.go says why and what that asks of the runtime: the loop keeps its P, so
// Start raises GOMAXPROCS to one more than the number of such loops); elsewhere the loop
// uses golang.org/x/net/ipv4's batches through the netpoller. TCP (RFC 7766) uses one
// goroutine per connection: 2-byte length framing, pipelined queries answered in order, an
// idle timeout between queries (Config.TCPIdleTimeout), one deadline for the rest of a
// query and its answer once its length has arrived (Config.TCPQueryTimeout), a bounded
// number of connections in all and per source prefix, where a new connection closes the
// longest-idle one that keeps it out, or is accepted and closed when none is idle
// (tcpconns.go), and an optional bound on queries per connection. Server.Handle is
// the whole query path, wire in and wire out, usable in process.
//
// The live state is one atomic pointer (server.go, state): the snapshot, the health view
// built for it, the GeoIP database (Server.SetGeo; the daemon passes each one its
// geoip.Watcher swaps in), the metrics' zone slots and answer counters for that snapshot,
// and the fast path's wire data. A query loads it once, without locks, and so no two of
// these can disagree for it: a view built for one snapshot's Member.Index numbering is
// never paired with another snapshot, nor a member with another snapshot's counters. Every
// change (SetSnapshot, SetHealthSource, HealthChanged, SetGeo) builds a new state under one
// mutex and swaps it in whole. Before the first snapshot every query gets SERVFAIL (try
// another server) rather than REFUSED (which resolvers may treat as lame delegation).
//
// Panics are recovered in every goroutine and per query, logged with their stack and
// counted (Server.Panics); a malformed message never stops the server.
//
// # Which reply for what
//
// Every message is parsed once (parse.go), and both paths answer from that parse. Before
// the body is read, a header filter (as miekg's acceptfunc) decides:
//   - shorter than the 12-byte header: no reply (there is no id to answer to);
//   - QR=1 (a response): no reply, since answering responses can loop between servers and
//     any reply to garbage can be used to amplify;
//   - opcode NOTIFY or UPDATE: REFUSED (we take neither: RFC 1996 Section 3.11 and RFC 2136
//     Section 3 allow refusing), other opcodes but QUERY: NOTIMP (RFC 1035 Section 4.1.1);
//   - QDCOUNT other than 1, or more records than a query carries (ANCOUNT > 1, NSCOUNT > 1,
//     ARCOUNT > 2, as miekg's DefaultMsgAcceptFunc): FORMERR with the id and no question.
//
// Then the whole message is walked, and anything that does not hold together is FORMERR
// with the id and, when it parsed, the question:
//   - the question: its type and class present; no compression pointer in its name,
//     because the first name of a message can only point into the header or forward (RFC
//     1035 Section 4.1.4);
//   - every name, in every section, label by label: no extended label type (0x40, 0x80;
//     RFC 6891 Section 5 obsoletes them), every label inside the message, at most 255
//     octets in all (RFC 1035 Section 2.3.4: labels are at most 63 octets by their length
//     byte), counted over the labels that compression pointers lead to;
//   - compression pointers followed: each must point after the header and before the
//     labels it ends, so that the walk only goes backwards and no loop is possible, and at
//     most 126 in one name (the bound miekg/dns uses);
//   - every record against the section counts: owner, fixed fields and RDLENGTH inside
//     the message (a count larger than the records present is FORMERR); bytes after the
//     last record are ignored, as miekg/dns ignores them;
//   - the OPT and its options (below).
//
// RDATA other than the OPT's is framed by RDLENGTH and not read: nothing a query carries
// besides its question and OPT is used (there is no TSIG, no IXFR, no UPDATE), and
// checking records we never read would cost a parse of each for no answer that changes.
// So RDATA that does not parse as its type (an A record of 3 octets, a broken name inside
// an SOA or TSIG) is not FORMERR, nor is an EDNS option other than ECS and COOKIE whose
// content breaks its own RFC (a TCP keepalive of 3 octets, RFC 7828): we implement none of them,
// so they are unknown options, which are ignored (RFC 6891 Section 6.1.2).
// TestRecordsFramedNotRead pins this.
//
// EDNS(0), RFC 6891: more than one OPT, an OPT outside the additional section or an OPT
// not owned by the root is FORMERR (Section 6.1.1), without an OPT in the reply. A version
// above 0 is BADVERS with an OPT of version 0 (the extended rcode's upper bits in it) and
// no answer (Section 6.1.3). Malformed option framing is FORMERR. Unknown options are
// ignored and not echoed (Section 6.1.2). The reply to an EDNS query carries an OPT
// advertising 1232 bytes (the DNS Flag Day 2020 size: an IPv6 minimum MTU minus headers,
// so that nothing is fragmented), with the DO bit copied from the query (RFC 3225 Section
// 3; in a signed zone DO also asks for the signatures, sign.go). Both paths write it with one function
// (reply.go, appendOPT), after the rest of the reply: the general path has miekg/dns pack
// the message without it, appends it and counts it in ARCOUNT, and keeps the whole within
// the size limit below.
//
// UDP size: 512 bytes without EDNS (RFC 1035 Section 4.2.1); with EDNS the requester's
// size, raised to 512 when lower (RFC 6891 Section 6.2.5) and capped at our own 1232 (a
// deliberate choice: a 4096-byte UDP reply would fragment, and TCP is the fallback). A
// reply that does not fit is sent with TC=1, the question and the OPT, and no records at
// all, since RFC 2181 Section 9 forbids partial RRsets; the client retries over TCP, which
// carries up to 65535 bytes.
//
// EDNS Client Subnet, RFC 7871: FAMILY must be 1 or 2 (dig's "family 0, prefix 0" is
// refused too), SOURCE PREFIX-LENGTH at most 32 or 128, exactly ceil(SOURCE/8) address
// octets with every bit beyond SOURCE zero, SCOPE 0 in a query, at most one ECS option;
// anything else is FORMERR (Section 7.1.2 says SHOULD; we do), with an OPT but no ECS. The
// reply echoes FAMILY, SOURCE PREFIX-LENGTH and ADDRESS with the SCOPE the answer depended
// on (Section 7.2.1): the selection's scope for a load-balanced answer, 0 for static data,
// negative answers and a /0 query. Selection keys on the ECS subnet when SOURCE > 0, and
// on the query's source address otherwise: a /0 option means the client opted out.
//
// DNS cookies, RFC 7873 with RFC 9018's server cookies (cookie.go), when the server has
// secrets: a COOKIE option of 8 octets, or 16 to 40, one per message, else FORMERR. The
// reply's OPT carries the client cookie and our server cookie: the one sent, when we
// minted it for this address less than half an hour ago, else a fresh one. A server
// cookie that is not ours (another secret, another address, older than an hour, another
// format) is BADCOOKIE over UDP, with a fresh cookie and no answer; over TCP it is
// answered. Without secrets the option is ignored, as an unknown one.
//
// Response-rate limiting (rrl.go), when configured, comes last, on both paths alike
// (reply.go, send): a UDP reply beyond the rate of its client network and response is
// dropped, or every Slip-th one sent as an empty TC=1 reply (header, question, OPT). TCP,
// exempt clients and a valid server cookie are never limited.
//
// Classes and types: only class IN is served; CHAOS TXT id.server, hostname.bind,
// version.bind and version.server only when configured; every other CHAOS question and
// every other class is REFUSED, disclosing nothing. AXFR and IXFR are REFUSED (RFC 5936 Section
// 4.2 allows it; our zone data comes from the policy, not from transfers).
//
// # Answers
//
// RFC 1034 Section 4.3.2, as an authoritative-only server: the zone is the longest
// suffix among the snapshot's zones; a name outside all of them is REFUSED without AA.
// Answers from our zones have AA=1; RA is always 0; RD and CD are copied; the question is
// echoed with the asker's case (resolvers compare it, some use the case as entropy).
//
//   - NXDOMAIN and NODATA put the zone's SOA in authority with the negative TTL as its TTL
//     (RFC 2308 Section 3: the lesser of the SOA's TTL and its MINIMUM).
//
//   - At or below a delegation: a referral with AA=0, the NS set in authority and the
//     zone's glue in additional.
//
//   - A CNAME is followed while its target stays in our zones, at most 8 steps (a safety
//     net: loops and longer chains, through host-name services too, are refused when the
//     policy loads); every CNAME and the final data go in the answer, and the
//     rcode is that of the last name (RFC 6604 Section 3). A chain leaving our zones stops
//     there with NOERROR; the resolver continues. QTYPE=CNAME is not chased.
//
//   - A load-balanced name asks the policy: A and AAAA answers hold the selected members
//     with the service TTL and the asked name as owner; a host-name service answers a
//     CNAME to the chosen host (for every qtype), chased when the host is in our zones;
//     "servfail" when all are down is SERVFAIL; no member of the asked family is NODATA with
//     the SOA. Other types at an address service are NODATA.
//
//   - SRV at a service whose members have ports (RFC 2782; policy's srv.go and
//     docs/policy.md, "SRV"): one SRV record per member SelectSRV chose (priority from
//     the pool walk, weight, port, target), owned by the asked name with the service TTL,
//     and in the additional section the A or AAAA record of each address member's target.
//     Targets are written uncompressed (RFC 2782), as miekg packs them; miekg still
//     records them for compression, so each additional record's owner is a pointer to its
//     target in the SRV record. When the reply
//     does not fit the UDP limit, the additional records are dropped first (they only save
//     the client a query); only when the SRV records alone do not fit is it truncated.
//     SERVFAIL and NODATA as for A. A host-name service answers SRV this way too, and the
//     CNAME for every other type. A service without ports answers SRV with NODATA.
//
//   - An SRV target name ("<member>.<pool>.<service>", which the zone does not hold: its
//     lookup is NXDOMAIN below the service) answers the member's A or AAAA record with the
//     service TTL, whatever the member's health, and NODATA for other types; both paths
//     ask Snapshot.Target only once the zone has said NXDOMAIN.
//
//   - QTYPE=ANY (RFC 8482 Section 4.1): one RRset, never the whole node. At a service, its
//     A selection (AAAA when it has no IPv4 member); at a static name the first RRset
//     present among A, AAAA, MX, TXT, SRV, CAA, HTTPS, SVCB, NS, SOA, PTR, NAPTR. The same
//     over TCP.
//
//   - Additional section (RFC 1034 Section 4.3.2 step 6): an NS answer at the apex, an MX
//     and an SRV answer carry the A and AAAA records of their targets that our zone holds
//     authoritatively (computed at load, zones.Result.Extra); a target elsewhere is left to
//     the resolver. A referral carries the glue of its NS set.
//
//   - DS at a delegation point is answered by the parent side (RFC 4035 Section 3.1.4.1):
//     AA=1, the DS set or NODATA, never a referral. Every type miekg/dns packs is answered
//     as stored (HTTPS, SVCB, TLSA, NAPTR, ...): the general path packs them.
//
// Error replies (FORMERR, SERVFAIL, NOTIMP, REFUSED, BADVERS, BADCOOKIE) carry no records
// and no AA.
// When a reply with additional data does not fit the UDP limit, the additional RRsets are
// dropped first, whole and from the last, and the reply is sent without TC when the rest
// fits (RFC 2181 Section 9: TC says that the answer or authority is incomplete, not that
// something merely useful was left out); only a reply whose answer and authority do not
// fit is truncated. A referral's glue is not dropped this way: the referral is truncated
// whole, as RFC 9471 Section 3 asks for in-domain glue.
//
// # Fast path
//
// Server.Handle loads the live state, parses the message, and first offers the parse to
// the fast path (fastpath.go), which answers the common query without miekg/dns: no Msg,
// no Pack. It takes a message when all of these hold: the parse accepted it (so QR=0,
// opcode QUERY, QDCOUNT=1; other header flags are ignored, as the general path ignores
// them; a cookie that earns BADCOOKIE is not accepted); ANCOUNT=NSCOUNT=0, ARCOUNT at most
// 1 and that record the OPT, version 0, whose options are ECS and COOKIE only; nothing after the last record; a question of plain labels
// (letters, digits, '-', '_', '*': no byte that needs escaping), class IN, any type but
// ANY, AXFR and IXFR; a name in one of our zones. The parse copies the question name into
// a scratch buffer as asked and lower-cased, with one table load per byte, and the fast
// path looks it up with zones.Set.FindCanonical and Zone.LookupCanonical, which skip the
// case folding, escape scan and in-zone check the parse has already made, and do not
// allocate for exact hits. It then answers:
//   - a static RRset of A or AAAA records at the exact name (the compressor writes an
//     owner equal to the question as 0xC00C without recording the question's suffixes,
//     which it records only when another name needs them);
//   - NODATA and NXDOMAIN, with the zone's SOA in authority (negative TTL); for a
//     question in lower case the record comes from a per-zone template (negsoa.go) that
//     the compressor wrote once after the question "origin", its pointers moved along by
//     the question's labels above the origin, unless the question ends in a suffix of
//     MNAME or RNAME longer than the origin, where the compressor writes it;
//   - an address service (not host-name), of any policy including failover, geo and
//     nearest: for A and AAAA the client's GeoIP lookup when the service steers by
//     location (as the general path's locate does), then Select into a reused buffer,
//     then each member's A or AAAA record copied from wire compiled at SetSnapshot
//     (0xC00C owner, TYPE, CLASS, RDLENGTH, RDATA; the service TTL patched in), NODATA
//     when no member of the family, SERVFAIL when when_all_down says so; answers = 0
//     (every usable member) bounds the size by the most candidates of one family
//     (Service.MaxAnswers). The ECS scope
//     is the selection's (the geo network or rule, the hash prefix), as the general path
//     echoes it; a spill to the next pool and every when_all_down mode are Select's
//     decisions, so the fast path needs no branch of its own for them;
//   - SRV at an address service with ports (fastsrv.go): the client's GeoIP lookup when
//     the service steers by location, SelectSRV into reused buffers (grown at once to the
//     service's member count, so that selecting never allocates), then per record the
//     owner 0xC00C, the service TTL, priority, the member's weight and port, and the
//     target written out from wire compiled at SetSnapshot (the member's and pool's
//     labels per member, the service name per service); in additional, each member's
//     pre-compiled A or AAAA record with its owner a pointer to the target (miekg writes
//     a target uncompressed but records it, and that bare pointer is what it then finds;
//     the question's case changes none of these bytes). The size is known before
//     anything is written: the additional records that fit, from the first (what pack's
//     dropping of RRsets from the last leaves: each target is its own RRset), or TC with
//     no records when the SRV records alone do not fit, as pack does. NODATA when nothing
//     was chosen, SERVFAIL when when_all_down says so, the scope the selection's;
//   - an SRV target name (a NXDOMAIN of the zone that Snapshot.Target knows): the
//     member's pre-compiled record, the service TTL patched in, or NODATA.
//
// Everything else falls back, before any side effect, to the general path, which starts
// from the same parse (the question name is made a string there): wildcard
// answers, CNAMEs, referrals, other record types (their RDATA names compress against the
// whole message), SRV at a host-name service (the targets are the hosts) or at a name a
// wildcard service covers (it could equal a target, which would then compress against
// the question), SRV at a service whose weights exceed 16 bits (SRV scales them), an SRV
// answer over TCP that could reach the 14-bit offset where miekg stops recording
// targets, names outside our zones, EDNS versions above 0, other EDNS options,
// malformed input, host-name services (their CNAME is chased), and A and AAAA replies
// that would not fit the UDP limit (truncation). For services the size is bounded before
// Select, so that a query is never selected for twice (round-robin cursors advance once
// per answer).
//
// Both paths give identical bytes for the same query and selection: the header, question
// and records are written exactly as miekg packs them, the OPT (1232, DO copied, ECS
// echoed with scope) by the same appendOPT, and names are compressed by a small table that
// makes miekg's choices (longest earlier suffix, compared case-sensitively, offsets below
// 0x4000, root never compressed). That is why a question in mixed case gets its static
// owner partly written out, as miekg does, rather than a bare 0xC00C.
// TestFastPathIdenticalBytes runs every name of the test policy through both paths (eight
// qtypes, with and without EDNS, DO and ECS, three letter cases, RD on and off, UDP and
// TCP) and compares the bytes; TestFastPathIdenticalBytesSteering does the same for
// failover, geo and nearest services over the GeoIP2 test databases (ECS from several
// countries and networks, no ECS, AAAA, a family a service lacks, health views that spill
// the pool order and reach every when_all_down mode, GeoIP off) and also requires both
// servers' metrics to match. Queries with a client cookie, a valid server cookie and a
// bad one are among the first test's cases. TestFastPathIdenticalBytesSRV does it for SRV
// (testdata/srv.hcl: every SRV service in the first test's variants, health views that
// spill, SERVFAIL and fail open, UDP sizes around the byte where additional records are
// dropped and where the reply is truncated), requires the fast path to take them, and
// compares the metrics.
//
// Both paths end with one function (reply.go, send: rate limiting, then record) and each member answered
// with metrics.answered, into the answer counters of the state they answer from. The
// scratch of a query (the question name buffers, the fast path's selection buffer and
// compressor) comes from a sync.Pool, since Handle has no per-worker context; Get and Put
// touch only the current P's cache. Selection stays lock-free: an atomic cursor per
// round-robin service, math/rand/v2's per-thread ChaCha8 for weighted, a pure hash for
// client_subnet_hash.
//
// # Logging
//
// The injected slog logger gets listener events, recovered panics (error) and socket
// errors (debug); never a line per query at info level.
package dnsserver
