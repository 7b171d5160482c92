package isakmp

import (
	"net/netip"
	"testing"
)

func seedMessages(f *testing.F) {
	mm1 := Encode(Header{InitiatorCookie: [8]byte{1}, Exchange: ExchangeMain}, []Payload{mainModeSA(), VendorID(VIDNATTRFC3947), VendorID(VIDDPD)})
	f.Add(mm1)
	qm := Encode(Header{Exchange: ExchangeQuick, MessageID: 7}, []Payload{
		Hash(make([]byte, 32)),
		&SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{{Number: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4},
			Transforms: []Transform{{Number: 1, ID: ESPAESGCM16, Attributes: []Attribute{BasicAttr(AttrSAKeyLength, 256), BasicAttr(AttrEncapMode, EncapUDPTunnelDraft)}}}}}},
		Nonce(make([]byte, 32)), KE(make([]byte, 65)),
		PrefixID(netip.MustParsePrefix("0.0.0.0/0"), 0, 0), PrefixID(netip.MustParsePrefix("::/0"), 6, 80),
	})
	f.Add(qm)
	info := Encode(Header{Exchange: ExchangeInformational, MessageID: 9}, []Payload{
		&Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPI: make([]byte, 16), NotifyType: NotifyRUThere, Data: []byte{0, 0, 0, 1}},
		&Delete{DOI: DOIIPsec, Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}}},
		NATD(PayloadNATD, make([]byte, 20)), &ID{IDType: IDFQDN, Data: []byte("x")},
	})
	f.Add(info)
	// Truncated.
	f.Add(mm1[:len(mm1)-3])
	f.Add(mm1[:HeaderLen+2])
	// Oversized length fields: header, payload, attribute.
	over := append([]byte(nil), mm1...)
	over[27] = 0xff
	f.Add(over)
	over = append([]byte(nil), mm1...)
	over[30], over[31] = 0xff, 0xff
	f.Add(over)
	// A looping chain: every payload names VID as its successor and the
	// last length wraps onto the header.
	loop := Encode(Header{Exchange: ExchangeInformational}, []Payload{VendorID(nil), VendorID(nil)})
	loop[HeaderLen+4] = byte(PayloadVendorID)
	f.Add(loop)
	// Encrypted flag with garbage body.
	enc := append([]byte(nil), info...)
	enc[19] |= byte(FlagEncryption)
	f.Add(enc)
}

// FuzzParse decodes arbitrary datagrams and every payload in them; any
// decoded payload must encode again to something that decodes.
func FuzzParse(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.Header.Flags&FlagEncryption != 0 {
			_, _, _ = ParseChain(m.Header.NextPayload, m.Body)
			return
		}
		for _, p := range m.Payloads {
			switch p.Type {
			case PayloadSA:
				sa, err := ParseSA(p.Body)
				if err == nil {
					if _, err := ParseSA(sa.AppendBody(nil)); err != nil {
						t.Fatalf("re-encoded SA does not decode: %v", err)
					}
					for _, pr := range sa.Proposals {
						for _, tr := range pr.Transforms {
							for _, a := range tr.Attributes {
								_, _ = a.Uint()
							}
						}
					}
				}
			case PayloadID:
				if id, err := ParseID(p.Body); err == nil {
					_, _ = id.Prefix()
					_ = id.String()
				}
			case PayloadNotify:
				if n, err := ParseNotify(p.Body); err == nil {
					_, _ = ParseAttributes(n.Data)
					_ = n.NotifyType.String()
				}
			case PayloadDelete:
				if d, err := ParseDelete(p.Body); err == nil {
					if _, err := ParseDelete(d.AppendBody(nil)); err != nil {
						t.Fatalf("re-encoded D does not decode: %v", err)
					}
				}
			}
		}
	})
}

// FuzzParseSA decodes arbitrary SA payload bodies.
func FuzzParseSA(f *testing.F) {
	f.Add(mainModeSA().AppendBody(nil))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 8, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sa, err := ParseSA(b)
		if err != nil {
			return
		}
		again, err := ParseSA(sa.AppendBody(nil))
		if err != nil || len(again.Proposals) != len(sa.Proposals) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
