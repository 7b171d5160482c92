package ikev1

import (
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

// TestDPDOptimizedPeerAlive: optimized DPD sends R-U-THERE only when
// nothing came from the peer for an interval; ESP reported by the gateway
// (PeerAlive) counts, even when no IKE message arrives at all.
func TestDPDOptimizedPeerAlive(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pa.DPD = DPD{Mode: DPDOptimized, Interval: 10 * time.Second, Threshold: 3, Action: DPDClear}
	pr := newSeededPair(t, pa, basePeer("B", addrB, addrA), 9)
	pr.initiate(pr.a)
	if !pr.working() {
		t.Fatal("not established")
	}
	probes := 0
	// IKE from B is lost from now on; ESP still arrives (PeerAlive).
	pr.filter = func(_ int, d ike.Datagram) bool {
		if d.Local.Addr() == addrA && d.Data[18] == byte(isakmp.ExchangeInformational) {
			probes++
		}
		return d.Local.Addr() != addrB
	}
	for i := 0; i < 36; i++ {
		pr.a.eng.PeerAlive(pr.now(), "A")
		pr.advance(5*time.Second, time.Second)
	}
	if probes != 0 || len(pr.a.sink.deletedSAs()) != 0 {
		t.Fatalf("%d R-U-THERE and %d deletions while ESP arrived", probes, len(pr.a.sink.deletedSAs()))
	}
	// ESP stops too: probes, then the peer is dead.
	if !pr.until(2*time.Minute, func() bool { return len(pr.a.sink.deletedSAs()) == 1 }) {
		t.Fatalf("peer not declared dead once ESP stopped (%d probes)", probes)
	}
	if probes < pa.DPD.Threshold {
		t.Fatalf("declared dead after %d probes, threshold %d", probes, pa.DPD.Threshold)
	}
}
