//go:build !linux

package dnsserver

import "net"

// udpLoops returns the portable loop (x/net batches, one datagram per call where the OS
// has no recvmmsg) for every socket: worker i records into metrics shard i.
func (s *Server) udpLoops(udp []net.PacketConn) []func() {
	loops := make([]func(), len(udp))
	for i, c := range udp {
		loops[i] = func() { s.serveUDP(c, i) }
	}
	return loops
}

// holdProcs and releaseProcs count the loops that keep their P while they wait in the
// kernel, which only Linux's loops do (udp_linux.go).
func holdProcs(int)    {}
func releaseProcs(int) {}
