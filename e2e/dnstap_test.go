package e2e

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	pb "google.golang.org/protobuf/proto"
)

// TestDnstapSocketSampled runs glbdns with its query log on a unix socket that the test
// listens on with golang-dnstap's own Frame Streams reader (as `dnstap -u` would), one
// query in 10 sampled: 100 queries give exactly 10 logged queries, each an AUTH_QUERY
// and an AUTH_RESPONSE frame, the first of every ten, from the test's address.
func TestDnstapSocketSampled(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tap.sock")
	in, err := dnstap.NewFrameStreamSockInputFromPath(sock)
	if err != nil {
		t.Fatal(err)
	}
	frames := make(chan []byte, 64)
	go in.ReadInto(frames)
	p, addr, _ := startGLBDNS(t, map[string]string{"glb.hcl": corePolicy},
		"-dnstap", "unix:"+sock, "-dnstap-sample", "10")
	p.waitLog(t, "dnstap logging", 10*time.Second) // connected: no sampled query is dropped

	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	var ids []uint16
	for i := range 100 {
		m := new(dns.Msg)
		m.SetQuestion("www.glb.test.", dns.TypeA)
		m.Id = uint16(1000 + i)
		if i%10 == 0 {
			ids = append(ids, m.Id)
		}
		if r, _, err := c.Exchange(m, addr); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: %v %v", i, err, r)
		}
	}
	if err := p.stop(); err != nil { // ends the stream: every queued frame is written first
		t.Fatalf("glbdns: %v\n%s", err, p.Logs())
	}
	var got []*dnstap.Dnstap
	for len(got) < 2*len(ids) {
		select {
		case b := <-frames:
			d := new(dnstap.Dnstap)
			if err := pb.Unmarshal(b, d); err != nil {
				t.Fatal(err)
			}
			got = append(got, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d frames, want %d\n%s", len(got), 2*len(ids), p.Logs())
		}
	}
	select {
	case b := <-frames:
		t.Fatalf("frame %d beyond the %d expected: %x", len(got)+1, len(got), b)
	case <-time.After(200 * time.Millisecond): // the writer has stopped; this only waits for a stray frame
	}
	for i, id := range ids {
		q, r := got[2*i].Message, got[2*i+1].Message
		if q.GetType() != dnstap.Message_AUTH_QUERY || r.GetType() != dnstap.Message_AUTH_RESPONSE {
			t.Fatalf("query %d: frame types %v %v", i, q.GetType(), r.GetType())
		}
		qm, rm := new(dns.Msg), new(dns.Msg)
		if err := qm.Unpack(q.QueryMessage); err != nil || qm.Id != id {
			t.Errorf("logged query %d: %v id %d, want %d", i, err, qm.Id, id)
		}
		if err := rm.Unpack(r.ResponseMessage); err != nil || rm.Id != id || rm.Rcode != dns.RcodeSuccess || len(rm.Answer) == 0 {
			t.Errorf("logged response %d: %v %v", i, err, rm)
		}
		if net.IP(q.QueryAddress).String() != "127.0.0.1" || q.GetSocketProtocol() != dnstap.SocketProtocol_UDP ||
			q.GetSocketFamily() != dnstap.SocketFamily_INET || q.GetQueryPort() == 0 {
			t.Errorf("logged query %d: from %v:%d %v %v", i, net.IP(q.QueryAddress), q.GetQueryPort(), q.GetSocketFamily(), q.GetSocketProtocol())
		}
	}
}
