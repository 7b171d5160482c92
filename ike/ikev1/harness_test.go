package ikev1

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// recSink records SASink calls.
type recSink struct {
	mu        sync.Mutex
	installed []ike.ChildSA
	rekeyed   [][2]ike.ChildSA
	deleted   []ike.ChildSA
	ikeSA     []ike.IKESAStatus
}

func (s *recSink) ChildSAInstalled(sa ike.ChildSA) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installed = append(s.installed, cloneSA(sa))
	return nil
}
func (s *recSink) ChildSARekeyed(old, sa ike.ChildSA) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rekeyed = append(s.rekeyed, [2]ike.ChildSA{old, cloneSA(sa)})
	return nil
}
func (s *recSink) ChildSADeleted(sa ike.ChildSA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, sa)
}
func (s *recSink) IKESAChanged(st ike.IKESAStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ikeSA = append(s.ikeSA, st)
}

func (s *recSink) ikeUp() int {
	n := 0
	for _, st := range s.ikeSA {
		if st.State == ike.StateEstablished {
			n++
		}
	}
	return n
}

func cloneSA(sa ike.ChildSA) ike.ChildSA {
	sa.In.Encryption = sa.In.Encryption.Clone()
	sa.In.Integrity = sa.In.Integrity.Clone()
	sa.Out.Encryption = sa.Out.Encryption.Clone()
	sa.Out.Integrity = sa.Out.Integrity.Clone()
	return sa
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

// pair is two engines connected by an in-memory network with a fake clock.
type pair struct {
	t     testing.TB
	now   time.Time
	a, b  *end
	queue []ike.Datagram
	// filter may drop (false) a datagram about to be delivered; it sees
	// datagrams in transmission order.
	filter func(n int, d ike.Datagram) bool
	n      int
	// reorder delivers each batch in reverse order.
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
	pr := &pair{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	mk := func(name string, p Peer) *end {
		e := &end{name: name, sink: &recSink{}, addr: p.Local}
		eng, err := New([]Peer{p}, ike.SenderFunc(func(d ike.Datagram) error {
			e.sent++
			pr.queue = append(pr.queue, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: append([]byte(nil), d.Data...)})
			return nil
		}), e.sink, Options{Logger: testLogger(t).With("end", name), RetransmitBase: time.Second, RetransmitTries: 5})
		if err != nil {
			t.Fatal(err)
		}
		e.eng = eng
		return e
	}
	pr.a = mk("A", pa)
	pr.b = mk("B", pb)
	return pr
}

// deliver routes d to the end owning its destination, applying NAT.
func (pr *pair) deliver(d ike.Datagram) {
	pr.delivered++
	var to *end
	src := d.Local
	for _, e := range []*end{pr.a, pr.b} {
		if e.public.IsValid() && d.Local.Addr() == e.addr {
			src = netip.AddrPortFrom(e.public, pr.natPorts[d.Local.Port()])
		}
	}
	dst := d.Remote
	for _, e := range []*end{pr.a, pr.b} {
		if e.addr == dst.Addr() {
			to = e
		}
		if e.public.IsValid() && e.public == dst.Addr() {
			to = e
			for priv, pub := range pr.natPorts {
				if pub == dst.Port() {
					dst = netip.AddrPortFrom(e.addr, priv)
				}
			}
		}
	}
	if to == nil {
		return
	}
	to.eng.HandleDatagram(pr.now, ike.Datagram{Local: dst, Remote: src, Data: d.Data})
}

// pump delivers queued datagrams until the network is quiet (bounded).
func (pr *pair) pump() {
	for round := 0; len(pr.queue) > 0; round++ {
		if round > 1000 {
			pr.t.Fatal("network never went quiet")
		}
		batch := pr.queue
		pr.queue = nil
		if pr.reorder && len(batch) > 1 {
			for i, j := 0, len(batch)-1; i < j; i, j = i+1, j-1 {
				batch[i], batch[j] = batch[j], batch[i]
			}
		}
		for _, d := range batch {
			pr.n++
			if pr.filter != nil && !pr.filter(pr.n, d) {
				continue
			}
			pr.deliver(d)
		}
	}
}

// advance moves the clock in steps, firing timers and delivering traffic.
func (pr *pair) advance(d, step time.Duration) {
	stop := pr.now.Add(d)
	for pr.now.Before(stop) {
		next := pr.now.Add(step)
		for _, e := range []*end{pr.a, pr.b} {
			if t, ok := e.eng.NextTimer(); ok && t.Before(next) && t.After(pr.now) {
				next = t
			}
		}
		if next.After(stop) {
			next = stop
		}
		pr.now = next
		pr.a.eng.Tick(pr.now)
		pr.b.eng.Tick(pr.now)
		pr.pump()
	}
}

// until advances the clock until cond holds or limit passes.
func (pr *pair) until(limit time.Duration, cond func() bool) bool {
	deadline := pr.now.Add(limit)
	pr.pump()
	for !cond() {
		if !pr.now.Before(deadline) {
			return false
		}
		pr.advance(500*time.Millisecond, 500*time.Millisecond)
	}
	return true
}

func (pr *pair) initiate(e *end) {
	pr.t.Helper()
	if err := e.eng.Initiate(pr.now, e.eng.peers[0].cfg.Name); err != nil {
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

func lastInstalled(s *recSink) (ike.ChildSA, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rekeyed) > 0 {
		return s.rekeyed[len(s.rekeyed)-1][1], true
	}
	if len(s.installed) == 0 {
		return ike.ChildSA{}, false
	}
	return s.installed[len(s.installed)-1], true
}

func (s *recSink) counts() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("installed=%d rekeyed=%d deleted=%d", len(s.installed), len(s.rekeyed), len(s.deleted))
}
