package dataplane_test

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// plainSpec is baseSpec with no redirect-capable port: session hits of
// untagged IPv4 TCP/UDP take xdp_zone's fast path.
func plainSpec() *dataplane.Spec {
	s := baseSpec()
	for i := range s.Interfaces {
		s.Interfaces[i].Redirect = false
	}
	return s
}

// findSession returns the session whose initiator side is (src, sport).
func findSession(t *testing.T, f *progFixture, proto uint8, src string, sport uint16) (maps.Session, bool) {
	t.Helper()
	ss, err := f.m.ListSessions(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Proto == proto && s.Src == addr(src) && s.SPort == sport {
			return s, true
		}
	}
	return maps.Session{}, false
}

func TestProgSessionFastPath(t *testing.T) {
	f := newProgFixture(t)
	c := f.apply(t, plainSpec())
	out := tcp("10.1.0.2", "10.2.0.2", 4000, 80, tp.ACK)
	f.runCases(t, []pcase{
		{name: "SYN opens the session", pkt: tcp("10.1.0.2", "10.2.0.2", 4000, 80, tp.SYN), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "SYN-ACK", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 4000, tp.SYN|tp.ACK), want: xdpPass},
		{name: "ACK establishes", pkt: out, want: xdpPass},
		{name: "UDP opens", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
	})
	s, ok := findSession(t, f, tp.TCP, "10.1.0.2", 4000)
	if !ok || s.TCPState != maps.TCPEstablished {
		t.Fatalf("session %+v (found %v), want established", s, ok)
	}
	untrust := c.ZoneIDs["untrust"]
	zs0, err := f.m.ReadZoneStats(untrust)
	if err != nil {
		t.Fatal(err)
	}
	hits := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT)
	pkts := f.counter(t, loader.BpfvpnCounterIdCNT_PKTS)
	ack := out
	ack.Payload = make([]byte, 100)
	f.runCases(t, []pcase{
		{name: "ACK with data (fast path)", pkt: ack, want: xdpPass},
		{name: "reply ACK (fast path)", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 4000, tp.ACK), want: xdpPass},
		{name: "UDP reply (fast path)", iface: "untr0", pkt: udp("10.2.0.2", "10.1.0.2", 53, 5353), want: xdpPass},
	})
	if d := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT) - hits; d != 3 {
		t.Errorf("session hits grew by %d, want 3", d)
	}
	if d := f.counter(t, loader.BpfvpnCounterIdCNT_PKTS) - pkts; d != 3 {
		t.Errorf("packets grew by %d, want 3", d)
	}
	s2, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4000)
	if s2.Packets[0]-s.Packets[0] != 1 || s2.Packets[1]-s.Packets[1] != 1 {
		t.Errorf("packets %v → %v, want one more each way", s.Packets, s2.Packets)
	}
	if d := s2.Bytes[0] - s.Bytes[0]; d != 20+20+100 {
		t.Errorf("initiator bytes grew by %d, want 140 (IP total length)", d)
	}
	zs1, _ := f.m.ReadZoneStats(untrust)
	if zs1.TxPkts-zs0.TxPkts != 1 || zs1.RxPkts-zs0.RxPkts != 2 {
		t.Errorf("untrust zone tx %d→%d rx %d→%d, want +1 tx, +2 rx", zs0.TxPkts, zs1.TxPkts, zs0.RxPkts, zs1.RxPkts)
	}
	f.runCases(t, []pcase{{name: "FIN (fast path) closes the TCP state", pkt: tcp("10.1.0.2", "10.2.0.2", 4000, 80, tp.FIN|tp.ACK), want: xdpPass}})
	if s3, _ := findSession(t, f, tp.TCP, "10.1.0.2", 4000); s3.TCPState != maps.TCPClosing {
		t.Errorf("TCP state after FIN %d, want closing", s3.TCPState)
	}
}

