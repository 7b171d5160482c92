package ikev1

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

// recordInitiator runs a pair and returns what A sent, framed as
// 2-byte length + datagram.
func recordInitiator(t testing.TB) []byte {
	pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
	var out []byte
	pr.filter = func(n int, d ike.Datagram) bool {
		if d.Local.Addr() == addrA {
			out = binary.BigEndian.AppendUint16(out, uint16(len(d.Data)))
			out = append(out, d.Data...)
		}
		return true
	}
	pr.initiate(pr.a)
	pr.a.eng.Terminate(pr.now(), "A")
	pr.pump()
	return out
}

// FuzzResponder feeds arbitrary datagram sequences to a responder: it
// must never panic, and its bookkeeping must stay consistent.
func FuzzResponder(f *testing.F) {
	rec := recordInitiator(f)
	f.Add(rec)
	f.Add(rec[:len(rec)/2])
	// Aggressive Mode, an informational for an unknown SA, a bare header.
	ag := isakmp.Encode(isakmp.Header{InitiatorCookie: [8]byte{9}, Exchange: isakmp.ExchangeAggressive}, []isakmp.Payload{phase1SA([]Phase1Proposal{DefaultPhase1})})
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(ag))), ag...))
	hdr := isakmp.Header{Exchange: isakmp.ExchangeInformational, Flags: isakmp.FlagEncryption, MessageID: 5, Length: 60}
	b := hdr.Append(nil)
	b = append(b, make([]byte, 32)...)
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := basePeer("B", addrB, netip.Addr{})
		p.DPD = DPD{Interval: time.Second, Threshold: 2}
		eng, err := New([]Peer{p}, ike.SenderFunc(func(ike.Datagram) error { return nil }), newRecSink(), Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		local := netip.AddrPortFrom(addrB, 500)
		remote := netip.AddrPortFrom(addrA, 500)
		for len(data) >= 2 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			eng.HandleDatagram(now, ike.Datagram{Local: local, Remote: remote, Data: data[:n]})
			data = data[n:]
			now = now.Add(700 * time.Millisecond)
			eng.Tick(now)
		}
		eng.Tick(now.Add(time.Hour))
		if eng.nHalfOpen < 0 || eng.nHalfOpen > len(eng.byCookies)+len(eng.initWait) {
			t.Fatalf("half-open count %d with %d SAs", eng.nHalfOpen, len(eng.byCookies))
		}
	})
}
