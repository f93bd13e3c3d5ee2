// Package dnsflood sends a bounded flood of one UDP query from one source address and
// counts what comes back: the load of the response-rate limiting test (e2e) and of
// bench/rrlflood, which report the same figures.
package dnsflood

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// Result counts a flood: queries sent and their bytes, replies received by kind and
// their bytes.
type Result struct {
	Sent      int
	Full      int // replies without TC
	Truncated int // replies with TC=1 (rate limiting's slips, or answers too big for UDP)
	BytesIn   int64
	BytesOut  int64 // bytes of the replies: "out" of the server, as bytes in are its input
	Took      time.Duration
}

// Amplification is bytes out over bytes in.
func (r Result) Amplification() float64 {
	if r.BytesIn == 0 {
		return 0
	}
	return float64(r.BytesOut) / float64(r.BytesIn)
}

// Run sends n copies of query (its ID rewritten for each) from local ("127.0.0.50:0") to
// server, spread evenly over about d in batches of 100, and counts the replies that come
// within a second of the last query. It stops early, with what it counted, when ctx is
// done.
func Run(ctx context.Context, local, server string, query []byte, n int, d time.Duration) (Result, error) {
	if len(query) < 12 || n <= 0 {
		return Result{}, errors.New("dnsflood: a query of at least a header, and n > 0")
	}
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return Result{}, err
	}
	ra, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return Result{}, err
	}
	c, err := net.DialUDP("udp", la, ra)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	_ = c.SetReadBuffer(8 << 20) // as much as the host allows (net.core.rmem_max)

	var res Result
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return // the deadline set after the last query, or the socket closed
			}
			mu.Lock()
			res.BytesOut += int64(k)
			if k >= 4 && buf[2]&0x02 != 0 {
				res.Truncated++
			} else {
				res.Full++
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	msg := append([]byte(nil), query...)
	const batch = 100
	batches := (n + batch - 1) / batch
	pause := d / time.Duration(batches)
	sent := 0
	for b := 0; b < batches && ctx.Err() == nil; b++ {
		for i := 0; i < batch && sent < n; i++ {
			binary.BigEndian.PutUint16(msg, uint16(sent))
			if _, err := c.Write(msg); err == nil {
				sent++
			}
		}
		if next := start.Add(time.Duration(b+1) * pause); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
	}
	took := time.Since(start)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	<-done
	mu.Lock()
	defer mu.Unlock()
	res.Sent, res.BytesIn, res.Took = sent, int64(sent*len(query)), took
	return res, nil
}
