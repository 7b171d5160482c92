package isakmp

import (
	"encoding/binary"
	"fmt"
)

// GenericHeaderLen is the size of the generic payload header.
const GenericHeaderLen = 4

// maxPayloads bounds the payloads of one message (a Quick Mode message with
// every optional payload has fewer than ten).
const maxPayloads = 64

// RawPayload is one payload of a chain as found on the wire.
type RawPayload struct {
	Type PayloadType
	// Raw is the payload with its generic header, as received (the Next
	// Payload byte included). Quick Mode hashes cover these bytes.
	Raw []byte
	// Body is Raw without the generic header.
	Body []byte
}

// ParseChain decodes the payload chain starting with type first from b. It
// returns the payloads and the bytes after the last payload (padding of an
// encrypted message).
func ParseChain(first PayloadType, b []byte) ([]RawPayload, []byte, error) {
	var out []RawPayload
	next := first
	for next != PayloadNone {
		if len(out) >= maxPayloads {
			return nil, nil, fmt.Errorf("more than %d payloads: %w", maxPayloads, ErrMalformed)
		}
		if len(b) < GenericHeaderLen {
			return nil, nil, fmt.Errorf("payload %s header: %w", next, ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < GenericHeaderLen {
			return nil, nil, fmt.Errorf("payload %s: length %d below header size: %w", next, n, ErrMalformed)
		}
		if n > len(b) {
			return nil, nil, fmt.Errorf("payload %s: length %d exceeds %d remaining bytes: %w", next, n, len(b), ErrTruncated)
		}
		out = append(out, RawPayload{Type: next, Raw: b[:n], Body: b[GenericHeaderLen:n]})
		next = PayloadType(b[0])
		b = b[n:]
	}
	return out, b, nil
}

// Payload is a payload that can be encoded.
type Payload interface {
	// Type is the payload type announced in the previous Next Payload field.
	Type() PayloadType
	// AppendBody encodes the payload without its generic header.
	AppendBody(b []byte) []byte
}

// AppendChain encodes ps as a payload chain onto b. The caller announces
// ps[0].Type() in the preceding header.
func AppendChain(b []byte, ps []Payload) []byte {
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		b = AppendPayload(b, next, p)
	}
	return b
}

// AppendPayload encodes one payload with its generic header onto b.
func AppendPayload(b []byte, next PayloadType, p Payload) []byte {
	start := len(b)
	b = append(b, byte(next), 0, 0, 0)
	b = p.AppendBody(b)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

// FirstType returns the type of ps[0], or PayloadNone.
func FirstType(ps []Payload) PayloadType {
	if len(ps) == 0 {
		return PayloadNone
	}
	return ps[0].Type()
}

// Find returns the first payload of type t.
func Find(ps []RawPayload, t PayloadType) (RawPayload, bool) {
	for _, p := range ps {
		if p.Type == t {
			return p, true
		}
	}
	return RawPayload{}, false
}

// FindAll returns every payload of type t.
func FindAll(ps []RawPayload, t PayloadType) []RawPayload {
	var out []RawPayload
	for _, p := range ps {
		if p.Type == t {
			out = append(out, p)
		}
	}
	return out
}
