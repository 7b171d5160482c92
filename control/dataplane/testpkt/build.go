// Package testpkt builds and checks packets by hand for the data-plane
// tests and benchmarks (Ethernet, 802.1Q, IPv4/IPv6 with fragments, TCP,
// UDP, ICMP, ICMPv6, ESP).
package testpkt

import (
	"encoding/binary"
	"net/netip"
)

// Protocol numbers.
const (
	ICMP   = 1
	TCP    = 6
	UDP    = 17
	ESP    = 50
	ICMPv6 = 58
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// Packet describes a packet to build. Zero values take sensible defaults.
type Packet struct {
	SrcMAC, DstMAC [6]byte
	VLAN           uint16 // 802.1Q tag when non-zero
	NoEth          bool   // start at the IP header (XFRM devices)
	Src, Dst       netip.Addr
	Proto          uint8
	TTL            uint8
	SPort, DPort   uint16
	TCPFlags       uint8
	Seq, Ack       uint32
	TCPOptions     []byte // padded to 4 bytes
	ICMPType       uint8
	ICMPCode       uint8
	ICMPID         uint16
	SPI            uint32 // ESP
	Payload        []byte
	// Fragments: FragOffset in 8-byte units; MoreFrags sets MF.
	FragOffset uint16
	MoreFrags  bool
	FragID     uint32
	// L4Raw replaces the built L4 header and payload (for later fragments).
	L4Raw []byte
}

// MSSOption is a TCP MSS option.
func MSSOption(mss uint16) []byte { return []byte{2, 4, byte(mss >> 8), byte(mss)} }

func sum16(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = (acc & 0xffff) + acc>>16
	}
	return ^uint16(acc)
}

// Checksum is the Internet checksum of b.
func Checksum(b []byte) uint16 { return fold(sum16(b, 0)) }

func pseudo(src, dst netip.Addr, proto uint8, length int) uint32 {
	var acc uint32
	acc = sum16(src.AsSlice(), acc)
	acc = sum16(dst.AsSlice(), acc)
	acc += uint32(proto)
	acc += uint32(length)
	return acc
}

// L4Checksum computes the checksum of an L4 segment with its pseudo header.
func L4Checksum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	return fold(sum16(seg, pseudo(src, dst, proto, len(seg))))
}

func (p *Packet) l4() []byte {
	if p.L4Raw != nil {
		return p.L4Raw
	}
	var h []byte
	switch p.Proto {
	case TCP:
		opts := append([]byte(nil), p.TCPOptions...)
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
		h = make([]byte, 20+len(opts))
		binary.BigEndian.PutUint16(h[0:], p.SPort)
		binary.BigEndian.PutUint16(h[2:], p.DPort)
		binary.BigEndian.PutUint32(h[4:], p.Seq)
		binary.BigEndian.PutUint32(h[8:], p.Ack)
		h[12] = byte((20 + len(opts)) / 4 << 4)
		h[13] = p.TCPFlags
		binary.BigEndian.PutUint16(h[14:], 65535)
		copy(h[20:], opts)
	case UDP:
		h = make([]byte, 8)
		binary.BigEndian.PutUint16(h[0:], p.SPort)
		binary.BigEndian.PutUint16(h[2:], p.DPort)
		binary.BigEndian.PutUint16(h[4:], uint16(8+len(p.Payload)))
	case ICMP, ICMPv6:
		h = make([]byte, 8)
		h[0], h[1] = p.ICMPType, p.ICMPCode
		binary.BigEndian.PutUint16(h[4:], p.ICMPID)
		binary.BigEndian.PutUint16(h[6:], 1)
	case ESP:
		h = make([]byte, 8)
		binary.BigEndian.PutUint32(h[0:], p.SPI)
		binary.BigEndian.PutUint32(h[4:], 1)
	}
	seg := append(h, p.Payload...)
	switch p.Proto {
	case TCP:
		binary.BigEndian.PutUint16(seg[16:], L4Checksum(p.Src, p.Dst, TCP, seg))
	case UDP:
		c := L4Checksum(p.Src, p.Dst, UDP, seg)
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(seg[6:], c)
	case ICMP:
		binary.BigEndian.PutUint16(seg[2:], Checksum(seg))
	case ICMPv6:
		binary.BigEndian.PutUint16(seg[2:], L4Checksum(p.Src, p.Dst, ICMPv6, seg))
	}
	return seg
}

// Bytes builds the packet.
func (p Packet) Bytes() []byte {
	if p.TTL == 0 {
		p.TTL = 64
	}
	seg := p.l4()
	var l3 []byte
	if p.Src.Is4() {
		l3 = make([]byte, 20)
		l3[0] = 0x45
		binary.BigEndian.PutUint16(l3[2:], uint16(20+len(seg)))
		binary.BigEndian.PutUint16(l3[4:], uint16(p.FragID))
		fo := p.FragOffset & 0x1fff
		if p.MoreFrags {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(l3[6:], fo)
		l3[8] = p.TTL
		l3[9] = p.Proto
		s, d := p.Src.As4(), p.Dst.As4()
		copy(l3[12:], s[:])
		copy(l3[16:], d[:])
		binary.BigEndian.PutUint16(l3[10:], Checksum(l3))
	} else {
		ext := []byte(nil)
		nh := p.Proto
		if p.FragOffset != 0 || p.MoreFrags {
			ext = make([]byte, 8)
			ext[0] = p.Proto
			fo := p.FragOffset << 3
			if p.MoreFrags {
				fo |= 1
			}
			binary.BigEndian.PutUint16(ext[2:], fo)
			binary.BigEndian.PutUint32(ext[4:], p.FragID)
			nh = 44
		}
		l3 = make([]byte, 40, 40+len(ext))
		l3[0] = 0x60
		binary.BigEndian.PutUint16(l3[4:], uint16(len(ext)+len(seg)))
		l3[6] = nh
		l3[7] = p.TTL
		s, d := p.Src.As16(), p.Dst.As16()
		copy(l3[8:], s[:])
		copy(l3[24:], d[:])
		l3 = append(l3, ext...)
	}
	pkt := append(l3, seg...)
	if p.NoEth {
		return pkt
	}
	eth := make([]byte, 14, 18)
	copy(eth[0:], p.DstMAC[:])
	copy(eth[6:], p.SrcMAC[:])
	et := uint16(0x0800)
	if !p.Src.Is4() {
		et = 0x86dd
	}
	if p.VLAN != 0 {
		binary.BigEndian.PutUint16(eth[12:], 0x8100)
		eth = append(eth, byte(p.VLAN>>8), byte(p.VLAN), byte(et>>8), byte(et))
	} else {
		binary.BigEndian.PutUint16(eth[12:], et)
	}
	return append(eth, pkt...)
}
