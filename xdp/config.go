package xdp

import "net/netip"

// Config says where the path is taken.
type Config struct {
	// Interface is the network interface whose frames the program sees, by name.
	Interface string
	// Targets are the addresses and port the program steers to the sockets: the server's
	// UDP listen addresses. An unspecified address matches any destination of its family.
	Targets []netip.AddrPort
	// Queues is the number of receive queues to open a socket on, from queue 0. Zero is
	// every queue sysfs lists for the interface. A queue without a socket passes its frames
	// to the kernel.
	Queues int
}

// Handler answers the UDP payload req sent from src, appending the answer to out, and
// returns it (nil: send nothing). out has length 0 and as much capacity as the frame has
// past the headers; an answer longer than that is dropped. The handler keeps neither req
// nor out.
type Handler func(req []byte, src netip.AddrPort, out []byte) []byte
