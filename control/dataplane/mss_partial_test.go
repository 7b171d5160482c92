package dataplane_test

import (
	"encoding/binary"
	"testing"

	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
)

// tcpSpan returns the offsets of the TCP segment in an untagged Ethernet
// frame and the sum of its pseudo header.
func tcpSpan(b []byte) (start, end int, pseudo uint32) {
	switch b[14] >> 4 {
	case 4:
		ihl := int(b[14]&0x0f) * 4
		start, end = 14+ihl, 14+int(binary.BigEndian.Uint16(b[16:]))
		pseudo = sum16(b[26:34]) + 6 + uint32(end-start)
	default:
		start, end = 14+40, 14+40+int(binary.BigEndian.Uint16(b[18:]))
		pseudo = sum16(b[22:54]) + 6 + uint32(end-start)
	}
	return start, end, pseudo
}

func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// asPartial rewrites the TCP checksum of frame the way a sender with
// checksum offload leaves it (CHECKSUM_PARTIAL): the folded pseudo-header sum.
func asPartial(b []byte) []byte {
	b = append([]byte(nil), b...)
	start, _, pseudo := tcpSpan(b)
	binary.BigEndian.PutUint16(b[start+16:], fold(pseudo))
	return b
}

// completePartial does what the stack or the device does later with a
// CHECKSUM_PARTIAL segment: sum it from the TCP header on (checksum field
// included) and store the complement.
func completePartial(b []byte) {
	start, end, _ := tcpSpan(b)
	binary.BigEndian.PutUint16(b[start+16:], ^fold(sum16(b[start:end])))
}

// TestProgMSSPartialChecksum: a SYN whose checksum is still partial (veth
// peer with tx offload on) is clamped without touching the checksum field,
// so that the later completion gives a valid checksum; a SYN with a complete
// checksum still gets the incremental update.
func TestProgMSSPartialChecksum(t *testing.T) {
	f := newProgFixture(t)
	s := plainSpec()
	s.TCPMSS.AllTCP = 1300
	f.apply(t, s)
	ts := []byte{8, 10, 1, 2, 3, 4, 0, 0, 0, 0}
	for _, c := range []struct {
		name    string
		pkt     tp.Packet
		partial bool
	}{
		{"IPv4 into the tunnel, partial", tcp("10.1.0.2", "10.3.0.5", 2200, 443, tp.SYN, mss(1460)...), true},
		{"IPv4 MSS at odd offset, partial", tcp("10.1.0.2", "10.2.0.2", 2201, 80, tp.SYN, append([]byte{3, 3, 7}, mss(1460)...)...), true},
		{"IPv4 after timestamps, partial", tcp("10.1.0.2", "10.2.0.2", 2202, 80, tp.SYN, append(append([]byte{1, 1}, ts...), mss(1460)...)...), true},
		{"IPv6, partial", tcp("2001:db8:1::2", "2001:db8:2::2", 2203, 80, tp.SYN, mss(1440)...), true},
		{"IPv4, complete checksum", tcp("10.1.0.2", "10.2.0.2", 2204, 80, tp.SYN, mss(1460)...), false},
		{"IPv6, complete checksum", tcp("2001:db8:1::2", "2001:db8:2::2", 2205, 80, tp.SYN, mss(1440)...), false},
	} {
		p := c.pkt
		copy(p.SrcMAC[:], neighMAC1)
		copy(p.DstMAC[:], f.mac["trust0"])
		in := p.Bytes()
		if c.partial {
			in = asPartial(in)
		}
		ret, out := f.runXDP(t, "trust0", in)
		if ret != xdpPass {
			t.Errorf("%s: xdp_zone returned %d, want pass", c.name, ret)
			continue
		}
		out = out[:len(in)]
		if c.partial {
			start, _, _ := tcpSpan(in)
			if got, want := binary.BigEndian.Uint16(out[start+16:]), binary.BigEndian.Uint16(in[start+16:]); got != want {
				t.Errorf("%s: partial checksum field changed %#04x → %#04x", c.name, want, got)
			}
			completePartial(out)
		}
		d, err := tp.Decode(out, false)
		if err != nil {
			t.Errorf("%s: decode: %v", c.name, err)
			continue
		}
		if d.MSS != 1300 || !d.ChecksumsOK {
			t.Errorf("%s: MSS %d (want 1300), checksums ok %v", c.name, d.MSS, d.ChecksumsOK)
		}
	}
}
