package ikev1

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

type suiteCase struct {
	name string
	ike  []Phase1Proposal
	esp  []Phase2Proposal
	pfs  suite.DHGroup
}

func aesCBC(bits int) suite.Encr { return suite.Encr{ID: suite.EncrAESCBC, KeyBits: bits} }
func aesGCM(bits int) suite.Encr { return suite.Encr{ID: suite.EncrAESGCM16, KeyBits: bits} }

var tdes = suite.Encr{ID: suite.Encr3DES}

func suiteCases() []suiteCase {
	var cs []suiteCase
	cs = append(cs, suiteCase{name: "reference-defaults", ike: []Phase1Proposal{DefaultPhase1}, esp: []Phase2Proposal{DefaultPhase2}})
	cs = append(cs, suiteCase{name: "standard-set", ike: StandardPhase1, esp: StandardPhase2, pfs: StandardPFS})
	cs = append(cs, suiteCase{name: "aes256-sha256-g14",
		ike: []Phase1Proposal{{Encryption: aesCBC(256), Hash: HashSHA256, Group: suite.MODP2048}},
		esp: []Phase2Proposal{{Encryption: aesCBC(256), Integrity: suite.IntegHMACSHA2256128}}, pfs: suite.MODP2048})
	encs := []suite.Encr{aesCBC(128), aesCBC(256), tdes}
	hashes := []Hash{HashSHA1, HashSHA256, HashSHA384, HashSHA512}
	groups := []suite.DHGroup{suite.MODP2048, suite.MODP3072, suite.MODP4096, suite.ECP256, suite.ECP384, suite.ECP521, suite.MODP1024, suite.MODP1536}
	esps := []Phase2Proposal{
		{Encryption: aesCBC(128), Integrity: suite.IntegHMACSHA196},
		{Encryption: aesCBC(256), Integrity: suite.IntegHMACSHA2256128},
		{Encryption: aesCBC(256), Integrity: suite.IntegHMACSHA2384192},
		{Encryption: aesCBC(128), Integrity: suite.IntegHMACSHA2512256},
		{Encryption: aesGCM(128)},
		{Encryption: aesGCM(256)},
		{Encryption: tdes, Integrity: suite.IntegHMACSHA196},
	}
	// Every encryption and hash, every group, every ESP suite at least once.
	i := 0
	for _, e := range encs {
		for _, h := range hashes {
			g := groups[i%len(groups)]
			esp := esps[i%len(esps)]
			pfs := suite.DHNone
			if i%3 == 0 {
				pfs = groups[(i+3)%len(groups)]
			}
			cs = append(cs, suiteCase{name: fmt.Sprintf("%v-%v-%v-%v-pfs%d", e, h, g, esp, pfs),
				ike: []Phase1Proposal{{Encryption: e, Hash: h, Group: g}}, esp: []Phase2Proposal{esp}, pfs: pfs})
			i++
		}
	}
	return cs
}

// TestPairSuites establishes Main Mode and Quick Mode between two engines
// for every supported suite, each end as initiator once.
func TestPairSuites(t *testing.T) {
	for _, c := range suiteCases() {
		for _, aInit := range []bool{true, false} {
			name := c.name + "/A-initiates"
			if !aInit {
				name = c.name + "/B-initiates"
			}
			t.Run(name, func(t *testing.T) {
				pa := basePeer("A", addrA, addrB)
				pb := basePeer("B", addrB, addrA)
				for _, p := range []*Peer{&pa, &pb} {
					p.IKE, p.ESP, p.PFS = c.ike, c.esp, c.pfs
				}
				pr := newPair(t, pa, pb)
				init := pr.a
				if !aInit {
					init = pr.b
				}
				pr.initiate(init)
				sa, ok := lastInstalled(pr.a.sink)
				sb, ok2 := lastInstalled(pr.b.sink)
				if !ok || !ok2 {
					t.Fatalf("no CHILD SA: A %s, B %s", pr.a.sink.counts(), pr.b.sink.counts())
				}
				checkMatched(t, sa, sb)
				if sa.Encap != nil || sa.IKEVersion != 1 || sa.Name != "vpn-A" || sa.ReqID != 7 || sa.IfID != 1 {
					t.Fatalf("child SA metadata %+v", sa.WithoutKeys())
				}
				if sa.PFSGroup != c.pfs {
					t.Fatalf("PFS group %v, want %v", sa.PFSGroup, c.pfs)
				}
				if got := sa.LocalTS[0].String(); got != "0.0.0.0/0" {
					t.Fatalf("local selector %s", got)
				}
				if pr.a.sink.ikeUp() != 1 || pr.b.sink.ikeUp() != 1 {
					t.Fatalf("phase-1 up reports: A %d, B %d", pr.a.sink.ikeUp(), pr.b.sink.ikeUp())
				}
				// Exactly 9 messages: 6 Main Mode + 3 Quick Mode.
				if pr.delivered != 9 {
					t.Fatalf("%d datagrams, want 9", pr.delivered)
				}
			})
		}
	}
}

