package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func samplePayloads() []Payload {
	return []Payload{
		&SA{Proposals: []Proposal{
			{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{{Type: 1, ID: 20, KeyLen: 256}, {Type: 2, ID: 6}, {Type: 4, ID: 20}}},
			{Num: 2, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Type: 1, ID: 12, KeyLen: 128}, {Type: 3, ID: 12}, {Type: 5, ID: 0}}},
		}},
		&KE{Group: 31, Data: bytes.Repeat([]byte{7}, 32)},
		&Nonce{Data: bytes.Repeat([]byte{9}, 32)},
		&ID{IDType: IDFQDN, Data: []byte("a.example")},
		&ID{Responder: true, IDType: IDIPv4, Data: []byte{192, 0, 2, 1}},
		&Auth{Method: AuthPSK, Data: bytes.Repeat([]byte{1}, 32)},
		&Notify{Protocol: ProtoESP, SPI: []byte{0, 0, 0, 1}, NotifyType: REKEY_SA, Data: []byte{}},
		&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, SPI: []byte{}, Data: bytes.Repeat([]byte{3}, 20)},
		&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}},
		&Delete{Protocol: ProtoIKE},
		&TS{Selectors: []Selector{
			{TSType: TSIPv4Range, StartPort: 0, EndPort: 65535, Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")},
			{TSType: TSIPv6Range, IPProtocol: 6, StartPort: 80, EndPort: 80, Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff")}}},
		&TS{Responder: true, Selectors: []Selector{{TSType: TSIPv4Range, EndPort: 65535, Start: netip.MustParseAddr("10.0.0.0"), End: netip.MustParseAddr("10.0.0.255")}}},
		&CP{CFGType: 1, Attributes: []CPAttribute{{Type: 1, Value: []byte{}}, {Type: 3, Value: []byte{8, 8, 8, 8}}}},
		&Raw{PType: PayloadVendorID, Data: []byte("bpfvpn")},
		&Raw{PType: PayloadEAP, Data: []byte{1, 2, 0, 4}},
	}
}

func TestRoundTripAllPayloads(t *testing.T) {
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}, Payloads: samplePayloads()}
	b := m.Encode()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Length != uint32(len(b)) || got.SPIi != 1 || got.SPIr != 2 || got.Exchange != IKE_AUTH || got.MessageID != 1 {
		t.Fatalf("header %+v", got.Header)
	}
	if len(got.Payloads) != len(m.Payloads) {
		t.Fatalf("%d payloads", len(got.Payloads))
	}
	for i := range m.Payloads {
		if !reflect.DeepEqual(normalize(got.Payloads[i]), normalize(m.Payloads[i])) {
			t.Errorf("payload %d: got %#v want %#v", i, got.Payloads[i], m.Payloads[i])
		}
	}
	if !bytes.Equal(got.Encode(), b) {
		t.Fatal("re-encoding differs")
	}
}

// normalize maps nil and empty slices together for comparison.
func normalize(p Payload) Payload {
	switch v := p.(type) {
	case *Notify:
		c := *v
		if len(c.SPI) == 0 {
			c.SPI = nil
		}
		if len(c.Data) == 0 {
			c.Data = nil
		}
		return &c
	case *SA:
		c := &SA{}
		for _, pr := range v.Proposals {
			if len(pr.SPI) == 0 {
				pr.SPI = nil
			}
			c.Proposals = append(c.Proposals, pr)
		}
		return c
	case *CP:
		c := &CP{CFGType: v.CFGType}
		for _, a := range v.Attributes {
			if len(a.Value) == 0 {
				a.Value = nil
			}
			c.Attributes = append(c.Attributes, a)
		}
		return c
	}
	return p
}

