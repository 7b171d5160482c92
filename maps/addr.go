package maps

import (
	"encoding/binary"
	"net/netip"
)

// Address families as the programs store them.
const (
	AFInet  = 2
	AFInet6 = 10
)

// AddrWords lays out an address the way struct pkt / local_key hold it:
// network-order bytes in four native 32-bit words, IPv4 in the first.
func AddrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = binary.NativeEndian.Uint32(b[:])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[i*4:])
	}
	return w
}

// WordsAddr is the inverse of AddrWords.
func WordsAddr(family uint8, w [4]uint32) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[i*4:], w[i])
	}
	if family == AFInet {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// LocalKeyOf is the local_addrs / ike_limit key of an address.
func LocalKeyOf(a netip.Addr) LocalKey {
	a = a.Unmap()
	f := uint32(AFInet6)
	if a.Is4() {
		f = AFInet
	}
	return LocalKey{Family: f, Addr: AddrWords(a)}
}
