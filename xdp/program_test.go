//go:build linux

package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// steers loads the program for targets and reports, for a frame, whether the program
// steers it to a socket. The kernel runs it (BPF_PROG_TEST_RUN) on the frame alone; with
// no socket in the map the redirect falls back to its flags, which this test sets to
// XDP_DROP instead of XDP_PASS so that a steered frame and a passed one differ.
func steers(t *testing.T, targets []netip.AddrPort) func(f []byte) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading an XDP program needs root")
	}
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Skipf("no XSKMAP here: %v", err)
	}
	t.Cleanup(func() { xsks.Close() })
	insns, err := program(targets, xsks)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, ins := range insns {
		if ins.Symbol() == "redirect" {
			if insns[i+2].OpCode != asm.Mov.Op(asm.ImmSource) || insns[i+2].Dst != asm.R3 {
				t.Fatalf("the redirect's flags are not where the test expects them: %v", insns[i+2])
			}
			insns[i+2].Constant = 1 // XDP_DROP
			found = true
		}
	}
	if !found {
		t.Fatal("no redirect in the program")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Apache-2.0", Instructions: insns})
	if err != nil {
		t.Fatalf("the verifier refuses the program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return func(f []byte) bool {
		ret, err := prog.Run(&ebpf.RunOptions{Data: f})
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		switch ret {
		case 1:
			return true
		case xdpPass:
			return false
		}
		t.Fatalf("the program returned %d", ret)
		return false
	}
}

// frame is a UDP frame from src to dst with a 12-byte payload of zeros.
func frame(src, dst string) []byte {
	return udpFrame(nil, nil, netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), make([]byte, 12))
}

// udpFrame is an Ethernet frame carrying payload from src to dst, as a sender's kernel
// would build it. It is built as an answer from dst to src and turned round: writeReply is
// tested against the client's kernel (TestServeAnswersBothFamilies).
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	hl, et := hdr4Len, uint16(etherIP4)
	if src.Addr().Is6() {
		hl, et = hdr6Len, etherIP6
	}
	f := make([]byte, hl+len(payload))
	binary.BigEndian.PutUint16(f[12:], et)
	copy(f[hl:], payload)
	writeReply(f, query{src: dst, dst: src, hdrLen: hl}, len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	return f
}

func TestProgramSteersOnlyItsTargets(t *testing.T) {
	steered := steers(t, []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:53"),
		netip.MustParseAddrPort("192.0.2.2:5353"),
		netip.MustParseAddrPort("[2001:db8::1]:53"),
	})
	const c4, c6 = "198.51.100.7:40000", "[2001:db8:9::7]:40000"
	cases := []struct {
		name string
		f    []byte
		want bool
	}{
		{"ipv4 to the first target", frame(c4, "192.0.2.1:53"), true},
		{"ipv4 to the second target", frame(c4, "192.0.2.2:5353"), true},
		{"ipv4 to the first address, second port", frame(c4, "192.0.2.1:5353"), false},
		{"ipv4 to another address", frame(c4, "192.0.2.3:53"), false},
		{"ipv4 with a high last octet", frame(c4, "192.0.2.255:53"), false},
		{"ipv6 to the target", frame(c6, "[2001:db8::1]:53"), true},
		{"ipv6 to another address", frame(c6, "[2001:db8::2]:53"), false},
		{"ipv6 to another port", frame(c6, "[2001:db8::1]:54"), false},
	}
	with := func(f []byte, change func([]byte)) []byte { change(f); return f }
	good4, good6 := frame(c4, "192.0.2.1:53"), frame(c6, "[2001:db8::1]:53")
	cases = append(cases, []struct {
		name string
		f    []byte
		want bool
	}{
		{"tcp", with(frame(c4, "192.0.2.1:53"), func(f []byte) { f[ethLen+9] = 6 }), false},
		{"ip options", with(frame(c4, "192.0.2.1:53"), func(f []byte) { f[ethLen] = 0x46 }), false},
		{"more fragments", with(frame(c4, "192.0.2.1:53"), func(f []byte) { f[ethLen+6] |= 0x20 }), false},
		{"a later fragment", with(frame(c4, "192.0.2.1:53"), func(f []byte) { f[ethLen+7] = 8 }), false},
		{"vlan tag", with(frame(c4, "192.0.2.1:53"), func(f []byte) { binary.BigEndian.PutUint16(f[12:], 0x8100) }), false},
		{"arp", with(frame(c4, "192.0.2.1:53"), func(f []byte) { binary.BigEndian.PutUint16(f[12:], 0x0806) }), false},
		{"ipv6 hop-by-hop header", with(frame(c6, "[2001:db8::1]:53"), func(f []byte) { f[ethLen+6] = 0 }), false},
		{"truncated ipv4", good4[:hdr4Len-1], false},
		{"truncated ipv6", good6[:hdr6Len-1], false},
		{"ethernet only", good4[:ethLen], false},
	}...)
	for _, c := range cases {
		if got := steered(c.f); got != c.want {
			t.Errorf("%s: steered %v, want %v", c.name, got, c.want)
		}
	}
}

func TestProgramUnspecifiedTargets(t *testing.T) {
	any4 := steers(t, []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")})
	if !any4(frame("198.51.100.7:4000", "192.0.2.9:53")) || any4(frame("[2001:db8::7]:4000", "[2001:db8::1]:53")) {
		t.Error("0.0.0.0 must steer any IPv4 destination and no IPv6 one")
	}
	dual := steers(t, []netip.AddrPort{netip.MustParseAddrPort("[::]:53")})
	if !dual(frame("198.51.100.7:4000", "192.0.2.9:53")) || !dual(frame("[2001:db8::7]:4000", "[2001:db8::1]:53")) {
		t.Error(":: must steer both families, as a dual-stack socket answers both")
	}
	if dual(frame("198.51.100.7:4000", "192.0.2.9:54")) {
		t.Error(":: on port 53 steered port 54")
	}
}
