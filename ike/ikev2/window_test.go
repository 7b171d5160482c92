package ikev2

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// wireLog records the CREATE_CHILD_SA datagrams delivered, in order.
type wireLog struct {
	mu  sync.Mutex
	seq []wireMsg
}

type wireMsg struct {
	msgID    uint32
	response bool
	data     []byte
	from     ike.Datagram
}

func (w *wireLog) tap(d ike.Datagram) {
	m, err := Decode(d.Data)
	if err != nil || m.Exchange != CREATE_CHILD_SA {
		return
	}
	w.mu.Lock()
	w.seq = append(w.seq, wireMsg{msgID: m.MessageID, response: m.IsResponse(), data: d.Data, from: d})
	w.mu.Unlock()
}

// maxInFlight is the largest number of requests delivered but not yet answered.
func (w *wireLog) maxInFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	open, most := map[uint32]bool{}, 0
	for _, m := range w.seq {
		if m.response {
			delete(open, m.msgID)
		} else {
			open[m.msgID] = true
		}
		most = max(most, len(open))
	}
	return most
}

func (w *wireLog) responseOrder() []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uint32
	seen := map[uint32]bool{}
	for _, m := range w.seq {
		if m.response && !seen[m.msgID] {
			seen[m.msgID] = true
			out = append(out, m.msgID)
		}
	}
	return out
}

func (p *pair) createChildren(n int) {
	p.t.Helper()
	for i := 0; i < n; i++ {
		if err := p.a.CreateChild(p.now(), "vpnA"); err != nil {
			p.t.Fatal(err)
		}
	}
}

// TestWindowKeepsRequestsInFlight: with the responder's SET_WINDOW_SIZE 4 the
// initiator sends four CREATE_CHILD_SA requests before the first answer;
// without a window (1) it sends one at a time.
func TestWindowKeepsRequestsInFlight(t *testing.T) {
	for _, tc := range []struct {
		window, want int
	}{{0, defaultWindowSize}, {1, 1}} {
		p := newPair(t, nil, func(a, b *Config) { b.WindowSize = tc.window })
		log := &wireLog{}
		p.net.Tap = log.tap
		p.establish()
		p.a.mu.Lock()
		got := p.a.sasOf("vpnA")[0].sendWindow()
		p.a.mu.Unlock()
		if int(got) != tc.want {
			t.Fatalf("window %d: initiator's send window %d, want %d", tc.window, got, tc.want)
		}
		p.createChildren(4)
		p.run("four more CHILD SAs", func() bool {
			return len(p.sinkA.Installed()) == 5 && len(p.sinkB.Installed()) == 5 && p.quiet()
		}, time.Minute)
		checkChildrenMatch(t, p.sinkA, p.sinkB, 5)
		if n := log.maxInFlight(); n != tc.want {
			t.Fatalf("window %d: %d requests in flight at most, want %d", tc.window, n, tc.want)
		}
	}
}

