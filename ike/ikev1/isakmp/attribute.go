package isakmp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// AttrType is the type of a data attribute (RFC 2408 §3.3) without the
// attribute-format bit.
type AttrType uint16

// Phase-1 (ISAKMP SA) attribute types, RFC 2409 Appendix A.
const (
	AttrEncryption   AttrType = 1
	AttrHash         AttrType = 2
	AttrAuthMethod   AttrType = 3
	AttrGroup        AttrType = 4
	AttrGroupType    AttrType = 5
	AttrLifeType     AttrType = 11
	AttrLifeDuration AttrType = 12
	AttrPRF          AttrType = 13
	AttrKeyLength    AttrType = 14
	AttrFieldSize    AttrType = 15
	AttrGroupOrder   AttrType = 16
)

// Phase-2 (IPsec SA) attribute types, RFC 2407 §4.5.
const (
	AttrSALifeType     AttrType = 1
	AttrSALifeDuration AttrType = 2
	AttrSAGroup        AttrType = 3
	AttrEncapMode      AttrType = 4
	AttrAuthAlg        AttrType = 5
	AttrSAKeyLength    AttrType = 6
	AttrKeyRounds      AttrType = 7
	AttrCompDictSize   AttrType = 8
	AttrCompPrivAlg    AttrType = 9
	AttrECNTunnel      AttrType = 10
	AttrESN            AttrType = 11
)

// Phase-1 encryption algorithm values.
const (
	EncDES      uint16 = 1
	EncIDEA     uint16 = 2
	EncBlowfish uint16 = 3
	EncRC5      uint16 = 4
	Enc3DES     uint16 = 5
	EncCAST     uint16 = 6
	EncAESCBC   uint16 = 7
	EncCamellia uint16 = 8
)

// Phase-1 hash algorithm values (RFC 2409, RFC 4868 registry).
const (
	HashMD5    uint16 = 1
	HashSHA1   uint16 = 2
	HashTiger  uint16 = 3
	HashSHA256 uint16 = 4
	HashSHA384 uint16 = 5
	HashSHA512 uint16 = 6
)

// Phase-1 authentication methods.
const (
	AuthPSK      uint16 = 1
	AuthDSS      uint16 = 2
	AuthRSASig   uint16 = 3
	AuthRSAEnc   uint16 = 4
	AuthRSARev   uint16 = 5
	AuthECDSA256 uint16 = 9
)

// Life types, shared by phase 1 and phase 2.
const (
	LifeSeconds   uint16 = 1
	LifeKilobytes uint16 = 2
)

// Encapsulation modes (RFC 2407 §4.5, RFC 3947 §5.1 and the draft values).
const (
	EncapTunnel            uint16 = 1
	EncapTransport         uint16 = 2
	EncapUDPTunnel         uint16 = 3
	EncapUDPTransport      uint16 = 4
	EncapUDPTunnelDraft    uint16 = 61443
	EncapUDPTransportDraft uint16 = 61444
)

// Phase-2 authentication algorithm values (RFC 2407, RFC 4868).
const (
	AuthAlgHMACMD5    uint16 = 1
	AuthAlgHMACSHA1   uint16 = 2
	AuthAlgHMACSHA256 uint16 = 5
	AuthAlgHMACSHA384 uint16 = 6
	AuthAlgHMACSHA512 uint16 = 7
)

// Attribute is one data attribute. Basic (TV) attributes carry a 16-bit
// value; variable (TLV) attributes carry up to 65535 bytes.
type Attribute struct {
	Type  AttrType
	Basic bool
	// Value is the TV value (Basic == true).
	Value uint16
	// Data is the TLV value (Basic == false). It aliases the decoded input.
	Data []byte
}

// BasicAttr returns a TV attribute.
func BasicAttr(t AttrType, v uint16) Attribute { return Attribute{Type: t, Basic: true, Value: v} }

// UintAttr returns a TLV attribute carrying v in four bytes (life
// durations are sent this way by strongSwan and Junos).
func UintAttr(t AttrType, v uint32) Attribute {
	return Attribute{Type: t, Data: binary.BigEndian.AppendUint32(nil, v)}
}

// Uint returns the attribute's value as an integer: the TV value, or a TLV
// value of at most eight bytes read big-endian.
func (a Attribute) Uint() (uint64, error) {
	if a.Basic {
		return uint64(a.Value), nil
	}
	if len(a.Data) == 0 || len(a.Data) > 8 {
		return 0, fmt.Errorf("attribute %d: variable value of %d bytes is not an integer", a.Type, len(a.Data))
	}
	var v uint64
	for _, b := range a.Data {
		v = v<<8 | uint64(b)
	}
	return v, nil
}

const attrFormatTV = 0x8000

// ErrTruncated reports input shorter than a length field says.
var ErrTruncated = errors.New("truncated")

// ParseAttributes decodes a run of data attributes that must fill b exactly.
func ParseAttributes(b []byte) ([]Attribute, error) {
	var out []Attribute
	for len(b) > 0 {
		if len(out) >= maxAttributes {
			return nil, fmt.Errorf("more than %d attributes", maxAttributes)
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("attribute header: %w", ErrTruncated)
		}
		t := binary.BigEndian.Uint16(b)
		v := binary.BigEndian.Uint16(b[2:])
		if t&attrFormatTV != 0 {
			out = append(out, Attribute{Type: AttrType(t &^ attrFormatTV), Basic: true, Value: v})
			b = b[4:]
			continue
		}
		if int(v) > len(b)-4 {
			return nil, fmt.Errorf("attribute %d: length %d exceeds %d remaining bytes: %w", t, v, len(b)-4, ErrTruncated)
		}
		out = append(out, Attribute{Type: AttrType(t), Data: b[4 : 4+int(v)]})
		b = b[4+int(v):]
	}
	return out, nil
}

const maxAttributes = 256

// AppendAttributes encodes attrs onto b.
func AppendAttributes(b []byte, attrs []Attribute) []byte {
	for _, a := range attrs {
		if a.Basic {
			b = binary.BigEndian.AppendUint16(b, uint16(a.Type)|attrFormatTV)
			b = binary.BigEndian.AppendUint16(b, a.Value)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type)&^attrFormatTV)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
		b = append(b, a.Data...)
	}
	return b
}
