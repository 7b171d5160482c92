package ikev2

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

func wantNotify(t *testing.T, err error, n NotifyType, fromPeer bool) {
	t.Helper()
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Type != n || ne.FromPeer != fromPeer {
		t.Fatalf("got error %v, want %v (from peer %v)", err, n, fromPeer)
	}
}

func TestNoProposalChosen(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		b.IKEProposals = []IKEProposal{{Encryption: []suite.Encr{{ID: suite.EncrAESCBC, KeyBits: 128}}, Integrity: []suite.IntegID{suite.IntegHMACSHA2256128}, PRF: []suite.PRFID{suite.PRFHMACSHA2256}, DH: []suite.DHGroup{suite.MODP2048}}}
	}, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.run("failure", func() bool { return p.a.LastError("vpnA") != nil }, time.Minute)
	wantNotify(t, p.a.LastError("vpnA"), NO_PROPOSAL_CHOSEN, true)
	if len(p.a.IKESAs(p.now())) != 0 || len(p.b.IKESAs(p.now())) != 0 {
		t.Fatal("SAs left behind")
	}
	if st, ok := p.sinkA.LastIKE(); !ok || st.State != ike.StateDown || st.Reason == "" {
		t.Fatalf("failure not surfaced to the sink: %+v", st)
	}
}

func TestInvalidKEPayloadRetry(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		a.IKEProposals[0].DH = []suite.DHGroup{suite.Curve25519, suite.ECP256}
		b.IKEProposals[0].DH = []suite.DHGroup{suite.ECP256}
	}, nil)
	var keGroups []uint16
	p.net.Tap = func(d ike.Datagram) {
		if m, err := Decode(d.Data); err == nil && m.Exchange == IKE_SA_INIT && !m.IsResponse() {
			keGroups = append(keGroups, m.Find(PayloadKE).(*KE).Group)
		}
	}
	p.establish()
	if len(keGroups) != 2 || keGroups[0] != 31 || keGroups[1] != 19 {
		t.Fatalf("KE groups sent: %v", keGroups)
	}
	if st := p.a.IKESAs(p.now())[0]; st.DHGroup != "ECP-256" {
		t.Fatalf("group %s", st.DHGroup)
	}
}

func TestTSUnacceptable(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		a.LocalTS = []ike.TrafficSelector{ike.PrefixSelector(netip.MustParsePrefix("10.2.0.0/16"))}
		b.RemoteTS = []ike.TrafficSelector{ike.PrefixSelector(netip.MustParsePrefix("10.1.0.0/16"))}
	}, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.run("IKE up, child refused", func() bool { return p.a.LastError("vpnA") != nil && established(p.a, p.now()) == 1 }, time.Minute)
	wantNotify(t, p.a.LastError("vpnA"), TS_UNACCEPTABLE, true)
	wantNotify(t, p.b.LastError("vpnB"), TS_UNACCEPTABLE, false)
	if len(p.sinkA.Installed()) != 0 || len(p.sinkB.Installed()) != 0 {
		t.Fatal("child installed despite TS_UNACCEPTABLE")
	}
	if established(p.b, p.now()) != 1 {
		t.Fatal("IKE SA should stay up")
	}
}

func TestProxyIdentityNarrowing(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		b.RemoteTS = []ike.TrafficSelector{ike.PrefixSelector(netip.MustParsePrefix("10.1.0.0/16"))}
		b.LocalTS = []ike.TrafficSelector{ike.PrefixSelector(netip.MustParsePrefix("10.2.0.0/16"))}
	}, nil)
	p.establish()
	for _, sa := range p.sinkA.Installed() {
		if len(sa.LocalTS) != 1 || sa.LocalTS[0].String() != "10.1.0.0/16" || len(sa.RemoteTS) != 1 || sa.RemoteTS[0].String() != "10.2.0.0/16" {
			t.Fatalf("A selectors %v %v", sa.LocalTS, sa.RemoteTS)
		}
	}
	for _, sa := range p.sinkB.Installed() {
		if sa.LocalTS[0].String() != "10.2.0.0/16" || sa.RemoteTS[0].String() != "10.1.0.0/16" {
			t.Fatalf("B selectors %v %v", sa.LocalTS, sa.RemoteTS)
		}
	}
}

func TestAuthenticationFailed(t *testing.T) {
	p := newPair(t, func(a, b *Connection) { b.PSK = []byte("wrong") }, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.run("failure", func() bool { return p.a.LastError("vpnA") != nil }, time.Minute)
	wantNotify(t, p.a.LastError("vpnA"), AUTHENTICATION_FAILED, true)
	var ne *NotifyError
	if !errors.As(p.b.LastError("vpnB"), &ne) || ne.Type != AUTHENTICATION_FAILED {
		t.Fatalf("B: %v", p.b.LastError("vpnB"))
	}
	if len(p.a.IKESAs(p.now())) != 0 || len(p.b.IKESAs(p.now())) != 0 || p.b.HalfOpen() != 0 {
		t.Fatal("SAs left behind")
	}
}

func TestRemoteIdentityMismatch(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		a.RemoteID = ParseIdentity("other.example")
		b.LocalID = ParseIdentity("b.example")
	}, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.run("failure", func() bool { return p.a.LastError("vpnA") != nil }, time.Minute)
	if established(p.a, p.now()) != 0 {
		t.Fatal("established with the wrong peer identity")
	}
	// The responder learns it through an INFORMATIONAL AUTHENTICATION_FAILED.
	p.run("responder drops its SA", func() bool { return len(p.b.IKESAs(p.now())) == 0 }, time.Minute)
	wantNotify(t, p.b.LastError("vpnB"), AUTHENTICATION_FAILED, true)
}

