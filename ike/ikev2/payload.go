package ikev2

import (
	"encoding/binary"
	"net/netip"
)

// Payload is one decoded IKEv2 payload.
type Payload interface {
	Type() PayloadType
	// body appends the payload body (without the generic header).
	body(b []byte) []byte
}

// maxPayloads bounds the chain length of one message; a looping or absurd
// chain is rejected instead of walked.
const maxPayloads = 256

// Transform is one transform of a proposal. KeyLen is the Key Length
// attribute in bits, 0 when absent.
type Transform struct {
	Type   uint8
	ID     uint16
	KeyLen uint16
}

// Proposal is one proposal of an SA payload.
type Proposal struct {
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// SA is the Security Association payload.
type SA struct{ Proposals []Proposal }

func (*SA) Type() PayloadType { return PayloadSA }

func (s *SA) body(b []byte) []byte {
	for i, p := range s.Proposals {
		last := byte(2)
		if i == len(s.Proposals)-1 {
			last = 0
		}
		start := len(b)
		b = append(b, last, 0, 0, 0, p.Num, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j, t := range p.Transforms {
			tl := byte(3)
			if j == len(p.Transforms)-1 {
				tl = 0
			}
			n := 8
			if t.KeyLen != 0 {
				n += 4
			}
			b = append(b, tl, 0, byte(n>>8), byte(n), t.Type, 0, byte(t.ID>>8), byte(t.ID))
			if t.KeyLen != 0 {
				b = append(b, 0x80, 14, byte(t.KeyLen>>8), byte(t.KeyLen))
			}
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

func decodeSA(b []byte) (*SA, error) {
	s := &SA{}
	for more := true; more; {
		if len(b) < 8 {
			return nil, malformed("SA proposal truncated")
		}
		last, plen := b[0], int(binary.BigEndian.Uint16(b[2:]))
		if last != 0 && last != 2 {
			return nil, malformed("SA proposal: bad last-substructure %d", last)
		}
		if plen < 8 || plen > len(b) {
			return nil, malformed("SA proposal length %d of %d", plen, len(b))
		}
		p := Proposal{Num: b[4], Protocol: ProtocolID(b[5])}
		spiLen, nt := int(b[6]), int(b[7])
		body := b[8:plen]
		if spiLen > len(body) {
			return nil, malformed("SA proposal SPI length %d", spiLen)
		}
		p.SPI = append([]byte(nil), body[:spiLen]...)
		body = body[spiLen:]
		for i := 0; i < nt; i++ {
			if len(body) < 8 {
				return nil, malformed("SA transform truncated")
			}
			tlast, tlen := body[0], int(binary.BigEndian.Uint16(body[2:]))
			if tlen < 8 || tlen > len(body) {
				return nil, malformed("SA transform length %d", tlen)
			}
			if (tlast == 0) != (i == nt-1) || (tlast != 0 && tlast != 3) {
				return nil, malformed("SA transform count/last mismatch")
			}
			t := Transform{Type: body[4], ID: binary.BigEndian.Uint16(body[6:])}
			attrs := body[8:tlen]
			for len(attrs) > 0 {
				if len(attrs) < 4 {
					return nil, malformed("transform attribute truncated")
				}
				at, av := binary.BigEndian.Uint16(attrs), binary.BigEndian.Uint16(attrs[2:])
				if at&0x8000 == 0 { // TLV attribute: none are defined for IKEv2; skip
					if 4+int(av) > len(attrs) {
						return nil, malformed("transform TLV attribute length %d", av)
					}
					attrs = attrs[4+int(av):]
					continue
				}
				if at&0x7fff == 14 {
					t.KeyLen = av
				}
				attrs = attrs[4:]
			}
			p.Transforms = append(p.Transforms, t)
			body = body[tlen:]
		}
		if len(body) != 0 {
			return nil, malformed("SA proposal has %d trailing bytes", len(body))
		}
		s.Proposals = append(s.Proposals, p)
		if len(s.Proposals) > 64 {
			return nil, malformed("too many proposals")
		}
		b = b[plen:]
		more = last == 2
	}
	if len(b) != 0 {
		return nil, malformed("SA payload has %d trailing bytes", len(b))
	}
	return s, nil
}

// KE is the Key Exchange payload.
type KE struct {
	Group uint16
	Data  []byte
}

func (*KE) Type() PayloadType { return PayloadKE }
func (k *KE) body(b []byte) []byte {
	return append(append(b, byte(k.Group>>8), byte(k.Group), 0, 0), k.Data...)
}

func decodeKE(b []byte) (*KE, error) {
	if len(b) < 4 {
		return nil, malformed("KE truncated")
	}
	return &KE{Group: binary.BigEndian.Uint16(b), Data: append([]byte(nil), b[4:]...)}, nil
}

// ID is the Identification payload (IDi or IDr).
type ID struct {
	Responder bool // IDr
	IDType    IDType
	Data      []byte
}

func (i *ID) Type() PayloadType {
	if i.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}
func (i *ID) body(b []byte) []byte { return append(append(b, byte(i.IDType), 0, 0, 0), i.Data...) }

func decodeID(t PayloadType, b []byte) (*ID, error) {
	if len(b) < 5 {
		return nil, malformed("ID truncated")
	}
	id := &ID{Responder: t == PayloadIDr, IDType: IDType(b[0]), Data: append([]byte(nil), b[4:]...)}
	switch id.IDType {
	case IDIPv4:
		if len(id.Data) != 4 {
			return nil, malformed("ID_IPV4_ADDR of %d bytes", len(id.Data))
		}
	case IDIPv6:
		if len(id.Data) != 16 {
			return nil, malformed("ID_IPV6_ADDR of %d bytes", len(id.Data))
		}
	}
	return id, nil
}

// Auth is the Authentication payload.
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (*Auth) Type() PayloadType      { return PayloadAUTH }
func (a *Auth) body(b []byte) []byte { return append(append(b, byte(a.Method), 0, 0, 0), a.Data...) }

func decodeAuth(b []byte) (*Auth, error) {
	if len(b) < 5 {
		return nil, malformed("AUTH truncated")
	}
	return &Auth{Method: AuthMethod(b[0]), Data: append([]byte(nil), b[4:]...)}, nil
}

// Nonce is the Nonce payload (16 to 256 bytes, RFC 7296 §3.9).
type Nonce struct{ Data []byte }

func (*Nonce) Type() PayloadType      { return PayloadNonce }
func (n *Nonce) body(b []byte) []byte { return append(b, n.Data...) }

func decodeNonce(b []byte) (*Nonce, error) {
	if len(b) < 16 || len(b) > 256 {
		return nil, malformed("nonce of %d bytes", len(b))
	}
	return &Nonce{Data: append([]byte(nil), b...)}, nil
}

// Notify is the Notify payload.
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadNotify }
func (n *Notify) body(b []byte) []byte {
	b = append(b, byte(n.Protocol), byte(len(n.SPI)), byte(n.NotifyType>>8), byte(n.NotifyType))
	return append(append(b, n.SPI...), n.Data...)
}

func decodeNotify(b []byte) (*Notify, error) {
	if len(b) < 4 {
		return nil, malformed("Notify truncated")
	}
	spiLen := int(b[1])
	if 4+spiLen > len(b) {
		return nil, malformed("Notify SPI length %d", spiLen)
	}
	return &Notify{Protocol: ProtocolID(b[0]), NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:])),
		SPI: append([]byte(nil), b[4:4+spiLen]...), Data: append([]byte(nil), b[4+spiLen:]...)}, nil
}

// Delete is the Delete payload.
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

func (*Delete) Type() PayloadType { return PayloadDelete }
func (d *Delete) body(b []byte) []byte {
	b = append(b, byte(d.Protocol), d.SPISize, byte(len(d.SPIs)>>8), byte(len(d.SPIs)))
	for _, s := range d.SPIs {
		b = append(b, s...)
	}
	return b
}

func decodeDelete(b []byte) (*Delete, error) {
	if len(b) < 4 {
		return nil, malformed("Delete truncated")
	}
	d := &Delete{Protocol: ProtocolID(b[0]), SPISize: b[1]}
	n := int(binary.BigEndian.Uint16(b[2:]))
	rest := b[4:]
	if n*int(d.SPISize) != len(rest) {
		return nil, malformed("Delete: %d SPIs of %d bytes in %d bytes", n, d.SPISize, len(rest))
	}
	if d.SPISize == 0 {
		return d, nil
	}
	for i := 0; i < n; i++ {
		d.SPIs = append(d.SPIs, append([]byte(nil), rest[:d.SPISize]...))
		rest = rest[d.SPISize:]
	}
	return d, nil
}

// Selector is one traffic selector of a TS payload.
type Selector struct {
	TSType     TSType
	IPProtocol uint8
	StartPort  uint16
	EndPort    uint16
	Start, End netip.Addr
}

// TS is the Traffic Selector payload (TSi or TSr).
type TS struct {
	Responder bool // TSr
	Selectors []Selector
}

func (t *TS) Type() PayloadType {
	if t.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (t *TS) body(b []byte) []byte {
	b = append(b, byte(len(t.Selectors)), 0, 0, 0)
	for _, s := range t.Selectors {
		n := 8 + 2*len(s.Start.AsSlice())
		b = append(b, byte(s.TSType), s.IPProtocol, byte(n>>8), byte(n), byte(s.StartPort>>8), byte(s.StartPort), byte(s.EndPort>>8), byte(s.EndPort))
		b = append(b, s.Start.AsSlice()...)
		b = append(b, s.End.AsSlice()...)
	}
	return b
}

func decodeTS(t PayloadType, b []byte) (*TS, error) {
	if len(b) < 4 {
		return nil, malformed("TS truncated")
	}
	ts := &TS{Responder: t == PayloadTSr}
	n := int(b[0])
	rest := b[4:]
	for i := 0; i < n; i++ {
		if len(rest) < 8 {
			return nil, malformed("traffic selector truncated")
		}
		s := Selector{TSType: TSType(rest[0]), IPProtocol: rest[1], StartPort: binary.BigEndian.Uint16(rest[4:]), EndPort: binary.BigEndian.Uint16(rest[6:])}
		l := int(binary.BigEndian.Uint16(rest[2:]))
		if l < 8 || l > len(rest) {
			return nil, malformed("traffic selector length %d", l)
		}
		addrs := rest[8:l]
		switch s.TSType {
		case TSIPv4Range:
			if len(addrs) != 8 {
				return nil, malformed("IPv4 selector of %d bytes", l)
			}
			s.Start = netip.AddrFrom4([4]byte(addrs[:4]))
			s.End = netip.AddrFrom4([4]byte(addrs[4:]))
		case TSIPv6Range:
			if len(addrs) != 32 {
				return nil, malformed("IPv6 selector of %d bytes", l)
			}
			s.Start = netip.AddrFrom16([16]byte(addrs[:16]))
			s.End = netip.AddrFrom16([16]byte(addrs[16:]))
		default:
			rest = rest[l:]
			continue // unknown selector types are skipped (RFC 7296 §3.13.1)
		}
		ts.Selectors = append(ts.Selectors, s)
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, malformed("TS has %d trailing bytes", len(rest))
	}
	return ts, nil
}

// CPAttribute is one configuration attribute.
type CPAttribute struct {
	Type  uint16
	Value []byte
}

// CP is the Configuration payload.
type CP struct {
	CFGType    uint8
	Attributes []CPAttribute
}

func (*CP) Type() PayloadType { return PayloadCP }
func (c *CP) body(b []byte) []byte {
	b = append(b, c.CFGType, 0, 0, 0)
	for _, a := range c.Attributes {
		b = append(b, byte(a.Type>>8)&0x7f, byte(a.Type), byte(len(a.Value)>>8), byte(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

func decodeCP(b []byte) (*CP, error) {
	if len(b) < 4 {
		return nil, malformed("CP truncated")
	}
	c := &CP{CFGType: b[0]}
	rest := b[4:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, malformed("CP attribute truncated")
		}
		l := int(binary.BigEndian.Uint16(rest[2:]))
		if 4+l > len(rest) {
			return nil, malformed("CP attribute length %d", l)
		}
		c.Attributes = append(c.Attributes, CPAttribute{Type: binary.BigEndian.Uint16(rest) & 0x7fff, Value: append([]byte(nil), rest[4:4+l]...)})
		rest = rest[4+l:]
	}
	return c, nil
}

// Raw is a payload carried opaquely: Vendor ID, CERT, CERTREQ, EAP, and
// unknown non-critical payloads.
type Raw struct {
	PType PayloadType
	Data  []byte
}

func (r *Raw) Type() PayloadType    { return r.PType }
func (r *Raw) body(b []byte) []byte { return append(b, r.Data...) }

// Encrypted is the SK payload, or an SKF fragment when Total > 0. Body is IV,
// ciphertext and ICV; First is the type of the first inner payload (0 in
// non-first fragments).
type Encrypted struct {
	First    PayloadType
	Number   uint16
	Total    uint16
	Body     []byte
	Fragment bool
}

func (e *Encrypted) Type() PayloadType {
	if e.Fragment {
		return PayloadSKF
	}
	return PayloadSK
}
func (e *Encrypted) body(b []byte) []byte {
	if e.Fragment {
		b = append(b, byte(e.Number>>8), byte(e.Number), byte(e.Total>>8), byte(e.Total))
	}
	return append(b, e.Body...)
}