// TestWindowAnswersOutOfOrder loses the first of four requests once: the
// responder answers the three later ones at once, the lost one on its
// retransmission; a duplicate inside the window gets the cached answer, one
// below the window is ignored.
func TestWindowAnswersOutOfOrder(t *testing.T) {
	p := newPair(t, nil, nil)
	log := &wireLog{}
	p.net.Tap = log.tap
	p.establish()
	var mu sync.Mutex
	dropped := false
	var req2 ike.Datagram
	p.net.Drop = func(d ike.Datagram) bool {
		m, err := Decode(d.Data)
		if err != nil || m.IsResponse() || d.Remote.Addr() != addrB {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if m.Exchange == CREATE_CHILD_SA && m.MessageID == 2 && !dropped {
			dropped = true
			return true
		}
		return false
	}
	p.createChildren(4)
	p.run("four more CHILD SAs despite a lost request", func() bool {
		return len(p.sinkA.Installed()) == 5 && len(p.sinkB.Installed()) == 5 && p.quiet()
	}, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 5)
	order := log.responseOrder()
	if len(order) != 4 || order[len(order)-1] != 2 {
		t.Fatalf("responses in order %v, want 3, 4, 5 before the lost 2", order)
	}

	// A copy of request 2 (inside the window): the cached answer, byte for byte.
	var resp2 []byte
	log.mu.Lock()
	for _, m := range log.seq {
		if m.msgID == 2 && !m.response && !req2.Remote.IsValid() {
			req2 = m.from
		}
		if m.msgID == 2 && m.response && resp2 == nil {
			resp2 = m.data
		}
	}
	log.seq = nil
	log.mu.Unlock()
	installed := p.sinkB.Count("installed")
	p.net.Inject(req2)
	p.net.Settle(10)
	log.mu.Lock()
	var again [][]byte
	for _, m := range log.seq {
		if m.response {
			again = append(again, m.data)
		}
	}
	log.mu.Unlock()
	if len(again) != 1 || !bytes.Equal(again[0], resp2) || p.sinkB.Count("installed") != installed {
		t.Fatalf("duplicate request 2: %d answers (cached: %v), installed %d -> %d", len(again), len(again) == 1 && bytes.Equal(again[0], resp2), installed, p.sinkB.Count("installed"))
	}
}

// TestWindowBelowIsForgotten: the responder keeps one window of answers and
// ignores requests below it.
func TestWindowResponseCache(t *testing.T) {
	e := &Engine{cfg: Config{WindowSize: 4}}
	s := &ikeSA{e: e, state: ike.StateEstablished, peerMsgID: 2}
	pk := func(id uint32) [][]byte { return [][]byte{{byte(id)}} }
	if !s.acceptsRequest(2) || !s.acceptsRequest(5) || s.acceptsRequest(6) || s.acceptsRequest(1) {
		t.Fatal("window [2,6) not accepted exactly")
	}
	s.storeResponse(4, pk(4)) // out of order: 2 and 3 still open
	if s.peerMsgID != 2 || s.acceptsRequest(4) || !s.acceptsRequest(3) || s.cachedResponse(4) == nil {
		t.Fatalf("after 4: peerMsgID %d", s.peerMsgID)
	}
	s.storeResponse(2, pk(2))
	s.storeResponse(3, pk(3))
	if s.peerMsgID != 5 || !s.acceptsRequest(8) || s.acceptsRequest(9) {
		t.Fatalf("after 2,3,4: peerMsgID %d, want 5", s.peerMsgID)
	}
	for id := uint32(5); id < 12; id++ {
		s.storeResponse(id, pk(id))
	}
	// peerMsgID 12, window 4: answers 8..11 kept, older ones forgotten.
	if s.peerMsgID != 12 || len(s.responses) != 4 || s.cachedResponse(7) != nil || s.cachedResponse(8) == nil {
		t.Fatalf("peerMsgID %d, %d answers cached", s.peerMsgID, len(s.responses))
	}
	// Before IKE_AUTH completes the window is one.
	s.state = ike.StateConnecting
	if s.acceptsRequest(13) || !s.acceptsRequest(12) {
		t.Fatal("window larger than one before establishment")
	}
}

// TestWindowLossyReordered creates and rekeys CHILD SAs four at a time over a
// network that loses 20% and reorders.
func TestWindowLossyReordered(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		p := newPair(t, nil, nil)
		p.reseed(seed)
		p.establish()
		p.net.LossRate = 0.2
		p.net.Reorder = true
		p.createChildren(3)
		p.run("three more CHILD SAs despite loss", func() bool {
			return len(p.sinkA.Installed()) == 4 && len(p.sinkB.Installed()) == 4 && p.quiet()
		}, 10*time.Minute)
		if err := p.a.RekeyChild(p.now(), "vpnA"); err != nil {
			t.Fatal(err)
		}
		p.run("four CHILD SAs rekeyed at once despite loss", func() bool {
			return p.sinkA.Count("rekeyed") == 4 && p.sinkB.Count("rekeyed") == 4 && p.quiet() &&
				len(p.sinkA.Installed()) == 4 && len(p.sinkB.Installed()) == 4
		}, 10*time.Minute)
		checkChildrenMatch(t, p.sinkA, p.sinkB, 4)
		if _, dropped := p.net.Counts(); dropped == 0 {
			t.Fatalf("seed %d: nothing was dropped", seed)
		}
	}
}

