//go:build !linux

package dnsserver

import "syscall"

// reusePortControl is nil where SO_REUSEPORT spreading is not relied on: one UDP socket.
var reusePortControl func(network, address string, c syscall.RawConn) error

const haveReusePort = false
