package zones_test

import (
	"fmt"
	"strings"

	"github.com/glbdns/glbdns/zones"
	"github.com/miekg/dns"
)

// The life of a zone: built once from the policy and a zone file, then only read.
func ExampleZone_Lookup() {
	soa, _ := dns.NewRR("glb.example.com. 300 IN SOA ns1.glb.example.com. hostmaster.example.com. 1 7200 3600 1209600 60")
	ns, _ := dns.NewRR("glb.example.com. 300 IN NS ns1.glb.example.com.")
	z, err := zones.New("glb.example.com.", soa.(*dns.SOA), []dns.RR{ns})
	if err != nil {
		panic(err)
	}
	file := `
ns1      A      192.0.2.53
static   A      192.0.2.80
*.edge   CNAME  cdn.example.net.
`
	if err := z.ImportFile(strings.NewReader(file), "db.glb", 300); err != nil {
		panic(err)
	}
	if err := z.InsertService("www.glb.example.com.", 3); err != nil {
		panic(err)
	}
	set, err := zones.NewSet(z)
	if err != nil {
		panic(err)
	}

	for _, q := range []string{"WWW.glb.example.com.", "static.glb.example.com.", "img.edge.glb.example.com.", "nope.glb.example.com."} {
		zone := set.Find(q)
		r := zone.Lookup(q, dns.TypeA)
		switch r.Kind {
		case zones.Service:
			fmt.Println(q, "service", r.Service)
		case zones.Answer:
			fmt.Println(q, "answer", r.Answer[0].(*dns.A).A)
		case zones.CNAME:
			fmt.Println(q, "cname", r.Target, "wildcard", r.Wildcard)
		case zones.NXDomain:
			fmt.Println(q, "nxdomain, negative TTL", zone.NegativeTTL())
		}
	}
	fmt.Println(set.Find("example.org.") == nil)
	// Output:
	// WWW.glb.example.com. service 3
	// static.glb.example.com. answer 192.0.2.80
	// img.edge.glb.example.com. cname cdn.example.net. wildcard true
	// nope.glb.example.com. nxdomain, negative TTL 60
	// true
}
