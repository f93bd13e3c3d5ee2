package dnsserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// testCookieSecrets are the secrets of the test servers (fastServer, generalOnly), and
// otherSecret one they do not know.
var (
	testCookieSecrets = []CookieSecret{mustSecret("000102030405060708090a0b0c0d0e0f")}
	otherSecret       = mustSecret("f0e0d0c0b0a090807060504030201000")
	testClientCookie  = []byte{0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57}
)

func mustSecret(h string) CookieSecret {
	s, err := ParseCookieSecrets(h)
	if err != nil {
		panic(err)
	}
	return s[0]
}

func mustUnhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mintCookie is the COOKIE option data a server with secret answers client cookie cc
// from addr with at now: cc and the server cookie.
func mintCookie(secret CookieSecret, cc []byte, addr netip.Addr, now uint32) []byte {
	var out [replyCookieLen]byte
	copy(out[:], cc)
	newCookieKeys([]CookieSecret{secret}).keys[0].mint(&out, addr.Unmap(), now)
	return out[:]
}

// testCookieBytes is the COOKIE option data of a query from src: "client", a client
// cookie alone; "valid", with the server cookie the test servers mint for src now; "bad",
// with one of another secret.
func testCookieBytes(kind string, src netip.AddrPort) []byte {
	switch kind {
	case "valid":
		return mintCookie(testCookieSecrets[0], testClientCookie, src.Addr(), clock.seconds())
	case "bad":
		return mintCookie(otherSecret, testClientCookie, src.Addr(), clock.seconds())
	}
	return testClientCookie
}

// testCookie is testCookieBytes in hex, as miekg's EDNS0_COOKIE takes it.
func testCookie(t *testing.T, kind string, src netip.AddrPort) string {
	return hex.EncodeToString(testCookieBytes(kind, src))
}

// maskServerCookie zeroes the timestamp and hash of the server cookie that ends msg (the
// COOKIE option is the last of the OPT, which is the last record).
func maskServerCookie(t *testing.T, msg []byte) []byte {
	t.Helper()
	n := len(msg)
	if n < 4+replyCookieLen || !bytes.Equal(msg[n-4-replyCookieLen:n-replyCookieLen], []byte{0, ednsOptionCookie, 0, replyCookieLen}) {
		t.Fatalf("reply %x does not end in a COOKIE option", msg)
	}
	msg = bytes.Clone(msg)
	clear(msg[n-12:])
	return msg
}

