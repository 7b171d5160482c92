package ikev1

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// TestLossyPipe drops and reorders datagrams; retransmission with back-off
// and duplicate answers still bring the SAs up, on both ends identically.
func TestLossyPipe(t *testing.T) {
	for seed, drop := range []int{2, 3, 4, 5, 7} {
		for _, reorder := range []bool{false, true} {
			for _, aInit := range []bool{true, false} {
				pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
				pr.reorder = reorder
				// Drop 1 in drop datagrams, pseudo-randomly but reproducibly.
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(drop)))
				pr.filter = func(n int, d ike.Datagram) bool { return rng.IntN(drop) != 0 }
				init := pr.a
				if !aInit {
					init = pr.b
				}
				pr.initiate(init)
				ok := pr.until(2*time.Minute, func() bool {
					_, a := lastInstalled(pr.a.sink)
					_, b := lastInstalled(pr.b.sink)
					return a && b
				})
				if !ok {
					t.Fatalf("drop 1 in %d, reorder %v, A initiates %v: no CHILD SA: A %s B %s", drop, reorder, aInit, pr.a.sink.counts(), pr.b.sink.counts())
				}
				sa, _ := lastInstalled(pr.a.sink)
				sb, _ := lastInstalled(pr.b.sink)
				checkMatched(t, sa, sb)
				if len(pr.a.sink.installedSAs()) != 1 || len(pr.b.sink.installedSAs()) != 1 {
					t.Fatalf("drop %d: duplicates installed twice: A %s B %s", drop, pr.a.sink.counts(), pr.b.sink.counts())
				}
			}
		}
	}
}

