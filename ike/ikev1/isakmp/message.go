package isakmp

import (
	"encoding/binary"
	"fmt"
)

// Message is a decoded plaintext ISAKMP message, or the header and the
// still encrypted body of an encrypted one.
type Message struct {
	Header Header
	// Payloads is empty when the message is encrypted.
	Payloads []RawPayload
	// Body is everything after the header (ciphertext when encrypted).
	Body []byte
}

// Parse decodes a datagram (without any non-ESP marker). Encrypted messages
// are returned undecoded: decrypt Body and call ParseChain with
// Header.NextPayload.
func Parse(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: h, Body: b[HeaderLen:h.Length]}
	if h.Flags&FlagEncryption != 0 {
		return m, nil
	}
	ps, rest, err := ParseChain(h.NextPayload, m.Body)
	if err != nil {
		return Message{}, fmt.Errorf("%s message: %w", h.Exchange, err)
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("%s message: %d bytes: %w", h.Exchange, len(rest), ErrTrailing)
	}
	m.Payloads = ps
	return m, nil
}

// Encode builds a plaintext message from h and ps; h.NextPayload and
// h.Length are set from ps.
func Encode(h Header, ps []Payload) []byte {
	h.NextPayload = FirstType(ps)
	b := h.Append(make([]byte, 0, 512))
	b = AppendChain(b, ps)
	binary.BigEndian.PutUint32(b[24:28], uint32(len(b)))
	return b
}

// SetLength writes len(b) into the length field of the header at b[0:].
func SetLength(b []byte) {
	binary.BigEndian.PutUint32(b[24:28], uint32(len(b)))
}
