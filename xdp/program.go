//go:build linux

package xdp

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The program's registers: the context and the packet pointers live in callee-saved
// registers, the scratch values in the argument registers the helper call overwrites.
const (
	ctx, data, end, tmp, val = asm.R6, asm.R7, asm.R8, asm.R2, asm.R3
)

// xdpPass is the XDP action that hands a frame on to the kernel's stack.
const xdpPass = 2

// program is the XDP program's instructions for the given targets: a frame whose
// destination address and UDP port are one of them is redirected to the AF_XDP socket of
// its receive queue (through the XSKMAP xsks), and every other frame passes. A target with
// an unspecified address matches any destination of its family (and "::" either family,
// as a dual-stack socket bound to it answers both).
//
// The program reads the frame through the packet pointers the verifier checks, so each
// read is preceded by a bounds check against data_end. Multi-byte fields are loaded as the
// machine's (little-endian) integers and compared with constants in the same order.
func program(targets []netip.AddrPort, xsks *ebpf.Map) (asm.Instructions, error) {
	var v4, v6 []netip.AddrPort
	for _, t := range targets {
		a := t.Addr()
		switch {
		case a.Is4() || a.Is4In6():
			v4 = append(v4, netip.AddrPortFrom(a.Unmap(), t.Port()))
		case a.IsUnspecified():
			v4 = append(v4, netip.AddrPortFrom(netip.IPv4Unspecified(), t.Port()))
			v6 = append(v6, t)
		default:
			v6 = append(v6, t)
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, fmt.Errorf("no address to steer")
	}
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		// struct xdp_md: data at 0, data_end at 4, rx_queue_index at 16.
		asm.LoadMem(data, ctx, 0, asm.Word),
		asm.LoadMem(end, ctx, 4, asm.Word),
		asm.Mov.Reg(tmp, data),
		asm.Add.Imm(tmp, hdr4Len),
		asm.JGT.Reg(tmp, end, "pass"),
		asm.LoadMem(val, data, 12, asm.Half),
		asm.JEq.Imm(val, int32(le16(etherIP4)), "ipv4"),
		asm.JEq.Imm(val, int32(le16(etherIP6)), "ipv6"),
		asm.Ja.Label("pass"),
	}
	// IPv4: version 4 with a 20-byte header, UDP, neither more fragments nor an offset.
	insns = append(insns,
		asm.LoadMem(val, data, ethLen, asm.Byte).WithSymbol("ipv4"),
		asm.JNE.Imm(val, 0x45, "pass"),
		asm.LoadMem(val, data, ethLen+9, asm.Byte),
		asm.JNE.Imm(val, protoUDP, "pass"),
		asm.LoadMem(val, data, ethLen+6, asm.Half),
		asm.And.Imm(val, int32(le16(0x3fff))),
		asm.JNE.Imm(val, 0, "pass"),
	)
	insns = append(insns, targetBlocks("v4", v4, ethLen+12+4, ethLen+ipv4Len+2)...)
	if len(v4) == 0 {
		insns = append(insns, asm.Ja.Label("pass"))
	}
	// IPv6: the whole 62-byte header present, UDP as the first next header.
	insns = append(insns,
		asm.Mov.Reg(tmp, data).WithSymbol("ipv6"),
		asm.Add.Imm(tmp, hdr6Len),
		asm.JGT.Reg(tmp, end, "pass"),
		asm.LoadMem(val, data, ethLen+6, asm.Byte),
		asm.JNE.Imm(val, protoUDP, "pass"),
	)
	insns = append(insns, targetBlocks("v6", v6, ethLen+24, ethLen+ipv6Len+2)...)
	if len(v6) == 0 {
		insns = append(insns, asm.Ja.Label("pass"))
	}
	insns = append(insns,
		// bpf_redirect_map(xsks, rx_queue_index, XDP_PASS): a queue without a socket in the
		// map passes the frame to the kernel instead of dropping it.
		asm.LoadMem(asm.R2, ctx, 16, asm.Word).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return insns, nil
}

// le16 is the value a little-endian load gives for the network-order 16-bit field v.
func le16(v uint16) uint16 { return v>>8 | v<<8 }

// targetBlocks matches the frame against each target of one family in turn: the
// destination address at addrOff (skipped for an unspecified target) and the destination
// port at portOff; a match jumps to "redirect", the last miss to "pass".
func targetBlocks(family string, targets []netip.AddrPort, addrOff, portOff int16) asm.Instructions {
	var insns asm.Instructions
	for i, t := range targets {
		next := fmt.Sprintf("%s.%d", family, i+1)
		if i == len(targets)-1 {
			next = "pass"
		}
		var block asm.Instructions
		if !t.Addr().IsUnspecified() {
			a := t.Addr().AsSlice()
			for w := 0; w < len(a); w += 4 {
				block = append(block,
					asm.LoadMem(val, data, addrOff+int16(w), asm.Word),
					asm.JNE.Imm32(val, int32(binary.LittleEndian.Uint32(a[w:])), next))
			}
		}
		block = append(block,
			asm.LoadMem(val, data, portOff, asm.Half),
			asm.JEq.Imm(val, int32(le16(t.Port())), "redirect"),
			asm.Ja.Label(next))
		if i > 0 {
			block[0] = block[0].WithSymbol(fmt.Sprintf("%s.%d", family, i))
		}
		insns = append(insns, block...)
	}
	return insns
}