// TestDuplicateDelivery delivers every datagram twice.
func TestDuplicateDelivery(t *testing.T) {
	pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
	pr.filter = func(n int, d ike.Datagram) bool {
		pr.deliver(d)
		return true
	}
	pr.initiate(pr.a)
	sa, ok := lastInstalled(pr.a.sink)
	sb, ok2 := lastInstalled(pr.b.sink)
	if !ok || !ok2 || len(pr.a.sink.installedSAs()) != 1 || len(pr.b.sink.installedSAs()) != 1 {
		t.Fatalf("A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	checkMatched(t, sa, sb)
}

func TestProposalMismatch(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pb.IKE = []Phase1Proposal{{Encryption: aesCBC(128), Hash: HashSHA1, Group: suite.MODP2048}}
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	// The responder's NO-PROPOSAL-CHOSEN ends the initiator's attempt.
	if n := len(pr.a.eng.IKESAs(pr.now())); n != 0 {
		t.Fatalf("%d phase-1 SAs left after NO-PROPOSAL-CHOSEN", n)
	}
	if pr.delivered != 2 {
		t.Fatalf("%d datagrams, want MM1 and the notify", pr.delivered)
	}
	// ESP mismatch: phase 1 comes up, Quick Mode is refused.
	pa = basePeer("A", addrA, addrB)
	pb = basePeer("B", addrB, addrA)
	pb.ESP = []Phase2Proposal{{Encryption: aesCBC(128), Integrity: suite.IntegHMACSHA196}}
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	if pr.a.sink.ikeUp() != 1 || len(pr.a.sink.installedSAs()) != 0 || len(pr.b.sink.installedSAs()) != 0 {
		t.Fatalf("ESP mismatch: A up=%d %s B %s", pr.a.sink.ikeUp(), pr.a.sink.counts(), pr.b.sink.counts())
	}
	// PFS mismatch is refused too.
	pa = basePeer("A", addrA, addrB)
	pb = basePeer("B", addrB, addrA)
	pb.PFS = suite.MODP2048
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	if len(pr.b.sink.installedSAs()) != 0 {
		t.Fatal("PFS mismatch accepted")
	}
}

func TestWrongPSK(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pb.PSK = []byte("another key")
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	pr.advance(2*time.Minute, time.Second)
	if pr.a.sink.ikeUp() != 0 || pr.b.sink.ikeUp() != 0 {
		t.Fatal("phase 1 came up with different PSKs")
	}
	for _, st := range append(pr.a.eng.IKESAs(pr.now()), pr.b.eng.IKESAs(pr.now())...) {
		if st.State == ike.StateEstablished {
			t.Fatalf("established phase-1 SA %+v", st)
		}
	}
	// The responder forgets the failed negotiation; the initiator keeps
	// retrying (the tunnel is to be kept up) with one SA at a time.
	if n := len(pr.b.eng.IKESAs(pr.now())); n > 1 {
		t.Fatalf("%d phase-1 SAs on the responder", n)
	}
	if n := len(pr.a.eng.IKESAs(pr.now())); n > 1 {
		t.Fatalf("%d phase-1 SAs on the initiator", n)
	}
}

func TestRemoteIDMismatch(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pb.RemoteID = &isakmp.ID{IDType: isakmp.IDFQDN, Data: []byte("srx1.example")}
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	if pr.b.sink.ikeUp() != 0 {
		t.Fatal("wrong peer identity accepted")
	}
	pa.LocalID = &isakmp.ID{IDType: isakmp.IDFQDN, Data: []byte("srx1.example")}
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	if pr.b.sink.ikeUp() != 1 {
		t.Fatal("configured FQDN identity refused")
	}
}

func TestAggressiveModeRefused(t *testing.T) {
	pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
	h := isakmp.Header{InitiatorCookie: [8]byte{1, 2, 3}, Exchange: isakmp.ExchangeAggressive}
	msg := isakmp.Encode(h, []isakmp.Payload{phase1SA([]Phase1Proposal{DefaultPhase1}), isakmp.KE(make([]byte, 64)), isakmp.Nonce(make([]byte, 16)),
		isakmp.AddrID(addrA)})
	var answers []ike.Datagram
	pr.net.Inject(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: msg})
	pr.filter = func(_ int, d ike.Datagram) bool {
		if d.Local.Addr() == addrB {
			answers = append(answers, d)
		}
		return d.Local.Addr() == addrA
	}
	pr.pump()
	if len(answers) != 1 {
		t.Fatalf("%d answers", len(answers))
	}
	m, err := isakmp.Parse(answers[0].Data)
	if err != nil || m.Header.Exchange != isakmp.ExchangeInformational || len(m.Payloads) != 1 {
		t.Fatalf("answer %v %+v", err, m.Header)
	}
	n, err := isakmp.ParseNotify(m.Payloads[0].Body)
	if err != nil || n.NotifyType != isakmp.NotifyNoProposalChosen {
		t.Fatalf("notify %v %v", n, err)
	}
	if len(pr.b.eng.IKESAs(pr.now())) != 0 {
		t.Fatal("Aggressive Mode created state")
	}
}

// TestDeadPeerDetection cuts the link after establishment: the DPD end
// declares the peer dead after threshold unanswered R-U-THEREs, clears
// its SAs and (action restart) tries again.
func TestDeadPeerDetection(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pa.DPD = DPD{Mode: DPDProbeIdle, Interval: 10 * time.Second, Threshold: 3, Action: DPDClear}
	pb := basePeer("B", addrB, addrA)
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	if len(pr.a.sink.installedSAs()) != 1 {
		t.Fatal("not established")
	}
	// While the peer answers, DPD never fires.
	pr.advance(2*time.Minute, time.Second)
	if len(pr.a.sink.deletedSAs()) != 0 {
		t.Fatalf("peer declared dead while answering: %s", pr.a.sink.counts())
	}
	probesBefore := pr.b.sent
	if probesBefore == 0 {
		t.Fatal("B never answered an R-U-THERE")
	}
	// Cut the link.
	pr.filter = func(int, ike.Datagram) bool { return false }
	ok := pr.until(5*time.Minute, func() bool { return len(pr.a.sink.deletedSAs()) == 1 })
	if !ok {
		t.Fatalf("peer not declared dead: %s", pr.a.sink.counts())
	}
	if n := len(pr.a.eng.IKESAs(pr.now())); n != 0 {
		t.Fatalf("%d phase-1 SAs after DPD clear", n)
	}
	// Restart: with the link back, the tunnel is negotiated again.
	pa.DPD.Action = DPDRestart
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	pr.filter = func(int, ike.Datagram) bool { return false }
	pr.until(5*time.Minute, func() bool { return len(pr.a.sink.deletedSAs()) == 1 })
	pr.filter = nil
	ok = pr.until(5*time.Minute, func() bool { return len(pr.a.sink.installedSAs()) == 2 })
	if !ok {
		t.Fatalf("no restart after DPD: %s", pr.a.sink.counts())
	}
}

// TestChildRekey runs past the soft lifetime: the initiator rekeys (make
// before break: ChildSARekeyed, then the old pair is deleted on both ends).
func TestChildRekey(t *testing.T) {
	for _, pfs := range []suite.DHGroup{suite.DHNone, suite.ECP256} {
		pa := basePeer("A", addrA, addrB)
		pb := basePeer("B", addrB, addrA)
		pa.PFS, pb.PFS = pfs, pfs
		pr := newPair(t, pa, pb)
		pr.initiate(pr.a)
		first, _ := lastInstalled(pr.a.sink)
		pr.advance(3600*time.Second-time.Second, 10*time.Second)
		if len(pr.a.sink.rekeyedPairs()) != 1 || len(pr.b.sink.rekeyedPairs()) != 1 {
			t.Fatalf("pfs %v: rekeys A %s B %s", pfs, pr.a.sink.counts(), pr.b.sink.counts())
		}
		if pr.a.sink.rekeyedPairs()[0][0].SPIIn != first.SPIIn {
			t.Fatal("rekey names the wrong old SA")
		}
		na, _ := lastInstalled(pr.a.sink)
		nb, _ := lastInstalled(pr.b.sink)
		checkMatched(t, na, nb)
		if len(pr.a.sink.deletedSAs()) != 1 || len(pr.b.sink.deletedSAs()) != 1 || pr.b.sink.deletedSAs()[0].SPIOut != first.SPIIn {
			t.Fatalf("old SA not deleted on both ends: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
		}
		if len(pr.a.eng.ChildSAs(pr.now())) != 1 || len(pr.b.eng.ChildSAs(pr.now())) != 1 {
			t.Fatal("stale CHILD SAs")
		}
		// And again: the rekeyed SA rekeys in turn.
		pr.advance(3600*time.Second, 10*time.Second)
		if len(pr.a.sink.rekeyedPairs()) != 2 || len(pr.b.sink.rekeyedPairs()) != 2 {
			t.Fatalf("second rekey: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
		}
	}
}

// TestPhase1Reestablish runs past the phase-1 lifetime: a new phase-1 SA
// replaces the old one before it expires, the CHILD SAs survive and keep
// rekeying through the new one.
func TestPhase1Reestablish(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pa.IKE = []Phase1Proposal{{Encryption: aesCBC(128), Hash: HashSHA256, Group: suite.ECP256, Lifetime: 600 * time.Second}}
	pb.IKE = pa.IKE
	pa.ESP = []Phase2Proposal{{Encryption: aesGCM(128), Lifetime: 900 * time.Second}}
	pb.ESP = pa.ESP
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	pr.advance(1000*time.Second, 5*time.Second)
	if up := pr.a.sink.ikeUp(); up < 2 {
		t.Fatalf("phase 1 not re-established (%d up reports)", up)
	}
	if n := len(pr.a.eng.IKESAs(pr.now())); n != 1 {
		t.Fatalf("%d phase-1 SAs on A", n)
	}
	if n := len(pr.b.eng.IKESAs(pr.now())); n != 1 {
		t.Fatalf("%d phase-1 SAs on B", n)
	}
	if len(pr.a.sink.rekeyedPairs()) != 1 || len(pr.a.eng.ChildSAs(pr.now())) != 1 {
		t.Fatalf("CHILD SA did not survive: %s", pr.a.sink.counts())
	}
}

func TestTerminateDeletesBothEnds(t *testing.T) {
	pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
	pr.initiate(pr.a)
	pr.a.eng.Terminate(pr.now(), "A")
	pr.pump()
	if len(pr.a.sink.deletedSAs()) != 1 || len(pr.b.sink.deletedSAs()) != 1 {
		t.Fatalf("A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	if len(pr.a.eng.IKESAs(pr.now())) != 0 || len(pr.b.eng.IKESAs(pr.now())) != 0 {
		t.Fatal("phase-1 SAs survive terminate")
	}
}

// TestResponderLifetime: the responder's shorter lifetime wins and is
// announced with RESPONDER-LIFETIME.
func TestResponderLifetime(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pb.ESP = []Phase2Proposal{{Encryption: aesGCM(256), Lifetime: 1200 * time.Second, LifeKilobytes: 5000}}
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	sa, _ := lastInstalled(pr.a.sink)
	sb, _ := lastInstalled(pr.b.sink)
	if sa.Lifetime.HardSeconds != 1200 || sb.Lifetime.HardSeconds != 1200 || sa.Lifetime.HardBytes != 5000*1024 {
		t.Fatalf("lifetimes A %+v B %+v", sa.Lifetime, sb.Lifetime)
	}
	// A shorter initiator lifetime wins silently.
	pa.ESP = []Phase2Proposal{{Encryption: aesGCM(256), Lifetime: 600 * time.Second}}
	pb = basePeer("B", addrB, addrA)
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	sb, _ = lastInstalled(pr.b.sink)
	if sb.Lifetime.HardSeconds != 600 {
		t.Fatalf("responder lifetime %+v", sb.Lifetime)
	}
}

func TestProxyIDs(t *testing.T) {
	lan1 := netip.MustParsePrefix("10.100.11.0/24")
	lan2 := netip.MustParsePrefix("10.100.22.0/24")
	pa := basePeer("A", addrA, addrB)
	pa.ProxyIDs = []ProxyID{{Local: lan1, Remote: lan2}}
	pb := basePeer("B", addrB, addrA) // 0.0.0.0/0 accepts the narrower pair
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	sa, ok := lastInstalled(pr.a.sink)
	sb, ok2 := lastInstalled(pr.b.sink)
	if !ok || !ok2 {
		t.Fatal("narrowed proxy IDs refused")
	}
	checkMatched(t, sa, sb)
	if sb.LocalTS[0].String() != "10.100.22.0/24" || sb.RemoteTS[0].String() != "10.100.11.0/24" {
		t.Fatalf("responder selectors %v %v", sb.LocalTS, sb.RemoteTS)
	}
	// A responder narrowed to other subnets refuses (proxy ID mismatch).
	pb.ProxyIDs = []ProxyID{{Local: netip.MustParsePrefix("10.9.0.0/16"), Remote: lan1}}
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	if len(pr.b.sink.installedSAs()) != 0 || len(pr.a.sink.installedSAs()) != 0 {
		t.Fatal("proxy ID mismatch accepted")
	}
	// Two proxy-ID pairs: two CHILD SAs under one phase-1 SA, with ports.
	pa.ProxyIDs = []ProxyID{{Local: lan1, Remote: lan2}, {Local: netip.MustParsePrefix("10.100.12.0/24"), Remote: lan2, Protocol: 6, RemotePort: 443}}
	pb.ProxyIDs = nil
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	if len(pr.a.sink.installedSAs()) != 2 || len(pr.b.sink.installedSAs()) != 2 || pr.a.sink.ikeUp() != 1 {
		t.Fatalf("two proxy IDs: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	// IPv6 proxy IDs.
	pa.ProxyIDs = []ProxyID{{Local: netip.MustParsePrefix("::/0"), Remote: netip.MustParsePrefix("::/0")}}
	pb.ProxyIDs = pa.ProxyIDs
	pr = newPair(t, pa, pb)
	pr.initiate(pr.a)
	sa, ok = lastInstalled(pr.a.sink)
	if !ok || sa.LocalTS[0].String() != "::/0" {
		t.Fatalf("IPv6 proxy IDs: %v", sa.LocalTS)
	}
}

// TestNATTraversal puts A behind a NAT: both ends detect it, float to
// 4500, and the CHILD SA carries UDP encapsulation with the NAT's ports.
func TestNATTraversal(t *testing.T) {
	for _, aInit := range []bool{true, false} {
		priv := netip.MustParseAddr("192.168.1.2")
		pub := netip.MustParseAddr("203.0.113.7")
		pa := basePeer("A", priv, addrB)
		pb := basePeer("B", addrB, pub)
		if !aInit {
			// B cannot reach a NATed peer first unless the mapping exists:
			// let A open it, then B initiates Quick Mode over it.
			pb.Remote = netip.Addr{}
		}
		pr := newPair(t, pa, pb)
		pr.a.public = pub
		pr.natPorts = map[uint16]uint16{500: 31000, 4500: 31001}
		pr.initiate(pr.a)
		sa, ok := lastInstalled(pr.a.sink)
		sb, ok2 := lastInstalled(pr.b.sink)
		if !ok || !ok2 {
			t.Fatalf("no CHILD SA behind NAT: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
		}
		checkMatched(t, sa, sb)
		if sa.Encap == nil || sb.Encap == nil {
			t.Fatal("no UDP encapsulation behind NAT")
		}
		if *sa.Encap != (ike.UDPEncap{LocalPort: 4500, RemotePort: 4500, LocalBehindNAT: true}) {
			t.Fatalf("A encap %+v", *sa.Encap)
		}
		if *sb.Encap != (ike.UDPEncap{LocalPort: 4500, RemotePort: 31001, RemoteBehindNAT: true}) {
			t.Fatalf("B encap %+v", *sb.Encap)
		}
		if sb.Remote != pub {
			t.Fatalf("B's remote %v", sb.Remote)
		}
		// The NATed end keeps the mapping open with keepalives to 4500.
		keepalives := 0
		pr.filter = func(_ int, d ike.Datagram) bool {
			if len(d.Data) == 1 && d.Data[0] == 0xff && d.Local.Addr() == priv && d.Remote.Port() == 4500 {
				keepalives++
			}
			return true
		}
		pr.advance(61*time.Second, time.Second)
		pr.filter = nil
		if keepalives != 3 {
			t.Fatalf("%d NAT-T keepalives in 61 s, want 3", keepalives)
		}
		if !aInit {
			// DPD and rekeys keep working through the mapping.
			pr.advance(3600*time.Second, 10*time.Second)
			if len(pr.a.sink.rekeyedPairs()) != 1 {
				t.Fatalf("rekey behind NAT: %s", pr.a.sink.counts())
			}
		}
	}
}

// TestInitialContact: A restarts (new engine, same addresses) and sends
// INITIAL-CONTACT; B drops the stale SAs of the old A.
func TestInitialContact(t *testing.T) {
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pr := newPair(t, pa, pb)
	pr.initiate(pr.a)
	// A fresh A, as after a reboot, whose output goes into this pair.
	// A fresh A on the same address, as after a reboot.
	fresh := newPair(t, pa, pb).a
	fresh.eng.send = pr.net
	pr.net.Attach(addrA, fresh.eng)
	pr.a = fresh
	pr.initiate(pr.a)
	if len(pr.b.sink.deletedSAs()) != 1 {
		t.Fatalf("stale CHILD SA not removed after INITIAL-CONTACT: B %s", pr.b.sink.counts())
	}
	if n := len(pr.b.eng.IKESAs(pr.now())); n != 1 {
		t.Fatalf("B keeps %d phase-1 SAs", n)
	}
	if len(pr.b.eng.ChildSAs(pr.now())) != 1 {
		t.Fatal("B lost the new CHILD SA")
	}
}
