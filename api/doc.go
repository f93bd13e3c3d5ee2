// Package api holds the JSON shapes of glbdns's HTTP APIs and the defaults they document,
// so that every side of a wire speaks from one definition: the policy store and the admin
// REST API (admin/) on the server, the Terraform provider's client (terraform/client) and
// glbctl on the other side, and healthd's /v1/health with the glbdns process that
// subscribes to it.
//
//	objects.go  /v1/pools, /v1/services, /v1/drains (docs/admin-api.md): Pool, Service,
//	            Drain and their parts; the defaults a write fills in; ServiceName;
//	            HeaderMask and MaskHeaders, which keep check headers write-only
//	health.go   healthd's GET /v1/health (docs/health-api.md): Report, Status; the admin
//	            API's merged GET /v1/health: MemberHealth
//	state.go    the admin listener's GET /v1/state: State
//	error.go    the error body of every 4xx and 5xx answer
//	member.go,  the checks of single values that need no other object (addresses, hosts,
//	rules.go    expect_status, metric names, check attributes by type, object names, limits),
//	            which the server applies and the Terraform provider checks at plan time
//
// It imports nothing but the standard library, so that any package may import it without
// dragging in a server. It holds no logic beyond JSON encodings, name canonicalisation, the
// header mask and the single-value checks above, which servers and clients must agree on:
// the rest of validation is the policy package's, storage the store's.
package api
