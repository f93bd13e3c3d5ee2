package dnsserver

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// fuzzPair is a server with the fast path and one without it, over their own snapshots
// of the same policy, so that round-robin cursors advance alike on both.
type fuzzPair struct {
	fast, gen *Server
	// weighted names draw at random: their replies are compared by header and length.
	weighted map[string]bool
}

var (
	fuzzOnce  sync.Once
	fuzzPairs [2]fuzzPair // 0: testdata/policy.hcl, 1: testdata/steer.hcl with GeoIP
)

func fuzzServers(tb testing.TB) *[2]fuzzPair {
	fuzzOnce.Do(func() {
		fuzzPairs[0] = fuzzPair{fast: fastServer(tb), gen: generalOnly(tb), weighted: map[string]bool{
			"www.glb.example.com.": true, "v4only.glb.example.com.": true,
			"alias.glb.example.com.": true, "alias2.glb.example.com.": true,
		}}
		gen := steerServer(tb, nil)
		stripFast(gen)
		fuzzPairs[1] = fuzzPair{fast: steerServer(tb, nil), gen: gen}
	})
	if fuzzPairs[0].fast == nil || fuzzPairs[1].gen == nil {
		tb.Fatal("fuzz servers failed to start")
	}
	return &fuzzPairs
}

// FuzzHandle feeds arbitrary bytes as a query, over UDP and over TCP, to the in-process
// handler. Properties: no panic (not even a recovered one); a reply, when there is one,
// parses, has QR=1 and the query's ID, and fits the size the query allows over UDP (512
// without EDNS, else the advertised payload size); the fast path, when it answers, gives
// the general path's bytes.
func FuzzHandle(f *testing.F) {
	q := func(name string, qtype uint16, edit func(m *dns.Msg)) []byte {
		m := newQuery(name, qtype)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	edns := func(size uint16, do bool) func(*dns.Msg) {
		return func(m *dns.Msg) { m.SetEdns0(size, do) }
	}
	ecs := func(cidr string) func(*dns.Msg) { return func(m *dns.Msg) { withECS(m, cidr) } }
	for _, tcp := range []bool{false, true} {
		// testdata/policy.hcl: static, weighted, round robin, hash, CNAME chains, big.
		f.Add(q("static.glb.example.com.", dns.TypeA, nil), tcp, false)
		f.Add(q("StAtIc.glb.example.com.", dns.TypeAAAA, edns(1232, true)), tcp, false)
		f.Add(q("www.glb.example.com.", dns.TypeA, nil), tcp, false)
		f.Add(q("alias.glb.example.com.", dns.TypeAAAA, edns(4096, false)), tcp, false)
		f.Add(q("rr.glb.example.com.", dns.TypeA, edns(512, false)), tcp, false)
		f.Add(q("hash.glb.example.com.", dns.TypeA, ecs("203.0.113.0/24")), tcp, false)
		f.Add(q("big.glb.example.com.", dns.TypeTXT, edns(1232, false)), tcp, false)
		f.Add(q("big.glb.example.com.", dns.TypeANY, nil), tcp, false)
		f.Add(q("x.wild.glb.example.com.", dns.TypeA, nil), tcp, false)
		f.Add(q("x.sub.glb.example.com.", dns.TypeA, nil), tcp, false)
		f.Add(q("nothere.glb.example.com.", dns.TypeMX, ecs("2001:db8:1234:5600::/56")), tcp, false)
		f.Add(q("example.org.", dns.TypeA, nil), tcp, false)
		// testdata/steer.hcl: failover, geo, nearest, with ECS.
		f.Add(q("geo.steer.test.", dns.TypeA, ecs("81.2.69.142/32")), tcp, true)
		f.Add(q("geo.steer.test.", dns.TypeAAAA, ecs("2001:218:1::/48")), tcp, true)
		f.Add(q("geo-hash.steer.test.", dns.TypeA, ecs("89.160.20.0/24")), tcp, true)
		f.Add(q("near.steer.test.", dns.TypeA, ecs("175.16.199.0/24")), tcp, true)
		f.Add(q("fo-fb.steer.test.", dns.TypeA, nil), tcp, true)
		f.Add(q("fo-hash.steer.test.", dns.TypeA, ecs("0.0.0.0/0")), tcp, true)
		// Broken: short, a response, a compression loop, a cut question, two OPTs.
		f.Add([]byte{0, 1, 0, 0, 0}, tcp, false)
		f.Add(q("static.glb.example.com.", dns.TypeA, func(m *dns.Msg) { m.Response = true }), tcp, false)
		f.Add(typeClass(append(rawHeader(7, 0, 1, 0, 0, 0), 0xC0, 12), dns.TypeA), tcp, false)
		f.Add(append(rawHeader(7, 0, 1, 0, 0, 0), wireName("static", "glb")[:5]...), tcp, false)
		f.Add(q("static.glb.example.com.", dns.TypeA, func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})
		}), tcp, false)
		f.Add(q("static.glb.example.com.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), tcp, true)
	}
	f.Fuzz(func(t *testing.T, req []byte, tcp, steer bool) {
		pairs := fuzzServers(t)
		p := &pairs[0]
		if steer {
			p = &pairs[1]
		}
		src := netip.MustParseAddrPort("198.51.100.7:5353")
		outF := make([]byte, 0, ednsUDPSize)
		outG := make([]byte, 0, ednsUDPSize)
		panF, panG := p.fast.Panics(), p.gen.Panics()

		fr, fast := p.fast.fastOnly(req, src, tcp, outF, 0)
		if !fast {
			fr = p.fast.Handle(req, src, tcp, outF)
		}
		gr := p.gen.Handle(req, src, tcp, outG)
		if p.fast.Panics() != panF || p.gen.Panics() != panG {
			t.Fatalf("a panic was recovered in Handle (fast server %d, general %d)", p.fast.Panics()-panF, p.gen.Panics()-panG)
		}
		if (fr == nil) != (gr == nil) {
			t.Fatalf("fast=%v reply %x, general reply %x", fast, fr, gr)
		}
		if gr == nil {
			return
		}
		check := func(which string, r []byte) *dns.Msg {
			m := new(dns.Msg)
			if err := m.Unpack(r); err != nil {
				t.Fatalf("%s reply does not parse: %v\n%x", which, err, r)
			}
			if !m.Response {
				t.Fatalf("%s reply has QR=0", which)
			}
			if len(req) < 2 || m.Id != binary.BigEndian.Uint16(req) {
				t.Fatalf("%s reply has ID %d, query %x", which, m.Id, req[:min(len(req), 2)])
			}
			if limit := sizeLimit(req, tcp); len(r) > limit {
				t.Fatalf("%s reply is %d bytes, the query allows %d", which, len(r), limit)
			}
			return m
		}
		gm := check("general", gr)
		check("fast", fr)
		if bytes.Equal(fr, gr) {
			return
		}
		if len(gm.Question) == 1 && p.weighted[strings.ToLower(gm.Question[0].Name)] &&
			len(fr) == len(gr) && bytes.Equal(fr[:12], gr[:12]) {
			return // a weighted draw
		}
		t.Fatalf("replies differ (fast path answered: %v):\nfast    %x\ngeneral %x", fast, fr, gr)
	})
}

