package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/policy"
)

// DNS prepares a "dns" check: one UDP query for QName/QType must come back with rcode
// ExpectRcode and, when ExpectAnswer is set, an answer RR whose rdata in presentation
// format contains it. Truncated replies count as answered: the rcode and header are what
// the check judges, and a retry over TCP would double the probe's cost.
func DNS(c *policy.Check) (Func, error) {
	if c.QName == "" {
		return nil, errors.New("check has no qname")
	}
	qtype, ok := dns.StringToType[strings.ToUpper(c.QType)]
	if !ok {
		return nil, fmt.Errorf("unknown qtype %q", c.QType)
	}
	rcode, ok := dns.StringToRcode[strings.ToUpper(c.ExpectRcode)]
	if !ok {
		return nil, fmt.Errorf("unknown rcode %q", c.ExpectRcode)
	}
	dc := &dnsCheck{
		question: dns.Question{Name: dns.Fqdn(c.QName), Qtype: qtype, Qclass: dns.ClassINET},
		rcode:    rcode,
		answer:   c.ExpectAnswer,
		// The check's timeout, not miekg's 2s read default, bounds the exchange (with
		// ctx's deadline, whichever comes first).
		client: &dns.Client{Net: "udp", UDPSize: dns.DefaultMsgSize, Timeout: c.Timeout},
	}
	return dc.probe, nil
}

// dnsCheck is a dns check prepared once: the question and what the reply must hold.
type dnsCheck struct {
	question dns.Question
	rcode    int
	answer   string // ExpectAnswer
	client   *dns.Client
}

func (dc *dnsCheck) probe(ctx context.Context, target Target) Result {
	m := &dns.Msg{Question: []dns.Question{dc.question}}
	m.Id = dns.Id()
	m.RecursionDesired = false // probe the server's own data, not its resolver
	r, rtt, err := dc.client.ExchangeContext(ctx, m, target.String())
	if err != nil {
		return errReason(ctx, "query", err)
	}
	phases := []Phase{{"exchange", rtt}}
	if r.Rcode != dc.rcode {
		return Result{Reason: "rcode " + dns.RcodeToString[r.Rcode] + ", want " + dns.RcodeToString[dc.rcode], Phases: phases}
	}
	if dc.answer == "" {
		return Result{OK: true, Phases: phases}
	}
	for _, rr := range r.Answer {
		rdata := strings.TrimPrefix(rr.String(), rr.Header().String())
		if strings.Contains(rdata, dc.answer) {
			return Result{OK: true, Phases: phases}
		}
	}
	return Result{Reason: "no answer contains " + dc.answer, Phases: phases}
}
