package testpkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Decoded is the parsed view of a packet the programs produced.
type Decoded struct {
	SrcMAC, DstMAC [6]byte
	VLAN           uint16
	Src, Dst       netip.Addr
	Proto          uint8
	TTL            uint8
	L3             []byte // from the IP header on
	L4             []byte // from the L4 header on
	SPort, DPort   uint16
	TCPFlags       uint8
	Seq, Ack       uint32
	ICMPType       uint8
	ICMPCode       uint8
	MSS            uint16 // 0 when absent
	ChecksumsOK    bool
}

// Decode parses an Ethernet frame (or a bare IP packet when noEth).
func Decode(b []byte, noEth bool) (*Decoded, error) {
	d := &Decoded{}
	et := uint16(0)
	if noEth {
		if len(b) < 1 {
			return nil, errors.New("empty packet")
		}
		if b[0]>>4 == 4 {
			et = 0x0800
		} else {
			et = 0x86dd
		}
	} else {
		if len(b) < 14 {
			return nil, errors.New("short Ethernet header")
		}
		copy(d.DstMAC[:], b[0:6])
		copy(d.SrcMAC[:], b[6:12])
		et = binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		if et == 0x8100 {
			if len(b) < 4 {
				return nil, errors.New("short VLAN tag")
			}
			d.VLAN = binary.BigEndian.Uint16(b) & 0xfff
			et = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
	}
	d.L3 = b
	ok := true
	switch et {
	case 0x0800:
		if len(b) < 20 {
			return nil, errors.New("short IPv4 header")
		}
		ihl := int(b[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if tot > len(b) || ihl > tot {
			return nil, fmt.Errorf("IPv4 total length %d > %d bytes", tot, len(b))
		}
		ok = ok && Checksum(b[:ihl]) == 0
		d.TTL, d.Proto = b[8], b[9]
		d.Src = netip.AddrFrom4([4]byte(b[12:16]))
		d.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		d.L4 = b[ihl:tot]
	case 0x86dd:
		if len(b) < 40 {
			return nil, errors.New("short IPv6 header")
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl > len(b) {
			return nil, errors.New("IPv6 payload length beyond packet")
		}
		d.Proto, d.TTL = b[6], b[7]
		d.Src = netip.AddrFrom16([16]byte(b[8:24]))
		d.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		d.L4 = b[40 : 40+pl]
	default:
		return nil, fmt.Errorf("ethertype %#x", et)
	}
	l4 := d.L4
	switch d.Proto {
	case TCP:
		if len(l4) < 20 {
			return nil, errors.New("short TCP header")
		}
		d.SPort, d.DPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		d.Seq, d.Ack = binary.BigEndian.Uint32(l4[4:]), binary.BigEndian.Uint32(l4[8:])
		d.TCPFlags = l4[13]
		doff := int(l4[12]>>4) * 4
		if doff > len(l4) || doff < 20 {
			return nil, errors.New("bad TCP data offset")
		}
		for o := 20; o < doff; {
			k := l4[o]
			if k == 0 {
				break
			}
			if k == 1 {
				o++
				continue
			}
			if o+1 >= doff || l4[o+1] < 2 {
				break
			}
			if k == 2 && l4[o+1] == 4 && o+4 <= doff {
				d.MSS = binary.BigEndian.Uint16(l4[o+2:])
			}
			o += int(l4[o+1])
		}
		ok = ok && L4Checksum(d.Src, d.Dst, TCP, l4) == 0
	case UDP:
		if len(l4) < 8 {
			return nil, errors.New("short UDP header")
		}
		d.SPort, d.DPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case ICMP:
		if len(l4) < 8 {
			return nil, errors.New("short ICMP header")
		}
		d.ICMPType, d.ICMPCode = l4[0], l4[1]
		ok = ok && Checksum(l4) == 0
	case ICMPv6:
		if len(l4) < 8 {
			return nil, errors.New("short ICMPv6 header")
		}
		d.ICMPType, d.ICMPCode = l4[0], l4[1]
		ok = ok && L4Checksum(d.Src, d.Dst, ICMPv6, l4) == 0
	}
	d.ChecksumsOK = ok
	return d, nil
}
