package dnssec

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestCache(t *testing.T) {
	k, _ := Generate("example.test", 13, FlagKSK)
	s, err := NewSigner("example.test", []*Key{k}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(2)
	now := time.Date(2026, 12, 3, 10, 5, 0, 0, time.UTC)
	a1, a2 := mustRR(t, "web.example.test. 30 IN A 192.0.2.1"), mustRR(t, "web.example.test. 30 IN A 192.0.2.2")
	first, err := c.Sign(s, []dns.RR{a1, a2}, now)
	if err != nil {
		t.Fatal(err)
	}
	// The other order, another case of the owner, later in the hour: the same signature.
	again, _ := c.Sign(s, []dns.RR{mustRR(t, "WEB.example.test. 30 IN A 192.0.2.2"), a1}, now.Add(40*time.Minute))
	if again[0] != first[0] || c.Hits.Load() != 1 {
		t.Fatalf("not served from the cache: hits %d", c.Hits.Load())
	}
	if err := again[0].(*dns.RRSIG).Verify(k.DNSKEY, []dns.RR{a2, a1}); err != nil {
		t.Fatal(err)
	}
	// The next hour, another TTL, data differing in case (TXT): signed anew.
	for _, rrset := range [][]dns.RR{
		{a1, a2},
		{mustRR(t, "web.example.test. 31 IN A 192.0.2.1")},
		{mustRR(t, `t.example.test. 30 IN TXT "Hello"`)},
		{mustRR(t, `t.example.test. 30 IN TXT "hello"`)},
	} {
		at := now
		if len(rrset) == 2 {
			at = now.Add(time.Hour)
		}
		sigs, _ := c.Sign(s, rrset, at)
		if sigs[0] == first[0] {
			t.Fatalf("%v: the cached signature of another RRset", rrset)
		}
		if err := sigs[0].(*dns.RRSIG).Verify(k.DNSKEY, rrset); err != nil {
			t.Fatalf("%v: %v", rrset, err)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("%d entries, want the bound, 2", c.Len())
	}
	// A Signer made again from the same keys (a reload) shares the cache.
	s2, _ := NewSigner("example.test", []*Key{k}, Config{})
	before := c.Hits.Load()
	c.Sign(s, []dns.RR{mustRR(t, `t.example.test. 30 IN TXT "hello"`)}, now)
	c.Sign(s2, []dns.RR{mustRR(t, `t.example.test. 30 IN TXT "hello"`)}, now)
	if c.Hits.Load() != before+2 {
		t.Fatalf("hits %d, want %d: the reloaded signer missed", c.Hits.Load(), before+2)
	}
}

// TestCacheSignsOnce: concurrent requests for one RRset sign it once.
func TestCacheSignsOnce(t *testing.T) {
	k, _ := Generate("example.test", 13, FlagKSK)
	s, _ := NewSigner("example.test", []*Key{k}, Config{})
	c := NewCache(0)
	rrset := []dns.RR{mustRR(t, "web.example.test. 30 IN A 192.0.2.1")}
	now := time.Now()
	var wg sync.WaitGroup
	got := make([]dns.RR, 32)
	for i := range got {
		wg.Go(func() {
			sigs, err := c.Sign(s, rrset, now)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = sigs[0]
		})
	}
	wg.Wait()
	distinct := map[dns.RR]bool{}
	for _, g := range got {
		distinct[g] = true
	}
	// ECDSA signatures are randomized: one signature shared means one signing.
	if len(distinct) != 1 {
		t.Fatalf("%d distinct signatures for one RRset: it was signed more than once", len(distinct))
	}
}

// TestCacheWire: the wire form of an entry, after a pointer to the question, unpacks to
// its RRSIGs, and a KeyBuilder given the parts of an RRset makes the key Sign uses.
func TestCacheWire(t *testing.T) {
	ksk, _ := Generate("example.test", 13, FlagKSK)
	zsk, _ := Generate("example.test", 15, FlagZSK)
	s, _ := NewSigner("example.test", []*Key{ksk, zsk}, Config{}) // two algorithms: two RRSIGs
	c := NewCache(0)
	now := time.Now()
	rrset := []dns.RR{mustRR(t, "web.example.test. 30 IN A 192.0.2.2"), mustRR(t, "web.example.test. 30 IN A 192.0.2.1")}
	sigs, err := c.Sign(s, rrset, now)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("%v %v", sigs, err)
	}
	kb := GetKeyBuilder()
	kb.Begin(s, now, "WEB.example.test.", dns.TypeA, dns.ClassINET, 30)
	kb.Add([]byte{192, 0, 2, 1})
	kb.Add([]byte{192, 0, 2, 2})
	key := kb.Sum()
	PutKeyBuilder(kb)
	hits := c.Hits.Load()
	wire, n, err := c.Wire(s, key, func() []dns.RR { t.Fatal("signed again"); return nil }, now)
	if err != nil || n != 2 || c.Hits.Load() != hits+1 {
		t.Fatalf("Wire: %d sigs, %v, hits %d", n, err, c.Hits.Load()-hits)
	}
	q := new(dns.Msg)
	q.SetQuestion("web.example.test.", dns.TypeA)
	msg, _ := q.Pack()
	binary.BigEndian.PutUint16(msg[6:], 2) // ANCOUNT
	for i := 0; i < n; i++ {
		msg = append(msg, 0xC0, 0x0C)
		// each RRSIG: 10 bytes of TYPE, CLASS, TTL, RDLENGTH, then RDLENGTH bytes
		l := int(binary.BigEndian.Uint16(wire[8:10]))
		msg, wire = append(msg, wire[:10+l]...), wire[10+l:]
	}
	var m dns.Msg
	if err := m.Unpack(msg); err != nil {
		t.Fatal(err)
	}
	for i, rr := range m.Answer {
		if rr.String() != sigs[i].String() {
			t.Fatalf("unpacked %v\nwant %v", rr, sigs[i])
		}
	}
}
