package dnsserver

import (
	"net/netip"
	"sync/atomic"

	"github.com/glbdns/glbdns/xdp"
	"github.com/prometheus/client_golang/prometheus"
)

// XDPConfig asks for the AF_XDP path (package xdp) on one interface: the UDP queries to
// the server's addresses that arrive there are read from AF_XDP sockets instead of the
// kernel's UDP sockets, and answered by the same handle as every other query. The sockets
// stay bound and answer what the path leaves to the kernel (other interfaces, IP options,
// fragments) and TCP.
type XDPConfig struct {
	// Interface is the network interface to attach to, by name; "" is off (the default).
	Interface string
	// Queues is the number of receive queues to serve, from queue 0; 0 is all of them.
	Queues int
}

var descXDPDropped = prometheus.NewDesc("glbdns_xdp_dropped_total",
	"Frames the kernel could not hand to the AF_XDP sockets (a full receive ring, no free frame) or descriptors it refused, summed over the queues.", nil, nil)

// xdpLoops opens the path on the bound addresses and returns one loop per queue; none when
// it is off or the kernel refuses it, which the log says, and the sockets answer alone. It
// runs in Start under s.lmu, as udpLoops does.
func (s *Server) xdpLoops() []func() {
	cfg := s.cfg.XDP
	if cfg.Interface == "" {
		return nil
	}
	targets := make([]netip.AddrPort, len(s.addrs))
	copy(targets, s.addrs)
	p, err := xdp.Open(xdp.Config{Interface: cfg.Interface, Targets: targets, Queues: cfg.Queues})
	if err != nil {
		s.log.Warn("af_xdp path off, answering from sockets", "interface", cfg.Interface, "err", err)
		return nil
	}
	s.log.Info("af_xdp path on", "interface", p.Interface(), "mode", p.Mode(), "queues", p.Queues())
	s.xdp.Store(p)
	s.wake = append(s.wake, p.Wake)
	holdProcs(p.Queues())
	var left atomic.Int32
	left.Store(int32(p.Queues()))
	loops := make([]func(), p.Queues())
	for q := range loops {
		sh := s.cfg.UDPWorkers + q
		h := func(req []byte, src netip.AddrPort, out []byte) []byte { return s.handle(req, src, false, out, sh) }
		loops[q] = func() {
			defer func() {
				if s.isClosed() {
					releaseProcs(1)
					if left.Add(-1) == 0 {
						p.Close()
					}
				}
			}()
			p.Serve(q, h)
		}
	}
	return loops
}

// collectXDP reports the path's losses, when it is on.
func (s *Server) collectXDP(ch chan<- prometheus.Metric) {
	if p := s.xdp.Load(); p != nil {
		ch <- prometheus.MustNewConstMetric(descXDPDropped, prometheus.CounterValue, float64(p.Dropped()))
	}
}