func TestEncryptedMustBeLast(t *testing.T) {
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH}, Payloads: []Payload{&Encrypted{First: PayloadIDi, Body: make([]byte, 40)}}}
	b := m.Encode()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e := got.Payloads[0].(*Encrypted)
	if e.First != PayloadIDi || len(e.Body) != 40 {
		t.Fatalf("got %+v", e)
	}
	// SK followed by bytes that are not part of it.
	b = append(b, 0, 0, 0, 4)
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing data accepted: %v", err)
	}
	f := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH}, Payloads: []Payload{&Encrypted{Fragment: true, First: PayloadIDi, Number: 1, Total: 2, Body: make([]byte, 40)}}}
	got, err = Decode(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if e := got.Payloads[0].(*Encrypted); !e.Fragment || e.Number != 1 || e.Total != 2 {
		t.Fatalf("got %+v", e)
	}
}

func TestMalformed(t *testing.T) {
	good := (&Message{Header: Header{SPIi: 1, Exchange: IKE_SA_INIT, Flags: FlagInitiator}, Payloads: samplePayloads()[:3]}).Encode()
	set := func(b []byte, off int, v uint16) []byte {
		c := append([]byte(nil), b...)
		binary.BigEndian.PutUint16(c[off:], v)
		return c
	}
	cases := map[string][]byte{
		"empty":             nil,
		"short header":      good[:20],
		"truncated":         good[:len(good)-3],
		"length mismatch":   append(append([]byte(nil), good...), 0),
		"payload too long":  set(good, HeaderLen+2, 0xffff),
		"payload too short": set(good, HeaderLen+2, 2),
		"bad version": func() []byte {
			c := append([]byte(nil), good...)
			c[17] = 0x10
			return c
		}(),
		"unknown critical": func() []byte {
			m := (&Message{Header: Header{Exchange: IKE_SA_INIT}, Payloads: []Payload{&Raw{PType: 99, Data: []byte{1}}}}).Encode()
			m[HeaderLen+1] = 0x80
			return m
		}(),
	}
	for name, b := range cases {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Decode(cases["unknown critical"]); !errors.Is(err, ErrUnsupportedCritical) {
		t.Errorf("unknown critical: %v", err)
	}
	// A chain that would loop: each payload names another one, bounded.
	var chain []byte
	for i := 0; i < 300; i++ {
		chain = append(chain, byte(PayloadVendorID), 0, 0, 4)
	}
	if _, err := DecodePayloads(PayloadVendorID, chain); !errors.Is(err, ErrMalformed) {
		t.Errorf("long chain: %v", err)
	}
	bad := map[PayloadType][]byte{
		PayloadNonce:  make([]byte, 8),
		PayloadKE:     {0},
		PayloadIDi:    {1, 0, 0, 0, 1, 2},
		PayloadDelete: {3, 4, 0, 2, 1, 2, 3, 4},
		PayloadTSi:    {1, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0xff, 0xff, 1, 2, 3, 4},
		PayloadSA:     {0, 0, 0, 8, 1, 1, 0, 1},
		PayloadNotify: {0, 9, 0, 1},
		PayloadCP:     {1, 0, 0, 0, 0, 1, 0, 9},
	}
	for pt, body := range bad {
		b := append([]byte{0, 0, byte((len(body) + 4) >> 8), byte(len(body) + 4)}, body...)
		if _, err := DecodePayloads(pt, b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: bad body accepted: %v", pt, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good := (&Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH}, Payloads: samplePayloads()}).Encode()
	f.Add(good)
	f.Add(good[:40])
	f.Add((&Message{Header: Header{SPIi: 1, Exchange: IKE_AUTH}, Payloads: []Payload{&Encrypted{First: PayloadIDi, Body: make([]byte, 48)}}}).Encode())
	f.Add((&Message{Header: Header{SPIi: 1, Exchange: IKE_AUTH}, Payloads: []Payload{&Encrypted{Fragment: true, Number: 2, Total: 3, Body: make([]byte, 48)}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes again.
		if _, err := Decode(m.Encode()); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}

func FuzzDecodePayloads(f *testing.F) {
	_, chain := EncodePayloads(nil, samplePayloads())
	f.Add(uint8(PayloadSA), chain)
	f.Add(uint8(PayloadTSi), []byte{0, 0, 0, 8, 1, 0, 0, 0})
	f.Add(uint8(PayloadVendorID), bytes.Repeat([]byte{43, 0, 0, 4}, 10))
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		_, _ = DecodePayloads(PayloadType(first), b)
	})
}
