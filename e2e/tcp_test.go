package e2e

import (
	bin "encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestTCPFairness is the red team's TCP exhaustion on the real binary: one source
// (127.0.0.50) opens 1,000 keep-alive connections and keeps sending queries on them (200
// qps in all); a client of the same /24 (127.0.0.60) still gets its TCP queries answered,
// because idle connections make room, and so does one of another network (127.0.1.1),
// because one prefix holds at most its share.
func TestTCPFairness(t *testing.T) {
	_, addr, _ := startGLBDNS(t, map[string]string{"zone.hcl": clusterPolicy + `
pool "web" {
  member "a" {
    address = "192.0.2.10"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
`}, "-tcp-max-conns", "1000")
	q := new(dns.Msg)
	q.SetQuestion("www.glb.test.", dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	framed := append(bin.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)

	// The flood: 1,000 connections, each sending a query every 5 s (200 qps in all).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	flooder := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.50")}}
	for range 1000 {
		c, err := flooder.Dial("tcp", addr)
		if err != nil {
			continue // refused at accept: the kernel backlog, not a slot
		}
		wg.Go(func() {
			defer c.Close()
			buf := make([]byte, 512)
			for {
				if _, err := c.Write(framed); err != nil {
					return
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := io.ReadAtLeast(c, buf, 2); err != nil {
					return // closed by the server: evicted or refused
				}
				mu.Lock()
				held++
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Second):
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	for _, from := range []string{"127.0.0.60", "127.0.1.1"} {
		answered := 0
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		for range 100 {
			c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, Dialer: &d}
			if r, _, err := c.Exchange(q.Copy(), addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
				answered++
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		t.Logf("TCP queries from %s answered during the flood: %d of 100 (the flood's own answers so far: %d)", from, answered, held)
		mu.Unlock()
		if answered < 99 {
			t.Errorf("%d of 100 TCP queries from %s answered during the flood; want at least 99", answered, from)
		}
	}
}
