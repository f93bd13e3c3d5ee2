// Package health is the one place where glbdns decides whether a member is usable: it
// merges the reports of every healthd reporter, the drains in force and the pools'
// unknown_is into one View per policy snapshot, indexed by Member.Index, which the DNS
// server reads lock-free on every query (View.Up is one slice index: no map lookup by name,
// no clock read per member). The admin API's /v1/health, /v1/state and the status page
// read the same View, so what they show is what DNS answers.
//
// # Reporters
//
// A reporter is a healthd instance, named by the URL glbdns watches it at; the transport
// (healthd/client) hands Health every report it receives (Report) and every failed request
// (Failed). A reporter is fresh when it answered within StaleAfter. A member is down only
// when a strict majority of the fresh reporters that have a verdict on it (up or down) say
// down, as Route 53 decides from several vantage points. A reporter votes its last up or
// down verdict on a member: a report that lists the member as unknown, or does not list
// it, keeps the verdict the same reporter gave before (a restarted healthd says unknown
// until its probes decide, and a dead member must not come back meanwhile); a reporter
// that never gave one does not vote. With no voter the member is unknown.
//
// With no fresh reporter at all, the last merged verdicts are kept for Grace (gdnsd's
// extmon freezes states when its helper dies, for the same reason: a healthd restart or a
// network blip must not move traffic); after Grace every member is unknown. Grace counts
// from the last fresh report, or from the start when no reporter has ever answered. Each
// such fall-back is logged once at WARN and counted (GraceExpired: the daemon exports
// glbdns_health_grace_expired and glbdns_health_grace_expired_total); its end, a reporter
// fresh again, is logged at INFO.
//
// # Unknown members and drains
//
// An unknown member counts as its pool's unknown_is says, else as up unless
// Config.UnknownIsDown is set: failing open is the safe default for a load balancer whose
// health source is away. A member under a drain (the admin API's POST .../drain, kept by
// the policy store) is not usable whatever its verdict, until the drain's Until; the View
// is rebuilt by a timer at that moment, so a drain ends without any report or query
// looking at the clock. "Drained" means exactly this: a drain in force. A weight of 0 is
// the policy's business and is shown as a weight.
//
// # Load readings
//
// A reporter's report carries each member's latest load reading (its pool's load block,
// for least_connections). A reading is dated by its age in the report, on glbdns's clock
// (receipt minus age: no clock skew between hosts), and counts for three of its intervals
// plus LoadCoalesce; the View holds, per member, the median of the fresh readings of the
// fresh reporters (NaN for none), and View.Load is one slice index, as View.Up. A member
// without a fresh reading is answered by its weight. A new merged value is a change as a
// new verdict is, so the view follows the readings within a tick (at most a second).
//
// # Changes
//
// Config.OnChange is called after anything the views depend on changed: the merged
// verdicts (a report, a reporter going stale, the end of Grace), the merged load
// readings, the drains (SetDrains,
// synchronously, so that a drain is in force when the API answers) or a drain's expiry. The
// DNS server answers it by building a new View for its snapshot (For).
package health
