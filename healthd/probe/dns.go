package probe

import (
	"context"
	"strings"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// DNS probes a "dns" check: one UDP query for QName/QType (defaults "." and SOA, which any
// authoritative or recursive server answers) must come back with rcode ExpectRcode
// (default NOERROR) and, when ExpectAnswer is set, an answer RR whose rdata in
// presentation format contains it. Truncated replies count as answered: the rcode and
// header are what the check judges, and a retry over TCP would double the probe's cost.
func DNS(ctx context.Context, target Target, c *policy.Check) Result {
	qname := c.QName
	if qname == "" {
		qname = "."
	}
	qtype := dns.TypeSOA
	if c.QType != "" {
		t, ok := dns.StringToType[strings.ToUpper(c.QType)]
		if !ok {
			return fail("unknown qtype %q", c.QType)
		}
		qtype = t
	}
	want := dns.RcodeSuccess
	if c.ExpectRcode != "" {
		r, ok := dns.StringToRcode[strings.ToUpper(c.ExpectRcode)]
		if !ok {
			return fail("unknown rcode %q", c.ExpectRcode)
		}
		want = r
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), qtype)
	m.RecursionDesired = false // probe the server's own data, not its resolver
	cl := &dns.Client{Net: "udp", UDPSize: dns.DefaultMsgSize}
	r, rtt, err := cl.ExchangeContext(ctx, m, target.String())
	if err != nil {
		return errReason(ctx, "query", err)
	}
	res := Result{Phases: []Phase{{"exchange", rtt}}}
	if r.Rcode != want {
		res.Reason = "rcode " + dns.RcodeToString[r.Rcode] + ", want " + dns.RcodeToString[want]
		return res
	}
	if c.ExpectAnswer == "" {
		res.OK = true
		return res
	}
	for _, rr := range r.Answer {
		rdata := strings.TrimPrefix(rr.String(), rr.Header().String())
		if strings.Contains(rdata, c.ExpectAnswer) {
			res.OK = true
			return res
		}
	}
	res.Reason = "no answer contains " + c.ExpectAnswer
	return res
}