// TestPairStatus checks the show-level view of an established pair.
func TestPairStatus(t *testing.T) {
	pr := newPair(t, basePeer("A", addrA, addrB), basePeer("B", addrB, addrA))
	pr.initiate(pr.a)
	sts := pr.a.eng.IKESAs(pr.now())
	if len(sts) != 1 {
		t.Fatalf("%d IKE SAs", len(sts))
	}
	st := sts[0]
	if st.State != ike.StateEstablished || st.Mode != "Main" || st.Role != ike.Initiator || st.Encryption != "aes256-cbc" ||
		st.DHGroup != "DH-group-19" || st.PRF != "hmac-sha-256" || st.LifetimeSeconds != 28800 || st.RemoteID != "ipv4(any:0,172.16.23.1/32)" {
		t.Fatalf("status %+v", st)
	}
	// A sent MM1, MM3, MM5, QM1, QM3 and received MM2, MM4, MM6, QM2.
	if st.Stats.OutPackets != 5 || st.Stats.InPackets != 4 || st.Stats.InBytes == 0 || st.Stats.OutBytes == 0 {
		t.Fatalf("IKE traffic statistics %+v", st.Stats)
	}
	if sb := pr.b.eng.IKESAs(pr.now())[0].Stats; sb.InPackets != 5 || sb.OutPackets != 4 || sb.InBytes != st.Stats.OutBytes {
		t.Fatalf("responder statistics %+v vs %+v", sb, st.Stats)
	}
	cs := pr.b.eng.ChildSAs(pr.now().Add(10 * time.Second))
	if len(cs) != 1 || cs[0].RemainingSeconds != 3590 || cs[0].SA.In.Encryption != nil {
		t.Fatalf("child status %+v", cs)
	}
}

// TestPairIPv6 runs over IPv6 outer addresses with IPv6 proxy IDs.
func TestPairIPv6(t *testing.T) {
	a6 := netip.MustParseAddr("2001:db8:13::1")
	b6 := netip.MustParseAddr("2001:db8:23::1")
	pa := basePeer("A", a6, b6)
	pb := basePeer("B", b6, a6)
	six := []ProxyID{{Local: netip.MustParsePrefix("::/0"), Remote: netip.MustParsePrefix("::/0")}}
	pa.ProxyIDs, pb.ProxyIDs = six, six
	pr := newPair(t, pa, pb)
	pr.initiate(pr.b)
	sa, ok := lastInstalled(pr.a.sink)
	sb, ok2 := lastInstalled(pr.b.sink)
	if !ok || !ok2 {
		t.Fatalf("no CHILD SA over IPv6: A %s B %s", pr.a.sink.counts(), pr.b.sink.counts())
	}
	checkMatched(t, sa, sb)
	if sa.Local != a6 || sa.Remote != b6 || sa.LocalTS[0].String() != "::/0" {
		t.Fatalf("addresses %v %v %v", sa.Local, sa.Remote, sa.LocalTS)
	}
	if st := pr.a.eng.IKESAs(pr.now()); len(st) != 1 || st[0].RemoteID != "ipv6(any:0,2001:db8:23::1/128)" {
		t.Fatalf("status %+v", st)
	}
}
