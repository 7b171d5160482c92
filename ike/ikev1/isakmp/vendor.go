package isakmp

import "bytes"

// Vendor IDs this engine sends or recognises.
var (
	// VIDNATTRFC3947 is MD5("RFC 3947").
	VIDNATTRFC3947 = []byte{0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f}
	// VIDNATTDraft02N is MD5("draft-ietf-ipsec-nat-t-ike-02\n").
	VIDNATTDraft02N = []byte{0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f}
	// VIDNATTDraft02 is MD5("draft-ietf-ipsec-nat-t-ike-02").
	VIDNATTDraft02 = []byte{0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48}
	// VIDNATTDraft03 is MD5("draft-ietf-ipsec-nat-t-ike-03").
	VIDNATTDraft03 = []byte{0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52, 0x9d, 0x56}
	// VIDDPD announces RFC 3706 dead peer detection (version 1.0).
	VIDDPD = []byte{0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00}
)

// NATTMethod is the NAT traversal flavour agreed through vendor IDs.
type NATTMethod uint8

// NAT traversal methods, weakest first.
const (
	NATTNone NATTMethod = iota
	NATTDraft02
	NATTDraft03
	NATTRFC
)

// NATDType returns the NAT-D payload type used by method m.
func (m NATTMethod) NATDType() PayloadType {
	if m == NATTRFC {
		return PayloadNATD
	}
	return PayloadNATDDraft
}

// EncapTunnel returns the UDP-encapsulated tunnel mode value of method m.
func (m NATTMethod) EncapTunnel() uint16 {
	if m == NATTRFC {
		return EncapUDPTunnel
	}
	return EncapUDPTunnelDraft
}

// NATTFromVendorIDs returns the best NAT traversal method announced by vids.
func NATTFromVendorIDs(vids [][]byte) NATTMethod {
	best := NATTNone
	for _, v := range vids {
		m := NATTNone
		switch {
		case bytes.Equal(v, VIDNATTRFC3947):
			m = NATTRFC
		case bytes.Equal(v, VIDNATTDraft03):
			m = NATTDraft03
		case bytes.Equal(v, VIDNATTDraft02), bytes.Equal(v, VIDNATTDraft02N):
			m = NATTDraft02
		}
		if m > best {
			best = m
		}
	}
	return best
}

// HasVendorID reports whether vids contains v.
func HasVendorID(vids [][]byte, v []byte) bool {
	for _, x := range vids {
		if bytes.Equal(x, v) {
			return true
		}
	}
	return false
}
