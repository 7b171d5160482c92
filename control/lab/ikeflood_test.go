package lab

import (
	"crypto/ecdh"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// The flood's requests are IKE_SA_INIT requests a responder accepts: they
// decode, offer group 19, carry a point on P-256 and end with the nonce the
// sender replaces per packet.
func TestIKEInitTemplateIsValid(t *testing.T) {
	b, err := ikeInitTemplate()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ikev2.Decode(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if m.Exchange != ikev2.IKE_SA_INIT || m.Flags != ikev2.FlagInitiator || m.MessageID != 0 {
		t.Errorf("header %+v", m.Header)
	}
	ke, _ := m.Find(ikev2.PayloadKE).(*ikev2.KE)
	if ke == nil || ke.Group != uint16(suite.ECP256) {
		t.Fatalf("KE %+v", ke)
	}
	if _, err := ecdh.P256().NewPublicKey(append([]byte{4}, ke.Data...)); err != nil {
		t.Errorf("KE is not a P-256 point: %v", err)
	}
	copy(b[len(b)-nonceLen:], []byte("0123456789abcdef0123456789abcdef"))
	m, err = ikev2.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := m.Find(ikev2.PayloadNonce).(*ikev2.Nonce); n == nil || string(n.Data) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("nonce %+v is not the last %d bytes", n, nonceLen)
	}
}

func TestBuildIPv4UDPChecksum(t *testing.T) {
	pkt := make([]byte, 28+4)
	buildIPv4UDP(pkt, netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("172.16.13.1"), 500, 500)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("IPv4 header checksum does not verify: %#x", sum)
	}
	if binary.BigEndian.Uint16(pkt[2:]) != 32 || binary.BigEndian.Uint16(pkt[24:]) != 12 {
		t.Errorf("lengths: ip %d udp %d", binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint16(pkt[24:]))
	}
}

// reply wraps an IKE message into an IPv4/UDP packet from src:500.
func reply(src string, ike []byte) []byte {
	p := make([]byte, 28+len(ike))
	copy(p[28:], ike)
	buildIPv4UDP(p, netip.MustParseAddr(src), netip.MustParseAddr("172.16.33.1"), 500, 500)
	return p
}

func cookieReply() []byte {
	return (&ikev2.Message{Header: ikev2.Header{SPIi: 7, Exchange: ikev2.IKE_SA_INIT, Flags: ikev2.FlagResponse},
		Payloads: []ikev2.Payload{&ikev2.Notify{NotifyType: ikev2.COOKIE, Data: make([]byte, 20)}}}).Encode()
}

func TestClassifyInitReply(t *testing.T) {
	responder := netip.MustParseAddr("172.16.13.1")
	other := (&ikev2.Message{Header: ikev2.Header{SPIi: 7, SPIr: 9, Exchange: ikev2.IKE_SA_INIT, Flags: ikev2.FlagResponse},
		Payloads: []ikev2.Payload{&ikev2.Nonce{Data: make([]byte, 32)}}}).Encode()
	request, err := ikeInitTemplate()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want replyKind
	}{
		{"cookie", reply("172.16.13.1", cookieReply()), replyCookie},
		{"answer", reply("172.16.13.1", other), replyOther},
		{"request", reply("172.16.13.1", request), replyNone},
		{"other source", reply("172.16.23.1", cookieReply()), replyNone},
		{"truncated", reply("172.16.13.1", cookieReply())[:40], replyNone},
		{"empty", nil, replyNone},
	} {
		if got := classifyInitReply(c.pkt, responder); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzClassifyInitReply(f *testing.F) {
	f.Add(reply("172.16.13.1", cookieReply()))
	f.Add(reply("172.16.13.1", cookieReply())[:36])
	f.Add([]byte{0x41, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 172, 16, 13, 1, 0, 0, 0, 0})
	responder := netip.MustParseAddr("172.16.13.1")
	f.Fuzz(func(t *testing.T, p []byte) { classifyInitReply(p, responder) })
}
