package lab

import (
	"encoding/binary"
	"errors"
)

// ICMP echo types for IPv4 and IPv6.
const (
	icmp4EchoRequest = 8
	icmp4EchoReply   = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// echo is an ICMP or ICMPv6 echo message (the ICMP header onward).
type echo struct {
	Type    uint8
	Code    uint8
	ID      uint16
	Seq     uint16
	Payload []byte
}

// marshalEcho encodes m. For ICMPv4 it fills in the checksum; for ICMPv6 the
// kernel computes it on raw ICMPv6 sockets.
func marshalEcho(m echo, v6 bool) []byte {
	b := make([]byte, 8+len(m.Payload))
	b[0], b[1] = m.Type, m.Code
	binary.BigEndian.PutUint16(b[4:], m.ID)
	binary.BigEndian.PutUint16(b[6:], m.Seq)
	copy(b[8:], m.Payload)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
	}
	return b
}

var errShortEcho = errors.New("icmp: message shorter than an echo header")

// parseEcho decodes an ICMP echo header from b (as read from a raw socket,
// without the IP header). It never panics; the payload aliases b.
func parseEcho(b []byte) (echo, error) {
	if len(b) < 8 {
		return echo{}, errShortEcho
	}
	return echo{
		Type:    b[0],
		Code:    b[1],
		ID:      binary.BigEndian.Uint16(b[4:]),
		Seq:     binary.BigEndian.Uint16(b[6:]),
		Payload: b[8:],
	}, nil
}

// inetChecksum is the RFC 1071 Internet checksum of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
