package isakmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mainModeSA() *SA {
	return &SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{{
		Number: 1, Protocol: ProtoISAKMP,
		Transforms: []Transform{{
			Number: 1, ID: TransformKeyIKE,
			Attributes: []Attribute{
				BasicAttr(AttrEncryption, EncAESCBC),
				BasicAttr(AttrKeyLength, 256),
				BasicAttr(AttrHash, HashSHA256),
				BasicAttr(AttrAuthMethod, AuthPSK),
				BasicAttr(AttrGroup, 14),
				BasicAttr(AttrLifeType, LifeSeconds),
				UintAttr(AttrLifeDuration, 28800),
			},
		}},
	}}}
}

// TestEncodeMainMode1Wire checks the exact bytes of a first Main Mode
// message against a hand-assembled RFC 2408 layout.
func TestEncodeMainMode1Wire(t *testing.T) {
	h := Header{InitiatorCookie: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Exchange: ExchangeMain}
	got := Encode(h, []Payload{mainModeSA(), VendorID(VIDDPD)})
	want := unhex(t, `
		0102030405060708 0000000000000000 01 10 02 00 00000000 0000006c
		0d 00 003c 00000001 00000001
		  00 00 0030 01 01 00 01
		    00 00 0028 01 01 0000
		      8001 0007 800e 0100 8002 0004 8003 0001 8004 000e 800b 0001 000c 0004 00007080
		00 00 0014 afcad71368a1f1c96b8696fc77570100`)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	m, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payloads) != 2 || m.Payloads[0].Type != PayloadSA || m.Payloads[1].Type != PayloadVendorID {
		t.Fatalf("payloads %+v", m.Payloads)
	}
	sa, err := ParseSA(m.Payloads[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := sa.Proposals[0].Transforms[0]
	life, _ := tr.Attr(AttrLifeDuration)
	if v, err := life.Uint(); err != nil || v != 28800 {
		t.Fatalf("life duration %d %v", v, err)
	}
	if kl, _ := tr.Attr(AttrKeyLength); kl.Value != 256 || !kl.Basic {
		t.Fatalf("key length %+v", kl)
	}
	if !bytes.Equal(AppendBodyOf(sa), m.Payloads[0].Body) {
		t.Fatal("SA re-encoding differs")
	}
}

func AppendBodyOf(p Payload) []byte { return p.AppendBody(nil) }

func TestParseRejects(t *testing.T) {
	good := Encode(Header{Exchange: ExchangeMain}, []Payload{mainModeSA()})
	cases := map[string]func([]byte) []byte{
		"short header":      func(b []byte) []byte { return b[:20] },
		"length too long":   func(b []byte) []byte { b[27]++; return b },
		"length too short":  func(b []byte) []byte { b[27]--; return b },
		"major version 2":   func(b []byte) []byte { b[17] = 0x20; return b },
		"payload overflows": func(b []byte) []byte { b[31] = 0xff; return b },
		"payload under 4":   func(b []byte) []byte { b[30], b[31] = 0, 3; return b },
		"trailing bytes": func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			SetLength(b)
			return b
		},
	}
	for name, mut := range cases {
		b := mut(append([]byte(nil), good...))
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseSARejects(t *testing.T) {
	body := mainModeSA().AppendBody(nil)
	cases := map[string]func([]byte) []byte{
		"truncated":            func(b []byte) []byte { return b[:len(b)-1] },
		"wrong DOI":            func(b []byte) []byte { b[3] = 2; return b },
		"transform count":      func(b []byte) []byte { b[15] = 2; return b },
		"spi size":             func(b []byte) []byte { b[14] = 200; return b },
		"attr TLV overflow":    func(b []byte) []byte { b[len(b)-6] = 0x10; return b },
		"proposal next is KE":  func(b []byte) []byte { b[8] = byte(PayloadKE); return b },
		"transform next is SA": func(b []byte) []byte { b[16] = byte(PayloadSA); return b },
	}
	for name, mut := range cases {
		b := mut(append([]byte(nil), body...))
		if _, err := ParseSA(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIDPrefixes(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0", "10.100.11.0/24", "10.1.2.3/32", "::/0", "2001:db8::/48"} {
		p := netip.MustParsePrefix(s)
		id := PrefixID(p, 0, 0)
		back, err := ParseID(id.AppendBody(nil))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got, err := back.Prefix()
		if err != nil || got != p {
			t.Fatalf("%s: got %s %v", s, got, err)
		}
	}
	if got := PrefixID(netip.MustParsePrefix("0.0.0.0/0"), 0, 0).String(); got != "ipv4_subnet(any:0,0.0.0.0/0)" {
		t.Fatalf("string %q", got)
	}
	a := AddrID(netip.MustParseAddr("172.16.13.1"))
	if p, err := a.Prefix(); err != nil || p.String() != "172.16.13.1/32" {
		t.Fatalf("addr id %s %v", p, err)
	}
	// A range that is exactly one prefix.
	r := &ID{IDType: IDIPv4AddrRange, Data: []byte{10, 0, 0, 0, 10, 0, 0, 255}}
	if p, err := r.Prefix(); err != nil || p.String() != "10.0.0.0/24" {
		t.Fatalf("range %s %v", p, err)
	}
	r.Data[7] = 254
	if _, err := r.Prefix(); err == nil {
		t.Fatal("range 10.0.0.0-10.0.0.254 accepted as prefix")
	}
	bad := &ID{IDType: IDIPv4AddrSubnet, Data: []byte{10, 0, 0, 0, 255, 0, 255, 0}}
	if _, err := bad.Prefix(); err == nil {
		t.Fatal("non-contiguous mask accepted")
	}
	for _, body := range [][]byte{{1, 0, 0, 0, 1, 2, 3}, {6, 0, 0, 0, 1}, {2, 0, 0, 0}, {99, 0, 0, 0, 1}, {1, 0}} {
		if _, err := ParseID(body); err == nil {
			t.Errorf("ParseID(%x) accepted", body)
		}
	}
	fq, err := ParseID((&ID{IDType: IDFQDN, Data: []byte("gw.example")}).AppendBody(nil))
	if err != nil || string(fq.Data) != "gw.example" {
		t.Fatalf("fqdn %v", err)
	}
	uf, err := ParseID((&ID{IDType: IDUserFQDN, Data: []byte("a@b")}).AppendBody(nil))
	if err != nil || uf.IDType != IDUserFQDN {
		t.Fatalf("user fqdn %v", err)
	}
	port := PrefixID(netip.MustParsePrefix("10.0.0.0/8"), 17, 500)
	back, _ := ParseID(port.AppendBody(nil))
	if back.Protocol != 17 || back.Port != 500 {
		t.Fatalf("proto/port %+v", back)
	}
}

func TestNotifyDeleteRoundTrip(t *testing.T) {
	cookies := bytes.Repeat([]byte{0xab}, 16)
	seq := []byte{0, 0, 0, 7}
	n := &Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPI: cookies, NotifyType: NotifyRUThere, Data: seq}
	got, err := ParseNotify(n.AppendBody(nil))
	if err != nil || got.NotifyType != NotifyRUThere || !bytes.Equal(got.SPI, cookies) || !bytes.Equal(got.Data, seq) {
		t.Fatalf("notify %+v %v", got, err)
	}
	if _, err := ParseNotify([]byte{0, 0, 0, 1, 1, 16, 0x8d, 0x28, 1}); err == nil {
		t.Fatal("notify with short SPI accepted")
	}
	d := &Delete{DOI: DOIIPsec, Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}
	gd, err := ParseDelete(d.AppendBody(nil))
	if err != nil || len(gd.SPIs) != 2 || !bytes.Equal(gd.SPIs[1], []byte{5, 6, 7, 8}) {
		t.Fatalf("delete %+v %v", gd, err)
	}
	bad := d.AppendBody(nil)
	bad[7] = 3
	if _, err := ParseDelete(bad); err == nil {
		t.Fatal("delete with wrong SPI count accepted")
	}
	life := &Notify{DOI: DOIIPsec, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: NotifyResponderLifetime,
		Data: AppendAttributes(nil, []Attribute{BasicAttr(AttrSALifeType, LifeSeconds), UintAttr(AttrSALifeDuration, 3600)})}
	gl, err := ParseNotify(life.AppendBody(nil))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := ParseAttributes(gl.Data)
	if err != nil || len(attrs) != 2 {
		t.Fatalf("lifetime attrs %v %v", attrs, err)
	}
	if v, _ := attrs[1].Uint(); v != 3600 {
		t.Fatalf("lifetime %d", v)
	}
}

func TestChainBounds(t *testing.T) {
	// 64 empty vendor IDs pass, 65 are refused.
	var ps []Payload
	for i := 0; i < 65; i++ {
		ps = append(ps, VendorID(nil))
	}
	b := AppendChain(nil, ps[:64])
	if got, _, err := ParseChain(PayloadVendorID, b); err != nil || len(got) != 64 {
		t.Fatalf("64 payloads: %d %v", len(got), err)
	}
	b = AppendChain(nil, ps)
	if _, _, err := ParseChain(PayloadVendorID, b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("65 payloads: %v", err)
	}
	if _, err := ParseAttributes([]byte{0x00, 0x0c, 0x00}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short attribute: %v", err)
	}
	if _, err := (Attribute{Data: make([]byte, 9)}).Uint(); err == nil {
		t.Fatal("9-byte integer accepted")
	}
}

func TestVendorIDs(t *testing.T) {
	if m := NATTFromVendorIDs([][]byte{VIDNATTDraft02N, VIDDPD, VIDNATTRFC3947}); m != NATTRFC {
		t.Fatalf("method %d", m)
	}
	if m := NATTFromVendorIDs([][]byte{VIDNATTDraft02}); m != NATTDraft02 || m.NATDType() != PayloadNATDDraft || m.EncapTunnel() != EncapUDPTunnelDraft {
		t.Fatalf("draft method %d", m)
	}
	if NATTRFC.EncapTunnel() != EncapUDPTunnel || NATTRFC.NATDType() != PayloadNATD {
		t.Fatal("rfc values")
	}
}