// sizeLimit is the largest reply the query allows: 65535 over TCP; over UDP the EDNS
// payload size of a query with one OPT (never less than 512), else 512.
func sizeLimit(req []byte, tcp bool) int {
	if tcp {
		return 65535
	}
	m := new(dns.Msg)
	if m.Unpack(req) != nil {
		return minUDPSize
	}
	if o := m.IsEdns0(); o != nil {
		return max(int(o.UDPSize()), minUDPSize)
	}
	return minUDPSize
}

// FuzzParse checks parse against miekg/dns on arbitrary messages: parse returns (no
// pointer loop holds it) without panicking, and when both accept a message they read the
// same question (name as presentation text, type, class), the same OPT (present, payload
// size, DO, version) and the same ECS option. miekg accepts what parse refuses on
// purpose (forward pointers, cut questions, count lies at a record boundary) and refuses
// what parse frames without reading (RDATA, options other than ECS), so only the messages
// both accept are compared.
func FuzzParse(f *testing.F) {
	for _, edit := range []func(m *dns.Msg){
		nil,
		func(m *dns.Msg) { m.SetEdns0(1232, true) },
		func(m *dns.Msg) { withECS(m, "203.0.113.0/24") },
		func(m *dns.Msg) { withECS(m, "2001:db8:1234:5600::/56") },
		func(m *dns.Msg) {
			m.Ns = append(m.Ns, &dns.SOA{Hdr: dns.RR_Header{Name: "glb.example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET},
				Ns: "ns1.glb.example.com.", Mbox: "hostmaster.glb.example.com."})
			m.SetEdns0(4096, false)
		},
	} {
		m := newQuery(`St\.atic.glb.example.com.`, dns.TypeA)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(pointerChain(wireName("x", "example"), 125))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var q query
		var nb nameBuf
		act := parse(msg, &q, &nb)
		var m dns.Msg
		if act != actAccept || m.Unpack(msg) != nil || len(m.Question) != 1 {
			return
		}
		name, err := nb.text(msg)
		if err != nil {
			t.Fatalf("parse accepted a question it cannot format: %v", err)
		}
		if mq := m.Question[0]; name != mq.Name || q.qtype != mq.Qtype || q.qclass != mq.Qclass {
			t.Fatalf("question %q %d %d, miekg reads %q %d %d", name, q.qtype, q.qclass, mq.Name, mq.Qtype, mq.Qclass)
		}
		opt := m.IsEdns0()
		if q.edns != (opt != nil) {
			t.Fatalf("OPT %v, miekg finds %v", q.edns, opt)
		}
		if opt == nil {
			return
		}
		if q.udpSize != opt.UDPSize() || q.do != opt.Do() || q.version != opt.Version() {
			t.Fatalf("OPT size %d DO %v version %d, miekg reads %d %v %d", q.udpSize, q.do, q.version, opt.UDPSize(), opt.Do(), opt.Version())
		}
		var ecs *dns.EDNS0_SUBNET
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				ecs = e
			}
		}
		if q.ecs.present != (ecs != nil) {
			t.Fatalf("ECS %v, miekg finds %v", q.ecs.present, ecs)
		}
		if ecs != nil {
			if q.ecs.family != ecs.Family || q.ecs.source != ecs.SourceNetmask || q.ecs.prefix().Addr().String() != ecs.Address.String() {
				t.Fatalf("ECS %d %d %v, miekg reads %d %d %v", q.ecs.family, q.ecs.source, q.ecs.prefix(), ecs.Family, ecs.SourceNetmask, ecs.Address)
			}
		}
	})
}
