package ikev1

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
)

// recSink is the shared recording sink with views the IKEv1 tests use.
type recSink struct{ *iketest.Sink }

func newRecSink() *recSink { return &recSink{iketest.NewSink()} }

func (s *recSink) kind(k string) []iketest.Event {
	var out []iketest.Event
	for _, e := range s.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (s *recSink) installedSAs() []ike.ChildSA {
	var out []ike.ChildSA
	for _, e := range s.kind("installed") {
		out = append(out, e.SA)
	}
	return out
}

func (s *recSink) rekeyedPairs() [][2]ike.ChildSA {
	var out [][2]ike.ChildSA
	for _, e := range s.kind("rekeyed") {
		out = append(out, [2]ike.ChildSA{e.Old, e.SA})
	}
	return out
}

func (s *recSink) deletedSAs() []ike.ChildSA {
	var out []ike.ChildSA
	for _, e := range s.kind("deleted") {
		out = append(out, e.SA)
	}
	return out
}

// ikeUp counts phase-1 SAs reported established.
func (s *recSink) ikeUp() int {
	n := 0
	for _, e := range s.kind("ike") {
		if e.IKE.State == ike.StateEstablished {
			n++
		}
	}
	return n
}

func (s *recSink) counts() string {
	return fmt.Sprintf("installed=%d rekeyed=%d deleted=%d", s.Count("installed"), s.Count("rekeyed"), s.Count("deleted"))
}

func cloneSA(sa ike.ChildSA) ike.ChildSA {
	sa.In.Encryption = sa.In.Encryption.Clone()
	sa.In.Integrity = sa.In.Integrity.Clone()
	sa.Out.Encryption = sa.Out.Encryption.Clone()
	sa.Out.Integrity = sa.Out.Integrity.Clone()
	return sa
}

// lastInstalled is the newest SA installed or rekeyed in.
func lastInstalled(s *recSink) (ike.ChildSA, bool) {
	ev := s.Events()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Kind == "installed" || ev[i].Kind == "rekeyed" {
			return ev[i].SA, true
		}
	}
	return ike.ChildSA{}, false
}

// end is one engine with its address and sink.
type end struct {
	name string
	eng  *Engine
	sink *recSink
	addr netip.Addr
	// public is the address this end's packets carry after NAT (invalid: no NAT).
	public netip.Addr
	sent   int
}

// pair is two engines on the shared in-memory network (iketest) with its
// fake clock.
type pair struct {
	t    testing.TB
	net  *iketest.Network
	a, b *end
	// filter may drop (false) a datagram about to be delivered; n counts
	// datagrams in delivery order.
	filter func(n int, d ike.Datagram) bool
	n      int
	// reorder delivers each batch in random order.
	reorder bool
	// natPorts maps a NATed end's private ports to public ones.
	natPorts map[uint16]uint16
	// delivered counts datagrams handed to an engine.
	delivered int
}

const pairPSK = "correct horse battery staple"