// TestProgSessionRecheck: a commit that no longer permits a session closes
// it on its next packet in either direction (dropped, entry removed); a
// session still permitted is re-checked once and then hits without a
// policy lookup.
func TestProgSessionRecheck(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		name := "plain ports (fast path)"
		if redirect {
			name = "redirect ports"
		}
		t.Run(name, func(t *testing.T) {
			f := newProgFixture(t)
			spec := plainSpec
			want := uint32(xdpPass)
			if redirect {
				spec, want = baseSpec, xdpRedirect
			}
			f.apply(t, spec())
			for _, sp := range []uint16{3000, 3003} {
				f.runCases(t, []pcase{{name: "http session", pkt: tcp("10.1.0.2", "10.2.0.2", sp, 80, tp.SYN), want: want}})
			}
			f.runCases(t, []pcase{{name: "ssh session", pkt: tcp("10.1.0.2", "10.2.0.2", 3001, 22, tp.SYN), want: want},
				{name: "ssh established", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 22, 3001, tp.SYN|tp.ACK), want: want},
				{name: "ssh ACK", pkt: tcp("10.1.0.2", "10.2.0.2", 3001, 22, tp.ACK), want: want}})

			s := spec()
			s.Policies[2].Apps = []dataplane.AppTerm{appSSH} // http no longer permitted
			c := f.apply(t, s)
			f.runCases(t, []pcase{
				{name: "closed by its reply", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 3000, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED},
				{name: "closed by its initiator", pkt: tcp("10.1.0.2", "10.2.0.2", 3003, 80, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED},
			})
			for _, sp := range []uint16{3000, 3003} {
				if s, ok := findSession(t, f, tp.TCP, "10.1.0.2", sp); ok {
					t.Errorf("closed session %d still in the table: %+v", sp, s)
				}
				f.runCases(t, []pcase{
					{name: "closed: initiator side dropped", pkt: tcp("10.1.0.2", "10.2.0.2", sp, 80, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
					{name: "closed: reply side dropped", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, sp, tp.ACK), want: xdpDrop},
				})
			}

			rechecks := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_RECHECK)
			f.runCases(t, []pcase{{name: "ssh re-checked once", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 22, 3001, tp.ACK), want: want}})
			if d := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_RECHECK) - rechecks; d != 1 {
				t.Fatalf("first ssh packet after the commit: %d re-checks, want 1", d)
			}
			if ss, _ := findSession(t, f, tp.TCP, "10.1.0.2", 3001); ss.Generation != c.Gen {
				t.Errorf("ssh session generation %d, want %d", ss.Generation, c.Gen)
			}
			hits := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT)
			for i := 0; i < 3; i++ {
				f.runCases(t, []pcase{{name: "ssh after the re-check", pkt: tcp("10.1.0.2", "10.2.0.2", 3001, 22, tp.ACK), want: want}})
			}
			if d := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_RECHECK) - rechecks; d != 1 {
				t.Errorf("%d re-checks after 4 ssh packets, want 1", d)
			}
			if d := f.counter(t, loader.BpfvpnCounterIdCNT_SESSION_HIT) - hits; d != 3 {
				t.Errorf("%d hits, want 3", d)
			}
		})
	}
}

// TestSweepSessions: after a commit, the Go-side sweep removes exactly the
// sessions the new generation no longer permits (IPv4 and IPv6), leaves the
// others to pass, and honours default-policy permit-all.
func TestSweepSessions(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, plainSpec())
	f.runCases(t, []pcase{
		{name: "http", pkt: tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.SYN), want: xdpPass},
		{name: "ssh", pkt: tcp("10.1.0.2", "10.2.0.2", 3001, 22, tp.SYN), want: xdpPass},
		{name: "dns", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 53), want: xdpPass},
		{name: "http v6", pkt: tcp("2001:db8:1::2", "2001:db8:2::2", 3002, 80, tp.SYN), want: xdpPass},
		{name: "vpn-out", pkt: tcp("10.1.0.2", "10.3.0.2", 3003, 80, tp.SYN), want: xdpPass},
	})
	if n, err := dataplane.SweepSessions(f.m); err != nil || n != 0 {
		t.Fatalf("sweep without a new generation removed %d (%v), want 0", n, err)
	}

	s := plainSpec()
	s.Policies[2].Apps = []dataplane.AppTerm{appSSH, appDNS} // http no longer permitted trust→untrust
	f.apply(t, s)
	n, err := dataplane.SweepSessions(f.m)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("sweep removed %d sessions, want 2 (http over IPv4 and IPv6)", n)
	}
	for _, c := range []struct {
		proto uint8
		src   string
		sport uint16
		want  bool
	}{{tp.TCP, "10.1.0.2", 3000, false}, {tp.TCP, "2001:db8:1::2", 3002, false},
		{tp.TCP, "10.1.0.2", 3001, true}, {tp.UDP, "10.1.0.2", 5353, true}, {tp.TCP, "10.1.0.2", 3003, true}} {
		if _, ok := findSession(t, f, c.proto, c.src, c.sport); ok != c.want {
			t.Errorf("session %s:%d present %v after the sweep, want %v", c.src, c.sport, ok, c.want)
		}
	}
	f.runCases(t, []pcase{
		{name: "swept http reply dropped", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 3000, tp.ACK), want: xdpDrop},
		{name: "kept ssh passes", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 22, 3001, tp.SYN|tp.ACK), want: xdpPass},
	})

	// default-policy permit-all keeps a session no policy names
	f.runCases(t, []pcase{{name: "ssh 2", pkt: tcp("10.1.0.2", "10.2.0.2", 3004, 22, tp.SYN), want: xdpPass}})
	s2 := plainSpec()
	s2.Policies[2].Apps = []dataplane.AppTerm{appDNS}
	s2.DefaultPermit = true
	f.apply(t, s2)
	if n, err := dataplane.SweepSessions(f.m); err != nil || n != 0 {
		t.Errorf("sweep under default permit-all removed %d (%v), want 0", n, err)
	}
}