func TestIdentityTypes(t *testing.T) {
	a6, b6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	cases := []struct{ local, remote string }{
		{"a.example.net", "b.example.net"},
		{"alice@example.net", "bob@example.net"},
		{"192.0.2.1", "198.51.100.2"},
		{"2001:db8::a", "2001:db8::b"},
	}
	for _, c := range cases {
		t.Run(c.local, func(t *testing.T) {
			p := newPair(t, func(a, b *Connection) {
				a.LocalID, a.RemoteID = ParseIdentity(c.local), ParseIdentity(c.remote)
				b.LocalID, b.RemoteID = ParseIdentity(c.remote), ParseIdentity(c.local)
			}, nil)
			p.establish()
			if got := p.b.IKESAs(p.now())[0].RemoteID; got != c.local {
				t.Fatalf("B sees peer %q", got)
			}
		})
	}
	t.Run("ipv6-endpoints", func(t *testing.T) {
		p := newPair(t, func(a, b *Connection) {
			*a = baseConn("vpnA", a6, b6)
			*b = baseConn("vpnB", b6, a6)
		}, nil)
		p.net.Attach(a6, p.a)
		p.net.Attach(b6, p.b)
		p.establish()
		for _, sa := range p.sinkA.Installed() {
			if sa.Local != a6 || sa.Remote != b6 {
				t.Fatalf("addresses %v %v", sa.Local, sa.Remote)
			}
		}
	})
}

func TestChildless(t *testing.T) {
	p := newPair(t, func(a, b *Connection) { a.Childless = true }, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.run("IKE up", func() bool { return established(p.a, p.now()) == 1 && established(p.b, p.now()) == 1 }, time.Minute)
	p.net.Settle(10)
	if len(p.sinkA.Installed()) != 0 || len(p.sinkB.Installed()) != 0 {
		t.Fatal("children installed")
	}
	// A CHILD SA can still be added later.
	if err := p.a.CreateChild(p.now(), "vpnA"); err != nil {
		t.Fatal(err)
	}
	p.run("child", func() bool { return len(p.sinkA.Installed()) == 1 && len(p.sinkB.Installed()) == 1 }, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 1)
}

func TestTerminateDeletesBothSides(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	p.a.Terminate(p.now(), "vpnA")
	p.run("down", func() bool { return len(p.a.IKESAs(p.now())) == 0 && len(p.b.IKESAs(p.now())) == 0 }, time.Minute)
	if len(p.sinkA.Installed()) != 0 || len(p.sinkB.Installed()) != 0 || p.sinkB.Count("deleted") != 1 {
		t.Fatal("children not deleted")
	}
}

func TestCreateAdditionalChildWithPFS(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		for _, c := range []*Connection{a, b} {
			c.ChildProposals[0].DH = []suite.DHGroup{suite.Curve25519}
		}
	}, nil)
	p.establish()
	p.a.CreateChild(p.now(), "vpnA")
	p.run("2 children", func() bool { return len(p.sinkA.Installed()) == 2 && len(p.sinkB.Installed()) == 2 }, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 2)
	n := 0
	for _, sa := range p.sinkA.Installed() {
		if sa.PFSGroup == suite.Curve25519 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d children with PFS, want 1 (the initial one has none)", n)
	}
}

// TestInitialContactReplacesOldSAs: A restarts (a new engine on the same
// address) and connects again; B drops the stale IKE and CHILD SAs.
func TestInitialContactReplacesOldSAs(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	a2, err := New(Config{Sender: p.net, Sink: iketest.NewSink(), Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a2.AddConnection(p.connA)
	p.net.Attach(addrA, a2)
	a2.Initiate(p.now(), "vpnA")
	p.run("old SA replaced", func() bool {
		sas := p.b.IKESAs(p.now())
		return len(sas) == 1 && sas[0].State == ike.StateEstablished && len(p.sinkB.Installed()) == 1 && p.sinkB.Count("deleted") == 1
	}, time.Minute)
}

// TestSimultaneousInitiation: both ends start at once; neither drops the
// other's SA through INITIAL_CONTACT, and both hold the same SAs.
func TestSimultaneousInitiation(t *testing.T) {
	p := newPair(t, nil, nil)
	p.a.Initiate(p.now(), "vpnA")
	p.b.Initiate(p.now(), "vpnB")
	p.run("both up", func() bool {
		return established(p.a, p.now()) == 2 && established(p.b, p.now()) == 2 && p.quiet() &&
			len(p.sinkA.Installed()) == 2 && len(p.sinkB.Installed()) == 2
	}, time.Minute)
	checkChildrenMatch(t, p.sinkA, p.sinkB, 2)
}

func TestESNNegotiation(t *testing.T) {
	p := newPair(t, func(a, b *Connection) {
		a.ChildProposals[0].ESN = []suite.ESNID{suite.ESNYes, suite.ESNNo}
		b.ChildProposals[0].ESN = []suite.ESNID{suite.ESNYes}
		b.ReplayWindow = 128
	}, nil)
	p.establish()
	for _, sa := range p.sinkB.Installed() {
		if !sa.ESN || sa.ReplayWindow != 128 {
			t.Fatalf("B: ESN %v window %d", sa.ESN, sa.ReplayWindow)
		}
	}
	for _, sa := range p.sinkA.Installed() {
		if !sa.ESN {
			t.Fatal("A: ESN not negotiated")
		}
	}
}
