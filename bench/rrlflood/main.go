// Command rrlflood floods a glbdns with one UDP query from one source, as an amplification
// attack would, and prints what came back: full answers, slipped (TC=1) replies, and bytes
// out over bytes in. With -cookie it first asks for a server cookie and floods with it,
// as a client that proved its address. bench/rrlflood.sh runs it against glbdns with
// rate limiting on and off.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/internal/dnsflood"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5353", "glbdns DNS `address`")
	from := flag.String("from", "127.0.0.50", "source `address` of the flood")
	name := flag.String("name", "big.amp.test", "query `name` (type A, EDNS 1232)")
	n := flag.Int("n", 20000, "queries")
	d := flag.Duration("d", time.Second, "spread over")
	cookie := flag.Bool("cookie", false, "flood with a valid server cookie, asked for first")
	label := flag.String("label", "", "label of the output line")
	flag.Parse()
	if *n <= 0 || *n > 10_000_000 || *d <= 0 || *d > 10*time.Minute {
		fail(fmt.Errorf("-n must be 1..10000000 and -d up to 10m"))
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(*name), dns.TypeA)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	if *cookie {
		sc, err := serverCookie(m, *addr, *from)
		if err != nil {
			fail(err)
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: sc})
	}
	q, err := m.Pack()
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *d+time.Minute)
	defer cancel()
	r, err := dnsflood.Run(ctx, *from+":0", *addr, q, *n, *d)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%-22s sent %6d in %5.2fs  full %6d  slipped %6d  lost or dropped %6d  bytes in %9d  out %9d  out/in %6.2f\n",
		*label, r.Sent, r.Took.Seconds(), r.Full, r.Truncated, r.Sent-r.Full-r.Truncated, r.BytesIn, r.BytesOut, r.Amplification())
}

// serverCookie asks once with a client cookie and returns the cookie of the reply (client
// and server cookie, hex), as a resolver learns it.
func serverCookie(m *dns.Msg, addr, from string) (string, error) {
	q := m.Copy()
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString([]byte("rrlflood"))})
	c := dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		return "", err
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ck, ok := o.(*dns.EDNS0_COOKIE); ok && len(ck.Cookie) == 48 {
				return ck.Cookie, nil
			}
		}
	}
	return "", fmt.Errorf("no server cookie in the reply (%s)", dns.RcodeToString[r.Rcode])
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rrlflood:", err)
	os.Exit(1)
}