// TestServerCookieVectors mints the server cookies of RFC 9018 Appendix A and checks the
// cookies its clients send back, so that our cookies are the ones another
// implementation of RFC 9018 with the same secret mints and accepts.
func TestServerCookieVectors(t *testing.T) {
	for _, c := range []struct {
		name, secret, client, ip string
		at                       uint32
		want                     string
	}{
		{"A.1", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", 1559731985, "010000005cf79f111f8130c3eee29480"},
		{"A.2", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", 1559734385, "010000005cf7a871d4a564a1442aca77"},
		{"A.3", "e5e973e5a6b2a43f48e7dc849e37bfcf", "fc93fc62807ddb86", "203.0.113.203", 1559734700, "010000005cf7a9acf73a7810aca2381e"},
		{"A.4", "445536bcd2513298075a5d379663c962", "22681ab97d52c298", "2001:db8:220:1:59de:d0f4:8769:82b8", 1559741961, "010000005cf7c609a6bb79d16625507a"},
	} {
		got := mintCookie(mustSecret(c.secret), mustUnhex(t, c.client), netip.MustParseAddr(c.ip), c.at)
		if h := hex.EncodeToString(got[clientCookieLen:]); h != c.want {
			t.Errorf("%s: server cookie %s, want %s", c.name, h, c.want)
		}
	}

	// What the clients of the appendix send: A.2's query carries A.1's cookie, A.3's one
	// whose reserved octets another server set (minted at 1559727985), A.4's one of the
	// secret before the rollover.
	for _, c := range []struct {
		name, secrets, ip, cookie string
		now                       uint32
		want                      cookieVerdict
	}{
		{"A.2", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559734385, cookieValid},
		{"A.3", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559727985 + 60, cookieValid},
		{"A.3 from another address", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.204", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559727985 + 60, cookieBad},
		{"A.3 as the appendix has it, 1h52m after it was minted", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700, cookieBad},
		{"A.4 with the old secret listed", "445536bcd2513298075a5d379663c962\ndd3bdf9344b678b185a6f5cb60fca715", "2001:db8:220:1:59de:d0f4:8769:82b8", "22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, cookieValid},
		{"A.4 with the new secret alone", "445536bcd2513298075a5d379663c962", "2001:db8:220:1:59de:d0f4:8769:82b8", "22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, cookieBad},
		{"A.2 after an hour and a second", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 + 3601, cookieBad},
		{"A.2 from 5 minutes ahead", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 - 300, cookieValid},
		{"A.2 from 5 minutes and a second ahead", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 - 301, cookieBad},
		{"a client cookie alone", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c957", 1559731985, cookieClientOnly},
		{"an 8-octet server cookie of another kind", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100", "2464c4abcf10c9570102030405060708", 1559731985, cookieBad},
	} {
		secrets, err := ParseCookieSecrets(c.secrets)
		if err != nil {
			t.Fatal(err)
		}
		data := mustUnhex(t, c.cookie)
		q := query{cookieOff: 0, cookieLen: uint8(len(data))}
		addr := netip.MustParseAddr(c.ip)
		newCookieKeys(secrets).judge(&q, data, addr, c.now)
		if q.cookie != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, q.cookie, c.want)
		}
		if !bytes.Equal(q.cookieOut[:clientCookieLen], data[:clientCookieLen]) {
			t.Errorf("%s: reply cookie %x does not start with the client cookie", c.name, q.cookieOut)
		}
		// The reply's server cookie: the one sent when valid and under half an hour old,
		// else a fresh one for now.
		fresh := mintCookie(secrets[0], data[:clientCookieLen], addr, c.now)
		want := fresh
		if c.want == cookieValid && cookieAge(binary.BigEndian.Uint32(data[12:]), c.now) < cookieRenewAge {
			want = data
		}
		if !bytes.Equal(q.cookieOut[:], want) {
			t.Errorf("%s: reply cookie %x, want %x", c.name, q.cookieOut, want)
		}
	}
}

func TestParseCookieSecrets(t *testing.T) {
	s, err := ParseCookieSecrets("# rotated 2026-12-01\n000102030405060708090a0b0c0d0e0f\n\n  f0e0d0c0b0a090807060504030201000  \n")
	if err != nil || len(s) != 2 || s[0][1] != 1 || s[1][0] != 0xf0 {
		t.Fatalf("got %x, %v", s, err)
	}
	for _, bad := range []string{"", "# nothing\n", "0001", "000102030405060708090a0b0c0d0e0g", "000102030405060708090a0b0c0d0e0f00"} {
		if _, err := ParseCookieSecrets(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// cookieOf returns the COOKIE option of reply, or nil.
func cookieOf(t *testing.T, reply []byte) []byte {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("unpack %x: %v", reply, err)
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return mustUnhex(t, c.Cookie)
			}
		}
	}
	return nil
}

func rcodeOf(t *testing.T, reply []byte) int {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("unpack %x: %v", reply, err)
	}
	return m.Rcode
}

// TestCookies follows a client through the cookie exchange of RFC 7873 Section 5 on a
// server with cookies on, over UDP and TCP, on the fast path (static.glb.example.com A)
// and the general path (MX): a client cookie gets a server cookie back; sent back, it is
// valid and answered; a server cookie of another secret gets BADCOOKIE over UDP with a
// fresh cookie, and an answer over TCP; a node that shares the secret accepts the cookie
// another minted; a malformed option is FORMERR.
func TestCookies(t *testing.T) {
	a, b := fastServer(t), fastServer(t) // two nodes that share testCookieSecrets
	lone := New(Config{Logger: testLogger(), CookieSecrets: []CookieSecret{otherSecret}})
	lone.SetSnapshot(loadSnapshot(t))
	src := netip.MustParseAddrPort("198.51.100.7:5353")
	for _, qt := range []uint16{dns.TypeA, dns.TypeMX} {
		ask := func(s *Server, cookie []byte, tcp bool) []byte {
			m := newQuery("static.glb.example.com.", qt)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: cookie})
			r := s.Handle(packed(t, m), src, tcp, nil)
			if r == nil {
				t.Fatalf("%s: no reply", dns.TypeToString[qt])
			}
			return r
		}
		r := ask(a, testClientCookie, false)
		got := cookieOf(t, r)
		if rcodeOf(t, r) != dns.RcodeSuccess || len(got) != replyCookieLen || !bytes.Equal(got[:8], testClientCookie) || got[8] != 1 {
			t.Fatalf("%s: a client cookie got rcode %d, cookie %x", dns.TypeToString[qt], rcodeOf(t, r), got)
		}
		for name, s := range map[string]*Server{"the same node": a, "a node sharing the secret": b} {
			for _, tcp := range []bool{false, true} {
				r := ask(s, got, tcp)
				if rcodeOf(t, r) != dns.RcodeSuccess || !bytes.Equal(cookieOf(t, r), got) {
					t.Errorf("%s: the server cookie sent back to %s (tcp %v): rcode %d, cookie %x, want NOERROR and it echoed", dns.TypeToString[qt], name, tcp, rcodeOf(t, r), cookieOf(t, r))
				}
			}
		}
		r = ask(lone, got, false)
		fresh := cookieOf(t, r)
		if rcodeOf(t, r) != dns.RcodeBadCookie || len(fresh) != replyCookieLen || bytes.Equal(fresh, got) {
			t.Errorf("%s: a cookie of another secret over UDP: rcode %d, cookie %x, want BADCOOKIE and a fresh one", dns.TypeToString[qt], rcodeOf(t, r), fresh)
		}
		if r := ask(lone, fresh, false); rcodeOf(t, r) != dns.RcodeSuccess {
			t.Errorf("%s: the fresh cookie from BADCOOKIE sent back: rcode %d", dns.TypeToString[qt], rcodeOf(t, r))
		}
		if r := ask(lone, got, true); rcodeOf(t, r) != dns.RcodeSuccess || len(cookieOf(t, r)) != replyCookieLen {
			t.Errorf("%s: a cookie of another secret over TCP: rcode %d, want an answer with a fresh cookie", dns.TypeToString[qt], rcodeOf(t, r))
		}
		for _, n := range []int{0, 7, 9, 15, 41} {
			if r := ask(a, bytes.Repeat([]byte{7}, n), false); rcodeOf(t, r) != dns.RcodeFormatError {
				t.Errorf("%s: a COOKIE option of %d octets: rcode %d, want FORMERR", dns.TypeToString[qt], n, rcodeOf(t, r))
			}
		}
	}
	// A server without secrets ignores the option, as an option it does not implement.
	off := New(Config{Logger: testLogger()})
	off.SetSnapshot(loadSnapshot(t))
	r := off.Handle(withOption(t, dns.EDNS0COOKIE, testClientCookie), src, false, nil)
	if rcodeOf(t, r) != dns.RcodeSuccess || cookieOf(t, r) != nil {
		t.Errorf("cookies off: rcode %d, cookie %x, want an answer without one", rcodeOf(t, r), cookieOf(t, r))
	}
}
