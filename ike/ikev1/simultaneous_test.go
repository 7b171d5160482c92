package ikev1

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// currentPair is the CHILD SA an end sends on: the newest one installed
// or rekeyed in that is still installed.
func currentPair(s *recSink) (ike.ChildSA, bool) {
	inst := s.Installed()
	ev := s.Events()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Kind != "installed" && ev[i].Kind != "rekeyed" {
			continue
		}
		if sa, ok := inst[ev[i].SA.SPIIn]; ok {
			return sa, true
		}
	}
	return ike.ChildSA{}, false
}

// working reports whether both ends send on the two halves of one pair
// and each has the other's outbound SA installed inbound.
func (pr *pair) working() bool {
	a, ok := currentPair(pr.a.sink)
	b, ok2 := currentPair(pr.b.sink)
	if !ok || !ok2 || a.SPIIn != b.SPIOut || a.SPIOut != b.SPIIn {
		return false
	}
	_, aHas := pr.a.sink.Installed()[b.SPIOut]
	_, bHas := pr.b.sink.Installed()[a.SPIOut]
	return aHas && bHas
}

// TestSimultaneousInitiation: both ends keep the tunnel up and start Main
// Mode at the same instant, or one while the other's Main Mode is at each
// of its steps, with and without loss and reordering. The INITIAL-CONTACT
// each sends must not destroy the other's negotiation: the ends converge on
// one working CHILD SA pair within a bounded number of datagrams, keep it
// (no loss once it works), and end with exactly one pair each.
func TestSimultaneousInitiation(t *testing.T) {
	type variant struct {
		name string
		// startB is the datagram count after which B initiates (0: at
		// the same instant as A).
		startB  int
		drop    int // drop 1 in drop datagrams (0: none)
		reorder bool
		seed    uint64
	}
	var vs []variant
	for startB := 0; startB <= 6; startB++ {
		vs = append(vs, variant{name: fmt.Sprintf("B-after-%d", startB), startB: startB})
	}
	for seed := uint64(1); seed <= 40; seed++ {
		for _, drop := range []int{0, 3, 5} {
			vs = append(vs, variant{name: fmt.Sprintf("seed-%d-drop-%d-reorder", seed, drop), drop: drop, reorder: true, seed: seed})
			if drop != 0 {
				vs = append(vs, variant{name: fmt.Sprintf("seed-%d-drop-%d", seed, drop), drop: drop, seed: seed})
			}
		}
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			pr := newSeededPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA), v.seed+1)
			pr.reorder = v.reorder
			rng := rand.New(rand.NewPCG(v.seed, 77))
			startB := func() {
				if err := pr.b.eng.Initiate(pr.now(), "B"); err != nil {
					t.Fatal(err)
				}
			}
			pr.filter = func(n int, d ike.Datagram) bool {
				if v.startB > 0 && n == v.startB {
					startB()
				}
				return v.drop == 0 || rng.IntN(v.drop) != 0
			}
			if err := pr.a.eng.Initiate(pr.now(), "A"); err != nil {
				t.Fatal(err)
			}
			if v.startB == 0 {
				startB()
			}
			// Without loss the ends converge in Main Mode and Quick Mode
			// exchanges plus a few collisions; with loss, within the
			// retransmission schedule of a few tries.
			limit := 40 * time.Second
			if v.drop != 0 {
				limit = 3 * time.Minute
			}
			if !pr.until(limit, pr.working) {
				t.Fatalf("no working CHILD SA pair after %v: A %s (%d phase 1) B %s (%d phase 1)", limit,
					pr.a.sink.counts(), len(pr.a.eng.IKESAs(pr.now())), pr.b.sink.counts(), len(pr.b.eng.IKESAs(pr.now())))
			}
			t.Logf("converged after %d datagrams (A %d, B %d); phase-1 SAs A %d B %d", pr.a.sent+pr.b.sent, pr.a.sent, pr.b.sent,
				len(pr.a.eng.IKESAs(pr.now())), len(pr.b.eng.IKESAs(pr.now())))
			if v.drop == 0 {
				// Two Main Modes (12) and one Quick Mode (3), plus at
				// most one abandoned Quick Mode's first message.
				if n := pr.a.sent + pr.b.sent; n > 16 {
					t.Errorf("%d datagrams to converge without loss (A %d, B %d)", n, pr.a.sent, pr.b.sent)
				}
				// INITIAL-CONTACT removed nothing: no SA went down.
				for _, e := range []*end{pr.a, pr.b} {
					for _, ev := range e.sink.kind("ike") {
						if ev.IKE.State == ike.StateDown {
							t.Errorf("%s: phase-1 SA %d went down: %s", e.name, ev.IKE.Index, ev.IKE.Reason)
						}
					}
					if n := len(e.sink.deletedSAs()); n != 0 {
						t.Errorf("%s: %d CHILD SAs deleted", e.name, n)
					}
				}
			}
			a, _ := currentPair(pr.a.sink)
			b, _ := currentPair(pr.b.sink)
			checkMatched(t, a, b)
			// From now on no datagram may be lost, and the tunnel must stay
			// working through the clean-up of duplicates.
			pr.filter = nil
			broken := false
			pr.net.Tap = func(ike.Datagram) {
				pr.delivered++
				if !pr.working() {
					broken = true
				}
			}
			pr.advance(2*time.Minute, time.Second)
			if broken || !pr.working() {
				t.Fatalf("tunnel stopped working after it converged: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
			}
			if na, nb := len(pr.a.sink.Installed()), len(pr.b.sink.Installed()); na != 1 || nb != 1 {
				t.Fatalf("duplicate CHILD SA pairs left: A %d, B %d (A %s, B %s)", na, nb, pr.a.sink.counts(), pr.b.sink.counts())
			}
			// Quick Mode works over the phase-1 SAs that are left.
			if err := pr.a.eng.RekeyChild(pr.now(), "A"); err != nil {
				t.Fatal(err)
			}
			if err := pr.b.eng.RekeyChild(pr.now(), "B"); err != nil {
				t.Fatal(err)
			}
			if !pr.until(time.Minute, func() bool { return pr.working() && len(pr.a.sink.rekeyedPairs()) > 0 }) {
				t.Fatalf("no rekey: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
			}
			na, _ := currentPair(pr.a.sink)
			nb, _ := currentPair(pr.b.sink)
			checkMatched(t, na, nb)
		})
	}
}

