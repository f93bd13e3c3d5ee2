package api

import (
	"net/netip"
	"strings"
)

// ParseMemberAddress reads a member's address as the policy does: an IPv4 or IPv6
// address without a zone, unmapped (::ffff:192.0.2.1 is answered as A, not AAAA). The
// policy compiles addresses with it and the Terraform provider checks them at plan time
// with it, so that both refuse the same.
func ParseMemberAddress(s string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// ValidMemberHost says that s is a host name a member may have (answered as a CNAME), as
// the policy checks it; the Terraform provider checks hosts at plan time with it.
func ValidMemberHost(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return ValidHost(s)
}

// ValidHost says that s, lower case and fully qualified, is a host name: labels of 1 to
// 63 letters, digits, '-' or '_', at most 254 bytes in all.
func ValidHost(s string) bool {
	if len(s) < 2 || len(s) > 254 || !strings.HasSuffix(s, ".") {
		return false
	}
	for _, label := range strings.Split(s[:len(s)-1], ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
