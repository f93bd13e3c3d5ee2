// Package xdp is the kernel bypass for UDP DNS: an XDP program that steers the datagrams
// addressed to the server's listen addresses and port to AF_XDP sockets, one per receive
// queue of an interface, and the loop that reads them from the sockets' rings and writes the
// answers back through the same rings.
//
// The kernel's UDP receive and send are most of what a fast DNS server spends (about 90% of
// its CPU on plain sockets): an AF_XDP socket receives the frame straight from the driver
// into memory the process shares with the kernel, and sends it back without the IP and UDP
// stacks. Only the simplest frames take that way: Ethernet without VLAN tags, IPv4 without
// options and not fragmented, or IPv6 with UDP as the first next header. Everything else —
// TCP, other ports and addresses, options, fragments, ARP and neighbour discovery — passes
// to the kernel untouched, and the regular sockets answer it.
//
// The package knows nothing of DNS: it hands the UDP payload and its source to a Handler and
// sends what the Handler returns. It imports no other room.
package xdp
