package ikev2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message is a decoded IKEv2 message. For protected messages the last
// payload is an *Encrypted whose inner chain is decoded after decryption.
type Message struct {
	Header
	Payloads []Payload
}

// UnsupportedCriticalError reports an unknown payload with the critical bit.
type UnsupportedCriticalError struct{ PayloadType PayloadType }

func (e *UnsupportedCriticalError) Error() string {
	return fmt.Sprintf("unsupported critical payload %v", e.PayloadType)
}

// ErrUnsupportedCritical matches UnsupportedCriticalError with errors.Is.
var ErrUnsupportedCritical = errors.New("unsupported critical payload")

func (e *UnsupportedCriticalError) Is(t error) bool { return t == ErrUnsupportedCritical }

// Decode parses a datagram: the header and the cleartext payload chain.
func Decode(b []byte) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	ps, err := decodeChain(h.NextPayload, b[HeaderLen:], true)
	if err != nil {
		return nil, fmt.Errorf("%v message %d: %w", h.Exchange, h.MessageID, err)
	}
	return &Message{Header: h, Payloads: ps}, nil
}

// DecodePayloads parses a decrypted inner payload chain starting with first.
// Encrypted payloads are not allowed inside.
func DecodePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return decodeChain(first, b, false)
}

func decodeChain(next PayloadType, b []byte, outer bool) ([]Payload, error) {
	var ps []Payload
	for next != PayloadNone {
		if len(ps) >= maxPayloads {
			return nil, malformed("more than %d payloads", maxPayloads)
		}
		if len(b) < 4 {
			return nil, malformed("payload %v header truncated", next)
		}
		nn, critical, plen := PayloadType(b[0]), b[1]&0x80 != 0, int(binary.BigEndian.Uint16(b[2:]))
		if plen < 4 || plen > len(b) {
			return nil, malformed("payload %v length %d of %d", next, plen, len(b))
		}
		body := b[4:plen]
		var (
			p   Payload
			err error
		)
		switch next {
		case PayloadSA:
			p, err = decodeSA(body)
		case PayloadKE:
			p, err = decodeKE(body)
		case PayloadIDi, PayloadIDr:
			p, err = decodeID(next, body)
		case PayloadAUTH:
			p, err = decodeAuth(body)
		case PayloadNonce:
			p, err = decodeNonce(body)
		case PayloadNotify:
			p, err = decodeNotify(body)
		case PayloadDelete:
			p, err = decodeDelete(body)
		case PayloadTSi, PayloadTSr:
			p, err = decodeTS(next, body)
		case PayloadCP:
			p, err = decodeCP(body)
		case PayloadVendorID, PayloadCERT, PayloadCERTREQ, PayloadEAP:
			p = &Raw{PType: next, Data: append([]byte(nil), body...)}
		case PayloadSK, PayloadSKF:
			if !outer {
				return nil, malformed("%v inside an encrypted payload", next)
			}
			if plen != len(b) {
				return nil, malformed("%v is not the last payload", next)
			}
			e := &Encrypted{First: nn, Fragment: next == PayloadSKF}
			if e.Fragment {
				if len(body) < 4 {
					return nil, malformed("SKF truncated")
				}
				e.Number, e.Total = binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
				if e.Number == 0 || e.Total == 0 || e.Number > e.Total {
					return nil, malformed("SKF fragment %d of %d", e.Number, e.Total)
				}
				if e.Number != 1 && nn != PayloadNone {
					return nil, malformed("SKF fragment %d names a next payload", e.Number)
				}
				body = body[4:]
			}
			e.Body = append([]byte(nil), body...)
			return append(ps, e), nil
		default:
			if critical {
				return nil, &UnsupportedCriticalError{PayloadType: next}
			}
			p = &Raw{PType: next, Data: append([]byte(nil), body...)}
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		next, b = nn, b[plen:]
	}
	if len(b) != 0 {
		return nil, malformed("%d bytes after the last payload", len(b))
	}
	return ps, nil
}

// EncodePayloads appends the chain ps to b and returns the type of its first
// payload. An *Encrypted payload must be last; its First names the inner chain.
func EncodePayloads(b []byte, ps []Payload) (PayloadType, []byte) {
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		} else if e, ok := p.(*Encrypted); ok {
			next = e.First
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0)
		b = p.body(b)
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return first, b
}

// Encode serialises the message, filling in the next-payload and length
// fields of the header.
func (m *Message) Encode() []byte {
	b := make([]byte, HeaderLen, 512)
	first, b := EncodePayloads(b, m.Payloads)
	m.NextPayload = first
	m.Length = uint32(len(b))
	m.Header.encode(b[:0])
	return b
}

// Find returns the first payload of type t, or nil.
func (m *Message) Find(t PayloadType) Payload { return findPayload(m.Payloads, t) }

func findPayload(ps []Payload, t PayloadType) Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// Notify returns the first notification of type t, or nil.
func findNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// firstError returns the first error notification, or nil.
func firstError(ps []Payload) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}
