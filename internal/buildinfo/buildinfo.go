// Package buildinfo holds the version and revision stamped in at link time by the Makefile
// (-ldflags -X), as the Terraform provider scaffolding and CoreDNS do.
package buildinfo

import "runtime"

// Version and Revision are set with -ldflags -X at build time; "dev" and "unknown" otherwise.
var (
	Version  = "dev"
	Revision = "unknown"
)

// String is "glbdns VERSION (REVISION, GOVERSION)", printed by -version flags.
func String(binary string) string {
	return binary + " " + Version + " (" + Revision + ", " + runtime.Version() + ")"
}
