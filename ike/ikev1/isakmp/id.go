package isakmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IDType is an identification type of the IPsec DOI (RFC 2407 §4.6.2.1).
type IDType uint8

// Identification types.
const (
	IDIPv4Addr       IDType = 1
	IDFQDN           IDType = 2
	IDUserFQDN       IDType = 3
	IDIPv4AddrSubnet IDType = 4
	IDIPv6Addr       IDType = 5
	IDIPv6AddrSubnet IDType = 6
	IDIPv4AddrRange  IDType = 7
	IDIPv6AddrRange  IDType = 8
	IDDerASN1DN      IDType = 9
	IDDerASN1GN      IDType = 10
	IDKeyID          IDType = 11
)

func (t IDType) String() string {
	switch t {
	case IDIPv4Addr:
		return "ipv4"
	case IDFQDN:
		return "fqdn"
	case IDUserFQDN:
		return "user-fqdn"
	case IDIPv4AddrSubnet:
		return "ipv4_subnet"
	case IDIPv6Addr:
		return "ipv6"
	case IDIPv6AddrSubnet:
		return "ipv6_subnet"
	case IDIPv4AddrRange:
		return "ipv4_range"
	case IDIPv6AddrRange:
		return "ipv6_range"
	case IDDerASN1DN:
		return "der_asn1_dn"
	case IDDerASN1GN:
		return "der_asn1_gn"
	case IDKeyID:
		return "key_id"
	}
	return fmt.Sprintf("ID(%d)", uint8(t))
}

// ID is an identification payload (RFC 2407 §4.6.2). In phase 1 it names a
// peer; in Quick Mode it is a proxy identity (client ID) whose Protocol and
// Port narrow the selector.
type ID struct {
	IDType   IDType
	Protocol uint8
	Port     uint16
	Data     []byte
}

// Type implements Payload.
func (*ID) Type() PayloadType { return PayloadID }

// AppendBody implements Payload.
func (id *ID) AppendBody(b []byte) []byte {
	b = append(b, byte(id.IDType), id.Protocol)
	b = binary.BigEndian.AppendUint16(b, id.Port)
	return append(b, id.Data...)
}

// ParseID decodes the body of an ID payload and checks the data length of
// the address types.
func ParseID(body []byte) (*ID, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("ID payload: %d bytes: %w", len(body), ErrTruncated)
	}
	id := &ID{IDType: IDType(body[0]), Protocol: body[1], Port: binary.BigEndian.Uint16(body[2:]), Data: body[4:]}
	want := -1
	switch id.IDType {
	case IDIPv4Addr:
		want = 4
	case IDIPv4AddrSubnet, IDIPv4AddrRange:
		want = 8
	case IDIPv6Addr:
		want = 16
	case IDIPv6AddrSubnet, IDIPv6AddrRange:
		want = 32
	case IDFQDN, IDUserFQDN, IDKeyID, IDDerASN1DN, IDDerASN1GN:
		if len(id.Data) == 0 {
			return nil, fmt.Errorf("ID payload: empty %s: %w", id.IDType, ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("ID payload: unknown type %d: %w", id.IDType, ErrMalformed)
	}
	if want >= 0 && len(id.Data) != want {
		return nil, fmt.Errorf("ID payload: %s with %d bytes of data, want %d: %w", id.IDType, len(id.Data), want, ErrMalformed)
	}
	return id, nil
}

// AddrID returns an IPV4_ADDR or IPV6_ADDR identity for a.
func AddrID(a netip.Addr) *ID {
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		return &ID{IDType: IDIPv4Addr, Data: v[:]}
	}
	v := a.As16()
	return &ID{IDType: IDIPv6Addr, Data: v[:]}
}

