package ikev2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the fixed IKE header length.
const HeaderLen = 28

// MaxMessageLen bounds every message we accept or build.
const MaxMessageLen = 65535

// ErrMalformed wraps every decoding error. Decoders never panic.
var ErrMalformed = errors.New("malformed IKEv2 message")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Header is the IKE header (RFC 7296 §3.1).
type Header struct {
	SPIi, SPIr  uint64
	NextPayload PayloadType
	Version     uint8 // major<<4 | minor
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32
}

// IsResponse reports the R flag.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// FromInitiator reports the I flag (sent by the original initiator).
func (h *Header) FromInitiator() bool { return h.Flags&FlagInitiator != 0 }

// DecodeHeader parses the IKE header and checks the length field against
// the datagram length.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, malformed("%d bytes, shorter than the IKE header", len(b))
	}
	h.SPIi = binary.BigEndian.Uint64(b[0:])
	h.SPIr = binary.BigEndian.Uint64(b[8:])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = b[19]
	h.MessageID = binary.BigEndian.Uint32(b[20:])
	h.Length = binary.BigEndian.Uint32(b[24:])
	if h.Version>>4 != 2 {
		return h, fmt.Errorf("%w: IKE major version %d", ErrMalformed, h.Version>>4)
	}
	if int64(h.Length) != int64(len(b)) {
		return h, malformed("length field %d, datagram %d", h.Length, len(b))
	}
	return h, nil
}

func (h *Header) encode(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), 0x20, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}