// TestProgFastPathFallsThrough: on plain ports, session hits the fast path
// must not decide are judged by the general path: a first fragment is
// remembered for its later fragments, a retransmitted SYN into the tunnel
// is clamped, ICMP and IPv6 hits pass.
func TestProgFastPathFallsThrough(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, plainSpec())
	first := udp("10.1.0.2", "10.2.0.2", 5353, 53)
	first.MoreFrags, first.FragID = true, 777
	later := tp.Packet{Src: addr("10.1.0.2"), Dst: addr("10.2.0.2"), Proto: tp.UDP, FragOffset: 2, FragID: 777, L4Raw: make([]byte, 16)}
	clamped := func(t *testing.T, d *tp.Decoded) {
		t.Helper()
		if d.MSS != 1350 || !d.ChecksumsOK {
			t.Errorf("MSS %d (want 1350), checksums ok %v", d.MSS, d.ChecksumsOK)
		}
	}
	f.runCases(t, []pcase{
		{name: "UDP session", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "first fragment of the session", pkt: first, want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
		{name: "its later fragment follows", pkt: later, want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_FRAG_FOLLOWED},
		{name: "SYN into the tunnel", pkt: tcp("10.1.0.2", "10.3.0.5", 2000, 443, tp.SYN, mss(1460)...), want: xdpPass, check: clamped},
		{name: "retransmitted SYN hits the session, clamped", pkt: tcp("10.1.0.2", "10.3.0.5", 2000, 443, tp.SYN, mss(1460)...), want: xdpPass,
			check: clamped, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
		{name: "ICMP echo", pkt: icmp("10.1.0.2", "10.2.0.2", 8, 9), want: xdpPass},
		{name: "ICMP echo reply hits", iface: "untr0", pkt: icmp("10.2.0.2", "10.1.0.2", 0, 9), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
		{name: "IPv6 SYN", pkt: tcp("2001:db8:1::2", "2001:db8:2::2", 1234, 80, tp.SYN), want: xdpPass},
		{name: "IPv6 reply hits", iface: "untr0", pkt: tcp("2001:db8:2::2", "2001:db8:1::2", 80, 1234, tp.SYN|tp.ACK), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
		{name: "ACK without a session dropped", pkt: tcp("10.1.0.2", "10.2.0.2", 1, 80, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
	})
}

// TestProgSessionRecheckTwoCommits: a session idle while two commits
// switch the policy tables back to the half it was checked against is
// still re-checked against the newest policies.
func TestProgSessionRecheckTwoCommits(t *testing.T) {
	f := newProgFixture(t)
	c0 := f.apply(t, plainSpec())
	f.establish(t, 3100, 80, xdpPass)
	deny := plainSpec()
	deny.Policies[2].Apps = []dataplane.AppTerm{appSSH}
	c1 := f.apply(t, deny)
	c2 := f.apply(t, deny)
	if c2.Gen&1 != c0.Gen&1 || c1.Gen == c0.Gen || c2.Gen == c0.Gen {
		t.Fatalf("generations %d, %d, %d: want the first and the third on the same half, all distinct", c0.Gen, c1.Gen, c2.Gen)
	}
	f.runCases(t, []pcase{{name: "http after two commits that deny it", pkt: tcp("10.1.0.2", "10.2.0.2", 3100, 80, tp.ACK), want: xdpDrop,
		cnt: loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED}})
}