// PrefixID returns a proxy identity for p: IPV4_ADDR_SUBNET or
// IPV6_ADDR_SUBNET (as Junos and strongSwan send for 0.0.0.0/0), with the
// given IP protocol and port (0 = any).
func PrefixID(p netip.Prefix, proto uint8, port uint16) *ID {
	p = p.Masked()
	a := p.Addr().Unmap()
	id := &ID{Protocol: proto, Port: port}
	if a.Is4() {
		v := a.As4()
		id.IDType = IDIPv4AddrSubnet
		id.Data = append(v[:], maskBytes(4, p.Bits())...)
		return id
	}
	v := a.As16()
	id.IDType = IDIPv6AddrSubnet
	id.Data = append(v[:], maskBytes(16, p.Bits())...)
	return id
}

func maskBytes(n, bits int) []byte {
	m := make([]byte, n)
	for i := 0; i < n; i++ {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// Prefix returns the address range of an address or subnet identity.
// Subnet masks must be contiguous. Range identities are accepted when they
// describe exactly one prefix.
func (id *ID) Prefix() (netip.Prefix, error) {
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		a, ok := netip.AddrFromSlice(id.Data)
		if !ok {
			return netip.Prefix{}, fmt.Errorf("%s identity of %d bytes: %w", id.IDType, len(id.Data), ErrMalformed)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	case IDIPv4AddrSubnet, IDIPv6AddrSubnet:
		n := len(id.Data) / 2
		if n != 4 && n != 16 || len(id.Data) != 2*n {
			return netip.Prefix{}, fmt.Errorf("%s identity of %d bytes: %w", id.IDType, len(id.Data), ErrMalformed)
		}
		a, _ := netip.AddrFromSlice(id.Data[:n])
		bits, err := maskLen(id.Data[n:])
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s identity: %w", id.IDType, err)
		}
		return netip.PrefixFrom(a, bits).Masked(), nil
	case IDIPv4AddrRange, IDIPv6AddrRange:
		n := len(id.Data) / 2
		if n != 4 && n != 16 || len(id.Data) != 2*n {
			return netip.Prefix{}, fmt.Errorf("%s identity of %d bytes: %w", id.IDType, len(id.Data), ErrMalformed)
		}
		lo, _ := netip.AddrFromSlice(id.Data[:n])
		hi, _ := netip.AddrFromSlice(id.Data[n:])
		for bits := 0; bits <= lo.BitLen(); bits++ {
			p := netip.PrefixFrom(lo, bits)
			if p.Masked().Addr() == lo && lastAddr(p) == hi {
				return p, nil
			}
		}
		return netip.Prefix{}, fmt.Errorf("%s identity %s-%s is not a prefix: %w", id.IDType, lo, hi, ErrMalformed)
	}
	return netip.Prefix{}, fmt.Errorf("%s identity has no address range", id.IDType)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		if host >= 8 {
			b[i] = 0xff
			host -= 8
		} else {
			b[i] |= byte(1<<host - 1)
			host = 0
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func maskLen(m []byte) (int, error) {
	bits := 0
	i := 0
	for ; i < len(m) && m[i] == 0xff; i++ {
		bits += 8
	}
	if i < len(m) {
		b := m[i]
		for b&0x80 != 0 {
			bits++
			b <<= 1
		}
		if b != 0 {
			return 0, fmt.Errorf("mask %x not contiguous: %w", m, ErrMalformed)
		}
		for _, r := range m[i+1:] {
			if r != 0 {
				return 0, fmt.Errorf("mask %x not contiguous: %w", m, ErrMalformed)
			}
		}
	}
	return bits, nil
}

// String renders the identity for logs and show output.
func (id *ID) String() string {
	switch id.IDType {
	case IDFQDN, IDUserFQDN, IDKeyID:
		return fmt.Sprintf("%s(%q)", id.IDType, id.Data)
	case IDDerASN1DN, IDDerASN1GN:
		return fmt.Sprintf("%s(%d bytes)", id.IDType, len(id.Data))
	}
	p, err := id.Prefix()
	if err != nil {
		return fmt.Sprintf("%s(invalid)", id.IDType)
	}
	proto := "any"
	if id.Protocol != 0 {
		proto = fmt.Sprint(id.Protocol)
	}
	return fmt.Sprintf("%s(%s:%d,%s)", id.IDType, proto, id.Port, p)
}
