package ikev1

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// fakeKE is a deterministic stand-in for Diffie-Hellman: the public value
// comes from a per-engine counter and the shared secret hashes both public
// values in a fixed order, so both ends agree and replays repeat exactly.
// Test use only: it is not a key exchange.
type fakeKE struct {
	g   suite.DHGroup
	pub []byte
}

func (f *fakeKE) Group() suite.DHGroup { return f.g }
func (f *fakeKE) PublicValue() []byte  { return f.pub }
func (f *fakeKE) Wipe()                {}
func (f *fakeKE) SharedSecret(peer []byte) (suite.Key, error) {
	a, b := f.pub, peer
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	return suite.Key(expand(append(append([]byte("shared"), a...), b...), len(f.pub))), nil
}

func expand(seed []byte, n int) []byte {
	var out []byte
	for i := byte(0); len(out) < n; i++ {
		h := sha256.Sum256(append(seed, i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

// deterministic makes e's randomness and key exchanges reproducible.
func deterministic(e *Engine, label string) {
	e.rand = rand.NewChaCha8(sha256.Sum256([]byte(label)))
	n := 0
	e.newKE = func(g suite.DHGroup) (suite.KeyExchange, error) {
		n++
		return &fakeKE{g: g, pub: expand([]byte(label+string(rune(n))), g.PublicValueLen())}, nil
	}
}

func fuzzResponderPeer() Peer {
	// No DPD of its own: its probes would consume randomness at times
	// that differ between recording and replay.
	p := basePeer("B", addrB, netip.Addr{})
	p.PFS = suite.ECP256
	return p
}

// recordInitiator runs a deterministic pair (B configured as in the fuzz
// target) and returns what A sent, framed as 2-byte length + datagram: Main
// Mode, Quick Mode, a rekey, DPD and the deletes.
func recordInitiator(t testing.TB) []byte {
	pa := basePeer("A", addrA, addrB)
	pa.PFS = suite.ECP256
	pa.DPD = DPD{Mode: DPDAlwaysSend, Interval: 5 * time.Second, Threshold: 3}
	pr := newPair(t, pa, fuzzResponderPeer())
	deterministic(pr.a.eng, "A")
	deterministic(pr.b.eng, "B")
	var out []byte
	pr.filter = func(n int, d ike.Datagram) bool {
		if d.Local.Addr() == addrA {
			out = binary.BigEndian.AppendUint16(out, uint16(len(d.Data)))
			out = append(out, d.Data...)
		}
		return true
	}
	pr.initiate(pr.a)
	pr.advance(12*time.Second, time.Second)
	if err := pr.a.eng.RekeyChild(pr.now(), "A"); err != nil {
		t.Fatal(err)
	}
	pr.pump()
	pr.a.eng.Terminate(pr.now(), "A")
	pr.pump()
	if pr.b.sink.Count("rekeyed") != 1 || pr.b.sink.Count("deleted") < 2 {
		t.Fatalf("recording incomplete: B %s", pr.b.sink.counts())
	}
	return out
}

// TestResponderReplay checks that the recording replays into a fresh
// responder exactly (so FuzzResponder mutates a complete conversation).
func TestResponderReplay(t *testing.T) {
	rec := recordInitiator(t)
	sink := newRecSink()
	feedResponder(t, rec, sink)
	if sink.Count("installed") != 1 || sink.Count("rekeyed") != 1 || sink.Count("deleted") < 2 {
		t.Fatalf("replay: %s", sink.counts())
	}
}

// feedResponder plays framed datagrams into a fresh deterministic responder.
func feedResponder(t *testing.T, data []byte, sink *recSink) *Engine {
	eng, err := New([]Peer{fuzzResponderPeer()}, ike.SenderFunc(func(ike.Datagram) error { return nil }), sink, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	deterministic(eng, "B")
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
		now = now.Add(300 * time.Millisecond)
		eng.Tick(now)
	}
	eng.Tick(now.Add(time.Hour))
	return eng
}

// FuzzResponder feeds arbitrary datagram sequences to a responder whose
// randomness and key exchanges are deterministic, seeded with a complete
// recorded conversation (Main Mode, Quick Mode with PFS, rekey, DPD,
// deletes): it must never panic and its bookkeeping must stay consistent.
func FuzzResponder(f *testing.F) {
	rec := recordInitiator(f)
	f.Add(rec)
	f.Add(rec[:len(rec)/2])
	ag := isakmp.Encode(isakmp.Header{InitiatorCookie: [8]byte{9}, Exchange: isakmp.ExchangeAggressive}, []isakmp.Payload{phase1SA([]Phase1Proposal{DefaultPhase1})})
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(ag))), ag...))
	hdr := isakmp.Header{Exchange: isakmp.ExchangeInformational, Flags: isakmp.FlagEncryption, MessageID: 5, Length: 60}
	b := hdr.Append(nil)
	b = append(b, make([]byte, 32)...)
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		eng := feedResponder(t, data, newRecSink())
		if eng.nHalfOpen < 0 || eng.nHalfOpen > len(eng.byCookies)+len(eng.initWait) {
			t.Fatalf("half-open count %d with %d SAs", eng.nHalfOpen, len(eng.byCookies))
		}
		for spi, c := range eng.spis {
			if c != nil && c.peer.children[spi] != c {
				t.Fatalf("SPI %08x indexed but not a child of its peer", spi)
			}
		}
	})
}

// TestConcurrentThirdMessage delivers the third Main Mode message from
// several goroutines at once (its Diffie-Hellman runs outside the engine
// lock): exactly one is processed, the rest are answered as duplicates,
// and the exchange completes. Run with -race.
func TestConcurrentThirdMessage(t *testing.T) {
	rec := recordInitiator(t)
	var frames [][]byte
	for len(rec) >= 2 {
		n := int(binary.BigEndian.Uint16(rec))
		frames = append(frames, rec[2:2+n])
		rec = rec[2+n:]
	}
	sink := newRecSink()
	var mu sync.Mutex
	sent := 0
	eng, err := New([]Peer{fuzzResponderPeer()}, ike.SenderFunc(func(ike.Datagram) error { mu.Lock(); sent++; mu.Unlock(); return nil }), sink, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	deterministic(eng, "B")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dg := func(b []byte) ike.Datagram {
		return ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: b}
	}
	eng.HandleDatagram(now, dg(frames[0]))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); eng.HandleDatagram(now, dg(frames[1])) }()
	}
	wg.Wait()
	// MM2 once, MM4 at most once per delivery (the first, then duplicates
	// answered or dropped while the first computed).
	if sent < 2 || sent > 9 {
		t.Fatalf("%d messages sent", sent)
	}
	for _, f := range frames[2:] {
		now = now.Add(300 * time.Millisecond)
		eng.HandleDatagram(now, dg(f))
	}
	if sink.Count("installed") != 1 || sink.Count("rekeyed") != 1 {
		t.Fatalf("exchange did not complete after concurrent delivery: %s", sink.counts())
	}
}
