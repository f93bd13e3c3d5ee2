package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

func nsidOf(r *dns.Msg) (string, bool) {
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if n, ok := opt.(*dns.EDNS0_NSID); ok {
				return n.Nsid, true
			}
		}
	}
	return "", false
}

// TestNSIDAndChaos: NSID (RFC 5001) and the CHAOS names of RFC 4892 answer with what is
// configured, on both transports, and nothing is disclosed when it is not.
func TestNSIDAndChaos(t *testing.T) {
	on := startServer(t, Config{NSID: []byte("ns1-fra"), Identity: "ns1.fra.example.net", Version: "glbdns test"})
	off := startServer(t, Config{})
	nsidQuery := func(name string) *dns.Msg {
		m := newQuery(name, dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		return m
	}
	for _, proto := range []string{"udp", "tcp"} {
		r := exchange(t, on, proto, nsidQuery("static.glb.example.com."))
		if id, ok := nsidOf(r); !ok || id != "6e73312d667261" || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s: NSID %q %v, rcode %d, %d answers; want hex of ns1-fra with the answer", proto, id, ok, r.Rcode, len(r.Answer))
		}
		if _, ok := nsidOf(exchange(t, off, proto, nsidQuery("static.glb.example.com."))); ok {
			t.Errorf("%s: NSID returned when none is configured", proto)
		}
		r = exchange(t, on, proto, newQuery("static.glb.example.com.", dns.TypeA).SetEdns0(1232, false))
		if _, ok := nsidOf(r); ok {
			t.Errorf("%s: NSID returned to a query that did not ask", proto)
		}
		for name, want := range map[string]string{"id.server.": "ns1.fra.example.net", "HOSTNAME.bind.": "ns1.fra.example.net", "version.bind.": "glbdns test"} {
			q := newQuery(name, dns.TypeTXT)
			q.Question[0].Qclass = dns.ClassCHAOS
			r := exchange(t, on, proto, q)
			txt, _ := func() (*dns.TXT, bool) {
				if len(r.Answer) == 1 {
					t, ok := r.Answer[0].(*dns.TXT)
					return t, ok
				}
				return nil, false
			}()
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || txt == nil || txt.Txt[0] != want || txt.Hdr.Class != dns.ClassCHAOS || txt.Hdr.Ttl != 0 {
				t.Errorf("%s CH TXT %s: %v", proto, name, r)
			}
			if r := exchange(t, off, proto, q); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("%s CH TXT %s unconfigured: rcode %d, %d answers; want REFUSED", proto, name, r.Rcode, len(r.Answer))
			}
		}
		q := newQuery("other.bind.", dns.TypeTXT)
		q.Question[0].Qclass = dns.ClassCHAOS
		if r := exchange(t, on, proto, q); r.Rcode != dns.RcodeRefused {
			t.Errorf("%s CH TXT other.bind: rcode %d, want REFUSED", proto, r.Rcode)
		}
	}
}