// TestNoInitialContactWithChildSAs: CHILD SAs outlive their phase-1 SA in
// IKEv1. A new phase-1 SA negotiated while they exist carries no
// INITIAL-CONTACT, so the peer keeps them until the rekey replaces them
// (no gap in traffic).
func TestNoInitialContactWithChildSAs(t *testing.T) {
	pr := newSeededPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA), 3)
	pr.initiate(pr.a)
	if !pr.working() {
		t.Fatal("not established")
	}
	// The phase-1 SA goes (both ends), the CHILD SA stays.
	for _, p := range pr.a.eng.phase1sOf(pr.a.eng.peers[0]) {
		p.delete(pr.now(), true, "test")
	}
	pr.pump()
	if len(pr.a.eng.IKESAs(pr.now())) != 0 || len(pr.b.eng.IKESAs(pr.now())) != 0 || !pr.working() {
		t.Fatal("phase-1 SAs not deleted, or the CHILD SA went with them")
	}
	if err := pr.a.eng.RekeyChild(pr.now(), "A"); err != nil {
		t.Fatal(err)
	}
	if !pr.until(time.Minute, func() bool { return len(pr.a.sink.rekeyedPairs()) == 1 && pr.working() }) {
		t.Fatalf("no rekey over a new phase-1 SA: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	// B replaced the pair before it deleted the old one.
	for _, ev := range pr.b.sink.Events() {
		if ev.Kind == "rekeyed" {
			break
		}
		if ev.Kind == "deleted" {
			t.Fatalf("B deleted the CHILD SA before its replacement existed: %s", pr.b.sink.counts())
		}
	}
}

// TestInitialContactSparesNegotiation: a phase-1 SA this end is
// negotiating, and the one INITIAL-CONTACT arrived on, survive it; an older
// established one (the peer lost it) does not.
func TestInitialContactSparesNegotiation(t *testing.T) {
	pr := newSeededPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA), 5)
	// B's Main Mode towards A stalls after its first message.
	pr.filter = func(_ int, d ike.Datagram) bool { return d.Local.Addr() != addrB || pr.b.sent > 1 }
	if err := pr.b.eng.Initiate(pr.now(), "B"); err != nil {
		t.Fatal(err)
	}
	pr.pump()
	pr.filter = nil
	pr.initiate(pr.a)
	var bInit, bResp int
	for _, st := range pr.b.eng.IKESAs(pr.now()) {
		switch st.Role {
		case ike.Initiator:
			bInit++
		case ike.Responder:
			if st.State == ike.StateEstablished {
				bResp++
			}
		}
	}
	if bInit != 1 || bResp != 1 {
		t.Fatalf("B's SAs after A's INITIAL-CONTACT: %d own negotiations, %d established responder SAs", bInit, bResp)
	}
	if !pr.until(time.Minute, pr.working) {
		t.Fatalf("no working pair: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
}

// TestSimultaneousLongRun: after a simultaneous start the ends keep one
// working pair through CHILD SA rekeys and phase-1 re-establishment (both
// phase-1 SAs reach their lifetime), with a bounded number of SAs.
func TestSimultaneousLongRun(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	for _, p := range []*Peer{&pa, &pb} {
		p.IKE = []Phase1Proposal{{Encryption: aesCBC(128), Hash: HashSHA256, Group: 19, Lifetime: 1200 * time.Second}}
		p.ESP = []Phase2Proposal{{Encryption: aesGCM(128), Lifetime: 500 * time.Second}}
		p.DPD = DPD{Mode: DPDOptimized, Interval: 10 * time.Second, Threshold: 3, Action: DPDRestart}
	}
	pr := newSeededPair(t, pa, pb, 11)
	if err := pr.a.eng.Initiate(pr.now(), "A"); err != nil {
		t.Fatal(err)
	}
	if err := pr.b.eng.Initiate(pr.now(), "B"); err != nil {
		t.Fatal(err)
	}
	if !pr.until(time.Minute, pr.working) {
		t.Fatal("no working pair")
	}
	maxP1, maxChild := 0, 0
	for i := 0; i < 4*3600/5; i++ {
		pr.advance(5*time.Second, 5*time.Second)
		for _, e := range []*end{pr.a, pr.b} {
			maxP1 = max(maxP1, len(e.eng.IKESAs(pr.now())))
			maxChild = max(maxChild, len(e.sink.Installed()))
		}
		// A rekey is make-before-break; between its messages the
		// initiator's new pair may be ahead of the responder's by one
		// exchange, never more than that.
		if !pr.working() && !pr.until(10*time.Second, pr.working) {
			t.Fatalf("tunnel stopped working at %v: A %s B %s", pr.now(), pr.a.sink.counts(), pr.b.sink.counts())
		}
	}
	if maxP1 > 3 || maxChild > 3 {
		t.Fatalf("up to %d phase-1 SAs and %d CHILD SA pairs at one end", maxP1, maxChild)
	}
	if n := len(pr.a.sink.rekeyedPairs()); n < 4*3600/500-2 {
		t.Fatalf("%d rekeys in 4 h of 500 s pairs", n)
	}
	if pr.a.sink.ikeUp() < 4 {
		t.Fatalf("phase 1 re-established %d times in 4 h of 1200 s SAs", pr.a.sink.ikeUp())
	}
	t.Logf("A: %s, %d phase-1 up reports; at most %d phase-1 SAs, %d pairs", pr.a.sink.counts(), pr.a.sink.ikeUp(), maxP1, maxChild)
}

// TestSimultaneousBothPhase1Usable: after a simultaneous start each end
// holds both phase-1 SAs, and a Quick Mode over either, from either end,
// brings up a working pair.
func TestSimultaneousBothPhase1Usable(t *testing.T) {
	pr := newSeededPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA), 13)
	for _, e := range []*end{pr.a, pr.b} {
		if err := e.eng.Initiate(pr.now(), e.name); err != nil {
			t.Fatal(err)
		}
	}
	if !pr.until(time.Minute, pr.working) {
		t.Fatal("no working pair")
	}
	for _, e := range []*end{pr.a, pr.b} {
		e.eng.mu.Lock()
		p1s := e.eng.phase1sOf(e.eng.peers[0])
		e.eng.mu.Unlock()
		if len(p1s) != 2 {
			t.Fatalf("%s holds %d phase-1 SAs, want both", e.name, len(p1s))
		}
		for _, p := range p1s {
			before := e.sink.Count("rekeyed")
			e.eng.mu.Lock()
			var cur *child
			for _, c := range e.eng.peers[0].children {
				if !c.replaced {
					cur = c
				}
			}
			p.startQuick(pr.now(), cur.proxyIdx, cur)
			e.eng.mu.Unlock()
			if !pr.until(time.Minute, func() bool { return e.sink.Count("rekeyed") > before && pr.working() }) {
				t.Fatalf("%s: Quick Mode over phase-1 SA %d (%v) did not bring up a working pair", e.name, p.index, p.role)
			}
			if sa, _ := currentPair(e.sink); sa.IKESA != p.index {
				t.Fatalf("%s: new pair negotiated over SA %d, want %d", e.name, sa.IKESA, p.index)
			}
		}
	}
}
