package isakmp

import (
	"encoding/binary"
	"fmt"
)

// NotifyType is a notify message type (RFC 2408 §3.14.1, RFC 2407 §4.6.3,
// RFC 3706).
type NotifyType uint16

// Notify message types.
const (
	NotifyInvalidPayloadType      NotifyType = 1
	NotifyDOINotSupported         NotifyType = 2
	NotifySituationNotSupported   NotifyType = 3
	NotifyInvalidCookie           NotifyType = 4
	NotifyInvalidMajorVersion     NotifyType = 5
	NotifyInvalidMinorVersion     NotifyType = 6
	NotifyInvalidExchangeType     NotifyType = 7
	NotifyInvalidFlags            NotifyType = 8
	NotifyInvalidMessageID        NotifyType = 9
	NotifyInvalidProtocolID       NotifyType = 10
	NotifyInvalidSPI              NotifyType = 11
	NotifyInvalidTransformID      NotifyType = 12
	NotifyAttributesNotSupported  NotifyType = 13
	NotifyNoProposalChosen        NotifyType = 14
	NotifyBadProposalSyntax       NotifyType = 15
	NotifyPayloadMalformed        NotifyType = 16
	NotifyInvalidKeyInformation   NotifyType = 17
	NotifyInvalidIDInformation    NotifyType = 18
	NotifyInvalidHashInformation  NotifyType = 23
	NotifyAuthenticationFailed    NotifyType = 24
	NotifyUnsupportedExchangeType NotifyType = 29
	NotifyUnequalPayloadLengths   NotifyType = 30

	NotifyConnected         NotifyType = 16384
	NotifyResponderLifetime NotifyType = 24576
	NotifyReplayStatus      NotifyType = 24577
	NotifyInitialContact    NotifyType = 24578
	NotifyRUThere           NotifyType = 36136
	NotifyRUThereAck        NotifyType = 36137
)

var notifyNames = map[NotifyType]string{
	NotifyInvalidPayloadType: "INVALID-PAYLOAD-TYPE", NotifyDOINotSupported: "DOI-NOT-SUPPORTED",
	NotifySituationNotSupported: "SITUATION-NOT-SUPPORTED", NotifyInvalidCookie: "INVALID-COOKIE",
	NotifyInvalidMajorVersion: "INVALID-MAJOR-VERSION", NotifyInvalidMinorVersion: "INVALID-MINOR-VERSION",
	NotifyInvalidExchangeType: "INVALID-EXCHANGE-TYPE", NotifyInvalidFlags: "INVALID-FLAGS",
	NotifyInvalidMessageID: "INVALID-MESSAGE-ID", NotifyInvalidProtocolID: "INVALID-PROTOCOL-ID",
	NotifyInvalidSPI: "INVALID-SPI", NotifyInvalidTransformID: "INVALID-TRANSFORM-ID",
	NotifyAttributesNotSupported: "ATTRIBUTES-NOT-SUPPORTED", NotifyNoProposalChosen: "NO-PROPOSAL-CHOSEN",
	NotifyBadProposalSyntax: "BAD-PROPOSAL-SYNTAX", NotifyPayloadMalformed: "PAYLOAD-MALFORMED",
	NotifyInvalidKeyInformation: "INVALID-KEY-INFORMATION", NotifyInvalidIDInformation: "INVALID-ID-INFORMATION",
	NotifyInvalidHashInformation: "INVALID-HASH-INFORMATION", NotifyAuthenticationFailed: "AUTHENTICATION-FAILED",
	NotifyUnsupportedExchangeType: "UNSUPPORTED-EXCHANGE-TYPE", NotifyUnequalPayloadLengths: "UNEQUAL-PAYLOAD-LENGTHS",
	NotifyConnected: "CONNECTED", NotifyResponderLifetime: "RESPONDER-LIFETIME",
	NotifyReplayStatus: "REPLAY-STATUS", NotifyInitialContact: "INITIAL-CONTACT",
	NotifyRUThere: "R-U-THERE", NotifyRUThereAck: "R-U-THERE-ACK",
}

func (t NotifyType) String() string {
	if s, ok := notifyNames[t]; ok {
		return s
	}
	return fmt.Sprintf("NOTIFY(%d)", uint16(t))
}

// IsError reports whether t is an error type (below 16384).
func (t NotifyType) IsError() bool { return t < 16384 }

// Notify is a notification payload (RFC 2408 §3.14).
type Notify struct {
	DOI        uint32
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Type implements Payload.
func (*Notify) Type() PayloadType { return PayloadNotify }

// AppendBody implements Payload.
func (n *Notify) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, n.DOI)
	b = append(b, byte(n.Protocol), byte(len(n.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(n.NotifyType))
	b = append(b, n.SPI...)
	return append(b, n.Data...)
}

// ParseNotify decodes the body of a notification payload.
func ParseNotify(body []byte) (*Notify, error) {
	if len(body) < 8 {
		return nil, fmt.Errorf("N payload: %d bytes: %w", len(body), ErrTruncated)
	}
	n := &Notify{
		DOI:        binary.BigEndian.Uint32(body),
		Protocol:   ProtocolID(body[4]),
		NotifyType: NotifyType(binary.BigEndian.Uint16(body[6:])),
	}
	spi := int(body[5])
	if spi > len(body)-8 {
		return nil, fmt.Errorf("N payload %s: SPI size %d exceeds payload: %w", n.NotifyType, spi, ErrTruncated)
	}
	n.SPI = body[8 : 8+spi]
	n.Data = body[8+spi:]
	return n, nil
}

// Delete is a delete payload (RFC 2408 §3.15).
type Delete struct {
	DOI      uint32
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

// Type implements Payload.
func (*Delete) Type() PayloadType { return PayloadDelete }

// AppendBody implements Payload.
func (d *Delete) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, d.DOI)
	b = append(b, byte(d.Protocol), d.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.SPIs)))
	for _, s := range d.SPIs {
		b = append(b, s...)
	}
	return b
}

// ParseDelete decodes the body of a delete payload; the SPIs must fill it
// exactly.
func ParseDelete(body []byte) (*Delete, error) {
	if len(body) < 8 {
		return nil, fmt.Errorf("D payload: %d bytes: %w", len(body), ErrTruncated)
	}
	d := &Delete{DOI: binary.BigEndian.Uint32(body), Protocol: ProtocolID(body[4]), SPISize: body[5]}
	n := int(binary.BigEndian.Uint16(body[6:]))
	rest := body[8:]
	if d.SPISize == 0 {
		if n != 0 || len(rest) != 0 {
			return nil, fmt.Errorf("D payload: SPI size 0 with %d SPIs: %w", n, ErrMalformed)
		}
		return d, nil
	}
	if n*int(d.SPISize) != len(rest) {
		return nil, fmt.Errorf("D payload: %d SPIs of %d bytes in %d bytes: %w", n, d.SPISize, len(rest), ErrMalformed)
	}
	for i := 0; i < n; i++ {
		d.SPIs = append(d.SPIs, rest[i*int(d.SPISize):(i+1)*int(d.SPISize)])
	}
	return d, nil
}
