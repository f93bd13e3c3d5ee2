//go:build !linux

package dnsserver

import "net"

// serveUDPPlatform reports false: outside Linux the portable loop (x/net batches, one
// datagram per call where the OS has no recvmmsg) serves every socket.
func (s *Server) serveUDPPlatform(net.PacketConn, int) bool { return false }