var (
	addrA = netip.MustParseAddr("172.16.13.1")
	addrB = netip.MustParseAddr("172.16.23.1")
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("IKEV1_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
}

func basePeer(name string, local, remote netip.Addr) Peer {
	return Peer{
		Name: name, Local: local, Remote: remote, PSK: []byte(pairPSK),
		IKE: []Phase1Proposal{DefaultPhase1}, ESP: []Phase2Proposal{DefaultPhase2},
		VPNName: "vpn-" + name, ReqID: 7, IfID: 1,
	}
}

func newPair(t testing.TB, pa, pb Peer) *pair {
	t.Helper()
	return newSeededPair(t, pa, pb, 0)
}

// newSeededPair is newPair whose engines draw cookies, nonces, SPIs and
// DH values from ChaCha8 streams of seed (0: crypto/rand), so that a run
// replays exactly.
func newSeededPair(t testing.TB, pa, pb Peer, seed uint64) *pair {
	t.Helper()
	pr := &pair{t: t, net: iketest.NewNetwork(max(seed, 1))}
	mk := func(name string, p Peer) *end {
		e := &end{name: name, sink: newRecSink(), addr: p.Local}
		opts := Options{Logger: testLogger(t).With("end", name), RetransmitBase: time.Second, RetransmitTries: 5}
		if seed != 0 {
			var key [32]byte
			binary.BigEndian.PutUint64(key[:], seed)
			key[8] = name[0]
			opts.Rand = rand.NewChaCha8(key)
		}
		eng, err := New([]Peer{p}, pr.net, e.sink, opts)
		if err != nil {
			t.Fatal(err)
		}
		e.eng = eng
		pr.net.Attach(p.Local, eng)
		return e
	}
	pr.a = mk("A", pa)
	pr.b = mk("B", pb)
	pr.net.Drop = func(d ike.Datagram) bool {
		for _, e := range []*end{pr.a, pr.b} {
			if d.Local.Addr() == e.addr {
				e.sent++
			}
		}
		pr.n++
		return pr.filter != nil && !pr.filter(pr.n, d)
	}
	pr.net.Rewrite = pr.nat
	pr.net.Tap = func(ike.Datagram) { pr.delivered++ }
	return pr
}

// nat rewrites the addresses of a NATed end (source out, destination in).
func (pr *pair) nat(d *ike.Datagram) bool {
	for _, e := range []*end{pr.a, pr.b} {
		if !e.public.IsValid() {
			continue
		}
		if d.Local.Addr() == e.addr {
			d.Local = netip.AddrPortFrom(e.public, pr.natPorts[d.Local.Port()])
		}
		if d.Remote.Addr() == e.public {
			for priv, pub := range pr.natPorts {
				if pub == d.Remote.Port() {
					d.Remote = netip.AddrPortFrom(e.addr, priv)
				}
			}
		}
	}
	return true
}

func (pr *pair) now() time.Time { return pr.net.Now() }

// deliver hands d to its receiver immediately (an extra copy).
func (pr *pair) deliver(d ike.Datagram) {
	for _, e := range []*end{pr.a, pr.b} {
		if e.addr == d.Remote.Addr() {
			pr.delivered++
			e.eng.HandleDatagram(pr.now(), ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data})
		}
	}
}

// pump delivers queued datagrams until the network is quiet (bounded).
func (pr *pair) pump() {
	pr.net.Reorder = pr.reorder
	pr.net.Settle(1000)
}

// advance moves the clock by d, at most step at a time, firing timers and
// delivering traffic.
func (pr *pair) advance(d, step time.Duration) {
	pr.net.Reorder = pr.reorder
	pr.net.RunUntil(func() bool { return false }, step, d)
}

// until advances the clock until cond holds or limit passes.
func (pr *pair) until(limit time.Duration, cond func() bool) bool {
	pr.net.Reorder = pr.reorder
	return pr.net.RunUntil(cond, 500*time.Millisecond, limit)
}

func (pr *pair) initiate(e *end) {
	pr.t.Helper()
	if err := e.eng.Initiate(pr.now(), e.eng.peers[0].cfg.Name); err != nil {
		pr.t.Fatal(err)
	}
	pr.pump()
}

// checkMatched asserts that a's and b's newest CHILD SAs are the two ends
// of one pair.
func checkMatched(t testing.TB, a, b ike.ChildSA) {
	t.Helper()
	if a.SPIIn != b.SPIOut || a.SPIOut != b.SPIIn {
		t.Fatalf("SPIs do not pair: a in=%08x out=%08x, b in=%08x out=%08x", a.SPIIn, a.SPIOut, b.SPIIn, b.SPIOut)
	}
	if !bytes.Equal(a.In.Encryption, b.Out.Encryption) || !bytes.Equal(a.Out.Encryption, b.In.Encryption) ||
		!bytes.Equal(a.In.Integrity, b.Out.Integrity) || !bytes.Equal(a.Out.Integrity, b.In.Integrity) {
		t.Fatal("keys do not pair")
	}
	if bytes.Equal(a.In.Encryption, a.Out.Encryption) {
		t.Fatal("inbound and outbound keys are equal")
	}
	if len(a.In.Encryption)*8 != a.Encryption.KeyBits || a.Encryption != b.Encryption {
		t.Fatalf("algorithms differ or key length wrong: %+v / %+v", a.Encryption, b.Encryption)
	}
	if (a.Integrity == nil) != (b.Integrity == nil) || a.Integrity != nil && (*a.Integrity != *b.Integrity || len(a.In.Integrity)*8 != a.Integrity.KeyBits) {
		t.Fatalf("integrity differs: %+v / %+v", a.Integrity, b.Integrity)
	}
	if a.LocalTS[0] != b.RemoteTS[0] || a.RemoteTS[0] != b.LocalTS[0] {
		t.Fatalf("selectors do not mirror: %v/%v vs %v/%v", a.LocalTS, a.RemoteTS, b.LocalTS, b.RemoteTS)
	}
}
