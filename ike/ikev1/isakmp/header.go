package isakmp

import (
	"encoding/binary"
	"fmt"
)

// HeaderLen is the size of the fixed ISAKMP header.
const HeaderLen = 28

// Version is the only ISAKMP version this package speaks (major 1, minor 0).
const Version = 0x10

// MaxMessageLen bounds the messages this package decodes or builds; IKEv1
// messages of Main Mode and Quick Mode stay far below it.
const MaxMessageLen = 65535

// Header is the fixed ISAKMP header (RFC 2408 §3.1). The cookies double as
// the ISAKMP SA's SPI.
type Header struct {
	InitiatorCookie [8]byte
	ResponderCookie [8]byte
	NextPayload     PayloadType
	Version         uint8
	Exchange        ExchangeType
	Flags           Flags
	MessageID       uint32
	Length          uint32
}

// ParseHeader decodes the header at the start of b and checks that b holds
// exactly Length bytes.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("isakmp header: %d bytes: %w", len(b), ErrTruncated)
	}
	copy(h.InitiatorCookie[:], b[0:8])
	copy(h.ResponderCookie[:], b[8:16])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = Flags(b[19])
	h.MessageID = binary.BigEndian.Uint32(b[20:24])
	h.Length = binary.BigEndian.Uint32(b[24:28])
	if h.Version>>4 != Version>>4 {
		return h, fmt.Errorf("isakmp header: major version %d: %w", h.Version>>4, ErrInvalidMajorVersion)
	}
	if h.Length < HeaderLen || h.Length > MaxMessageLen {
		return h, fmt.Errorf("isakmp header: length %d out of range", h.Length)
	}
	if int(h.Length) > len(b) {
		return h, fmt.Errorf("isakmp header: length %d exceeds datagram of %d bytes: %w", h.Length, len(b), ErrTruncated)
	}
	if int(h.Length) < len(b) {
		return h, fmt.Errorf("isakmp header: length %d shorter than datagram of %d bytes", h.Length, len(b))
	}
	return h, nil
}

// Append encodes h onto b. Length is written as given.
func (h Header) Append(b []byte) []byte {
	b = append(b, h.InitiatorCookie[:]...)
	b = append(b, h.ResponderCookie[:]...)
	v := h.Version
	if v == 0 {
		v = Version
	}
	b = append(b, byte(h.NextPayload), v, byte(h.Exchange), byte(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}
