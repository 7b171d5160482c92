package ikev1

import (
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// TestGatewayAPI drives an engine the way the gateway does: peers added
// and removed at run time, explicit rekeys, kernel byte-limit events and
// the last error for show output.
func TestGatewayAPI(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pb.ESP = []Phase2Proposal{{Encryption: aesCBC(128), Integrity: suite.IntegHMACSHA196}}
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	if err := pr.a.eng.LastError("A"); err == nil || !strings.Contains(err.Error(), "NO-PROPOSAL-CHOSEN") {
		t.Fatalf("last error after an ESP mismatch: %v", err)
	}
	if err := pr.b.eng.LastError("B"); err == nil || !strings.Contains(err.Error(), "no acceptable proposal") {
		t.Fatalf("responder's last error: %v", err)
	}
	// Fix B's configuration at run time; A's next attempt succeeds.
	pb.ESP = []Phase2Proposal{DefaultPhase2}
	if err := pr.b.eng.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if !pr.until(60e9, func() bool { return pr.a.sink.Count("installed") == 1 }) {
		t.Fatalf("no CHILD SA after the fix: %s", pr.a.sink.counts())
	}
	if err := pr.a.eng.LastError("A"); err != nil {
		t.Fatalf("last error survives success: %v", err)
	}
	if n := pr.a.eng.HalfOpen() + pr.b.eng.HalfOpen(); n != 0 {
		t.Fatalf("%d half-open SAs", n)
	}
	// Explicit rekey.
	if err := pr.a.eng.RekeyChild(pr.now(), "A"); err != nil {
		t.Fatal(err)
	}
	pr.pump()
	if pr.a.sink.Count("rekeyed") != 1 || pr.b.sink.Count("rekeyed") != 1 {
		t.Fatalf("explicit rekey: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	// The kernel's soft byte limit rekeys, the hard one deletes.
	cur, _ := lastInstalled(pr.a.sink)
	pr.a.eng.ChildExpired(pr.now(), cur.SPIIn, false)
	pr.pump()
	if pr.a.sink.Count("rekeyed") != 2 {
		t.Fatalf("soft expire: %s", pr.a.sink.counts())
	}
	cur, _ = lastInstalled(pr.a.sink)
	deleted := pr.b.sink.Count("deleted")
	pr.a.eng.ChildExpired(pr.now(), cur.SPIIn, true)
	pr.pump()
	if _, ok := pr.b.sink.Installed()[cur.SPIOut]; ok || pr.b.sink.Count("deleted") <= deleted {
		t.Fatalf("hard expire did not delete on the peer: B %s", pr.b.sink.counts())
	}
	// A keeps the tunnel up: a new CHILD SA follows.
	if !pr.until(60e9, func() bool { return len(pr.a.sink.Installed()) >= 1 && len(pr.b.sink.Installed()) >= 1 }) {
		t.Fatal("tunnel not re-established after the hard expire")
	}
	// Removing the gateway deletes everything on both ends.
	pr.advance(10e9, 1e9) // let the delayed deletes of rekeyed SAs pass
	pr.a.eng.RemovePeer(pr.now(), "A")
	pr.pump()
	if len(pr.a.sink.Installed()) != 0 || len(pr.b.sink.Installed()) != 0 {
		t.Fatalf("SAs left after RemovePeer: A %d B %d", len(pr.a.sink.Installed()), len(pr.b.sink.Installed()))
	}
	if err := pr.a.eng.Initiate(pr.now(), "A"); err == nil {
		t.Fatal("removed gateway still initiates")
	}
	if err := pr.a.eng.AddPeer(Peer{Name: "bad"}); err == nil {
		t.Fatal("invalid peer accepted")
	}
}
