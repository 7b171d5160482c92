package testpkt

import (
	"net/netip"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: TCP, SPort: 1, DPort: 2,
			TCPFlags: SYN, TCPOptions: append([]byte{1, 1}, MSSOption(1460)...)},
		{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), Proto: ICMPv6, ICMPType: 128, VLAN: 7},
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: UDP, SPort: 5, DPort: 53, Payload: []byte("abc")},
	} {
		d, err := Decode(p.Bytes(), false)
		if err != nil {
			t.Fatal(err)
		}
		if !d.ChecksumsOK || d.Src != p.Src || d.Dst != p.Dst || d.Proto != p.Proto || d.VLAN != p.VLAN {
			t.Errorf("round trip of %+v gave %+v", p, d)
		}
		if p.Proto == TCP && d.MSS != 1460 {
			t.Errorf("MSS %d, want 1460", d.MSS)
		}
	}
}

// FuzzDecode: the decoder never panics on arbitrary input.
func FuzzDecode(f *testing.F) {
	f.Add(Packet{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: TCP,
		TCPOptions: MSSOption(1400)}.Bytes(), false)
	f.Add(Packet{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), Proto: ICMPv6}.Bytes(), true)
	f.Fuzz(func(t *testing.T, b []byte, noEth bool) {
		Decode(b, noEth)
	})
}
