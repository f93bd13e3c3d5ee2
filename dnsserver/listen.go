package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
)

// bindAttempts bounds the retries when Addr has port 0: the port picked for the first UDP
// socket may already be taken for TCP by someone else, in which case we start over.
const bindAttempts = 8

// listen binds workers UDP sockets (SO_REUSEPORT) and one TCP listener on the same port.
// With port 0 the first UDP socket picks the port and the others follow it.
func listen(ctx context.Context, addr string, workers int, log *slog.Logger) ([]net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("parse address: %w", err)
	}
	if !haveReusePort {
		workers = 1
	}
	var lastErr error
	for attempt := 0; attempt < bindAttempts; attempt++ {
		udp, tcp, err := bindOnce(ctx, host, port, workers, log)
		if err == nil {
			return udp, tcp, nil
		}
		lastErr = err
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, nil, lastErr
}

func bindOnce(ctx context.Context, host, port string, workers int, log *slog.Logger) ([]net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: reusePortControl}
	first, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil && reusePortControl != nil {
		// Some sandboxes refuse SO_REUSEPORT: fall back to a single plain socket.
		log.Warn("so_reuseport unavailable, using one udp socket", "err", err)
		workers = 1
		lc.Control = nil
		first, err = lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bind udp: %w", err)
	}
	udp := []net.PacketConn{first}
	closeAll := func() {
		for _, c := range udp {
			c.Close()
		}
	}
	bound := strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port)
	hp := net.JoinHostPort(host, bound)
	tcp, err := (&net.ListenConfig{}).Listen(ctx, "tcp", hp)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("bind tcp: %w", err)
	}
	for i := 1; i < workers; i++ {
		c, err := lc.ListenPacket(ctx, "udp", hp)
		if err != nil {
			log.Warn("extra udp socket failed, serving with fewer", "err", err, "sockets", len(udp))
			break
		}
		udp = append(udp, c)
	}
	return udp, tcp, nil
}