// TestWindowIKERekeyRunsAlone: an IKE SA rekey waits for the requests in
// flight and nothing starts while it runs.
func TestWindowIKERekeyRunsAlone(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	old := p.a.IKESAs(p.now())[0].Index
	p.createChildren(2)
	if err := p.a.RekeyIKE(p.now(), "vpnA"); err != nil {
		t.Fatal(err)
	}
	p.a.mu.Lock()
	s := p.a.sasOf("vpnA")[0]
	inFlight, queued := len(s.pending), len(s.queue)
	p.a.mu.Unlock()
	if inFlight != 2 || queued != 1 {
		t.Fatalf("%d in flight, %d queued; want the 2 child creations in flight and the rekey queued", inFlight, queued)
	}
	p.run("IKE SA rekeyed and two more CHILD SAs", func() bool {
		return len(p.sinkA.Installed()) == 3 && len(p.sinkB.Installed()) == 3 && p.quiet() &&
			established(p.a, p.now()) == 1 && established(p.b, p.now()) == 1 && len(p.a.IKESAs(p.now())) == 1
	}, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 3)
	if now := p.a.IKESAs(p.now()); now[0].Index == old {
		t.Fatal("IKE SA not replaced")
	}
}

// TestChildInvalidKERetryTakesNewMessageID: the responder answers a PFS
// group it does not want with INVALID_KE_PAYLOAD and caches that answer;
// the initiator's retry must use a new message ID or it would only get the
// cached refusal again.
func TestChildInvalidKERetryTakesNewMessageID(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		a.ChildProposals = []ChildProposal{{Encryption: defaultChild()[0].Encryption, DH: []suite.DHGroup{suite.ECP256, suite.ECP384}}}
		b.ChildProposals = []ChildProposal{{Encryption: defaultChild()[0].Encryption, DH: []suite.DHGroup{suite.ECP384}}}
	}, nil)
	p.establish()
	p.createChildren(1)
	p.run("CHILD SA with the responder's PFS group", func() bool {
		return len(p.sinkA.Installed()) == 2 && len(p.sinkB.Installed()) == 2 && p.quiet()
	}, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 2)
}

// FuzzWindowResponder sends liveness requests with arbitrary message IDs
// near the window (each byte: offset from the next expected ID, minus 4):
// the responder answers each ID in the window once, never moves its window
// backwards and never caches more than two windows of answers.
func FuzzWindowResponder(f *testing.F) {
	f.Add([]byte{4, 5, 6, 7})
	f.Add([]byte{7, 6, 5, 4, 4, 8, 0, 255})
	f.Add([]byte{5, 5, 4, 3, 9, 10, 11})
	f.Fuzz(func(t *testing.T, offsets []byte) {
		if len(offsets) > 64 {
			return
		}
		p := newPair(t, nil, nil)
		p.establish()
		p.a.mu.Lock()
		sa := p.a.sasOf("vpnA")[0]
		p.a.mu.Unlock()
		p.b.mu.Lock()
		sb := p.b.sasOf("vpnB")[0]
		base := sb.peerMsgID
		p.b.mu.Unlock()
		for _, o := range offsets {
			id := base + uint32(o) - 4
			p.a.mu.Lock()
			packets, err := sa.pack(sa.header(INFORMATIONAL, id, false), nil)
			p.a.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			p.b.mu.Lock()
			before := sb.peerMsgID
			p.b.mu.Unlock()
			p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: packets[0]})
			p.b.mu.Lock()
			after, cached, w := sb.peerMsgID, len(sb.responses), sb.recvWindow()
			p.b.mu.Unlock()
			if after < before || after > before+w || cached > int(2*w) {
				t.Fatalf("request %d: peerMsgID %d -> %d, %d answers cached (window %d)", id, before, after, cached, w)
			}
		}
	})
}
