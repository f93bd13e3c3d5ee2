// Command tcpflood is the TCP exhaustion load test: from one source it opens -conns
// keep-alive connections to a DNS server and sends -qps queries across them, while from
// other sources it sends -probes TCP queries, one every 10 ms, and counts those answered.
// bench/tcpflood.sh starts a glbdns for it.
//
//	go run ./bench/tcpflood -addr 127.0.0.1:5353 -name www.glb.test [-conns 1000] [-qps 200]
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5353", "DNS server `address`")
	name := flag.String("name", "www.glb.test", "query `name` (type A)")
	conns := flag.Int("conns", 1000, "keep-alive connections of the flood")
	qps := flag.Int("qps", 200, "queries per second of the flood, across its connections")
	from := flag.String("from", "127.0.0.50", "source `address` of the flood")
	probeFrom := flag.String("probe-from", "127.0.0.60,127.0.1.1", "comma-separated source `addresses` of the probes")
	probes := flag.Int("probes", 100, "TCP queries from each probe source")
	flag.Parse()

	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(*name), dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		fail(err)
	}
	framed := append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	var flood []net.Conn
	every := time.Duration(*conns) * time.Second / time.Duration(max(*qps, 1))
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(*from)}}
	for range *conns {
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			continue
		}
		flood = append(flood, c)
		wg.Go(func() {
			buf := make([]byte, 512)
			for {
				if _, err := c.Write(framed); err != nil {
					return
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := io.ReadAtLeast(c, buf, 2); err != nil {
					return
				}
				answered.Add(1)
				select {
				case <-stop:
					return
				case <-time.After(every):
				}
			}
		})
	}
	fmt.Printf("flood: %d connections from %s, a query every %v on each (%d qps)\n", len(flood), *from, every, *qps)
	for _, src := range strings.Split(*probeFrom, ",") {
		pd := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(strings.TrimSpace(src))}}
		ok := 0
		for range *probes {
			c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, Dialer: &pd}
			if r, _, err := c.Exchange(q.Copy(), *addr); err == nil && r.Rcode == dns.RcodeSuccess {
				ok++
			}
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Printf("probes from %s: %d of %d answered\n", src, ok, *probes)
	}
	close(stop)
	wg.Wait()
	var held atomic.Int64
	for _, c := range flood {
		wg.Go(func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					held.Add(1) // still open: the server has not closed it
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("flood: %d answers; %d of its connections still open at the end\n", answered.Load(), held.Load())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tcpflood:", err)
	os.Exit(1)
}
