package dataplane_test

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/sessionview"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// TestProgClearSessions: `clear security flow session` with a filter
// deletes exactly the selected sessions and counts them; the others keep
// passing on their sessions. The next packet of a cleared flow is judged
// as the first packet of a flow: a TCP segment that is not a SYN is
// dropped (drop-tcp-no-syn, the vendor's SYN check), while a SYN or a UDP
// datagram is looked up in the policies again (the policy's hit count
// grows) and opens a new session. A session that leaves the table between
// the listing and the delete is not counted.
func TestProgClearSessions(t *testing.T) {
	f := newProgFixture(t)
	c := f.apply(t, plainSpec())
	webOut := c.PolicyIndex["trust/untrust/web-out"]
	hits := func() uint64 {
		t.Helper()
		n, err := f.m.ReadPolicyHits(webOut)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.establish(t, 4001, 80, xdpPass)
	f.establish(t, 4002, 80, xdpPass)
	f.establish(t, 4003, 22, xdpPass)
	f.runCases(t, []pcase{
		{name: "UDP 6001", pkt: udp("10.1.0.2", "10.2.0.2", 6001, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "UDP 6002", pkt: udp("10.1.0.2", "10.2.0.2", 6002, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
	})
	clear := func(filter ops.SessionFilter, want int) {
		t.Helper()
		n, err := dataplane.ClearSessions(f.m, sessionview.Selector(filter, sessionview.Names{}))
		if err != nil || n != want {
			t.Fatalf("clear %+v: %d sessions (%v), want %d", filter, n, err, want)
		}
	}
	present := func(proto uint8, sport uint16, want bool) {
		t.Helper()
		if _, ok := findSession(t, f, proto, "10.1.0.2", sport); ok != want {
			t.Errorf("session from port %d in the table: %v, want %v", sport, ok, want)
		}
	}

	tcp80 := ops.SessionFilter{SourcePrefix: pfx("10.1.0.0/24"), Protocol: new(uint8(tp.TCP)), DestinationPort: new(uint16(80))}
	clear(tcp80, 2)
	present(tp.TCP, 4001, false)
	present(tp.TCP, 4002, false)
	present(tp.TCP, 4003, true)
	present(tp.UDP, 6001, true)
	present(tp.UDP, 6002, true)
	clear(tcp80, 0)

	h0 := hits()
	f.runCases(t, []pcase{
		{name: "ACK of a cleared flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4001, 80, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
		{name: "reply ACK of a cleared flow", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 4002, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
		{name: "RST of a cleared flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4002, 80, tp.RST), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
		{name: "ACK of a kept flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4003, 22, tp.ACK), want: xdpPass},
	})
	if d := hits() - h0; d != 0 {
		t.Errorf("policy hits grew by %d on packets that are no first packets", d)
	}
	present(tp.TCP, 4001, false)
	f.runCases(t, []pcase{{name: "SYN of a cleared flow", pkt: tcp("10.1.0.2", "10.2.0.2", 4001, 80, tp.SYN), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW}})
	if d := hits() - h0; d != 1 {
		t.Errorf("policy hits grew by %d on the SYN of a cleared flow, want 1 (a policy lookup)", d)
	}
	present(tp.TCP, 4001, true)

	s, _ := findSession(t, f, tp.UDP, "10.1.0.2", 6001)
	clear(ops.SessionFilter{SessionID: new(sessionview.ID(s.Key))}, 1)
	present(tp.UDP, 6001, false)
	present(tp.UDP, 6002, true)
	h1 := hits()
	f.runCases(t, []pcase{
		{name: "UDP of a cleared flow", pkt: udp("10.1.0.2", "10.2.0.2", 6001, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "UDP of a kept flow", pkt: udp("10.1.0.2", "10.2.0.2", 6002, 53), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
	})
	if d := hits() - h1; d != 1 {
		t.Errorf("policy hits grew by %d, want 1 (the cleared UDP flow's lookup only)", d)
	}

	// all: every session, less one that ends on its own meanwhile (as the
	// idle sweep or a closing packet would remove it)
	ss, err := f.m.ListSessions(0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := dataplane.ClearSessions(f.m, func(s maps.Session) bool {
		if s.Proto == tp.TCP && s.SPort == 4003 {
			if err := f.m.Sessions.Delete(&s.Key); err != nil {
				t.Fatal(err)
			}
		}
		return sessionview.Selector(ops.SessionFilter{}, sessionview.Names{})(s)
	})
	if err != nil || n != len(ss)-1 {
		t.Fatalf("clear all: %d sessions (%v), want %d of %d listed", n, err, len(ss)-1, len(ss))
	}
	if left, _ := f.m.ListSessions(0); len(left) != 0 {
		t.Errorf("sessions left after clear all: %+v", left)
	}
}
