package lab

import (
	"bytes"
	"testing"
)

func TestEchoRoundTrip(t *testing.T) {
	in := echo{Type: icmp4EchoRequest, ID: 0x1234, Seq: 7, Payload: []byte("bpfvpn")}
	b := marshalEcho(in, false)
	if inetChecksum(b) != 0 {
		t.Errorf("checksum over the encoded message is %#x, want 0", inetChecksum(b))
	}
	out, err := parseEcho(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Type != in.Type || out.ID != in.ID || out.Seq != in.Seq || !bytes.Equal(out.Payload, in.Payload) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if _, err := parseEcho(b[:7]); err == nil {
		t.Error("a 7-byte message parsed")
	}
}

// TestInetChecksumRFC1071 uses the worked example of RFC 1071 §3.
func TestInetChecksumRFC1071(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := inetChecksum(b); got != ^uint16(0xddf2) {
		t.Errorf("checksum = %#x, want %#x", got, ^uint16(0xddf2))
	}
}

func FuzzParseEcho(f *testing.F) {
	f.Add([]byte{})
	f.Add(marshalEcho(echo{Type: icmp4EchoReply, ID: 1, Seq: 2, Payload: []byte("x")}, false))
	f.Add([]byte{129, 0, 0, 0, 0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseEcho(b)
		if err == nil && len(m.Payload) != len(b)-8 {
			t.Fatalf("payload length %d for %d bytes", len(m.Payload), len(b))
		}
	})
}
