package sessionview_test

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/sessionview"
	"github.com/bpfvpn/bpfvpn/maps"
)

var cfg = maps.Config{ToTcpInit: 20, ToTcpEst: 1800, ToTcpClose: 2, ToUdp: 60, ToIcmp: 2, ToOther: 30}

func sessions() []maps.Session {
	a, b := netip.MustParseAddr("10.100.11.10"), netip.MustParseAddr("10.100.22.10")
	return []maps.Session{
		{Proto: 1, Src: a, Dst: b, SPort: 7, DPort: 7, Policy: 1, Packets: [2]uint64{1, 1}, Bytes: [2]uint64{84, 84},
			Key: maps.SessKey{Pa: 7, Pb: 7, Proto: 1, Family: 2}},
		{Proto: 6, Src: a, Dst: b, SPort: 51234, DPort: 22, Policy: 1, TCPState: maps.TCPEstablished, Idle: 2 * time.Second,
			Packets: [2]uint64{12, 10}, Bytes: [2]uint64{2140, 3312}, Key: maps.SessKey{Pa: 51234, Pb: 22, Proto: 6, Family: 2}},
		{Proto: 6, Src: a, Dst: b, SPort: 40000, DPort: 80, Policy: 1, TCPState: maps.TCPSynSent, Idle: time.Second,
			Key: maps.SessKey{Pa: 40000, Pb: 80, Proto: 6, Family: 2}},
		{Proto: 17, Src: a, Dst: b, SPort: 5000, DPort: 53, Policy: 1, Idle: 61 * time.Second,
			Key: maps.SessKey{Pa: 5000, Pb: 53, Proto: 17, Family: 2}},
	}
}

func TestFlowSessions(t *testing.T) {
	n := sessionview.Names{
		Policy:     func(uint32) (string, uint32) { return "VPN-OUT", 5 },
		Interfaces: func(maps.Session) (string, string) { return "ge-0/0/0.0", "st0.0" },
	}
	fs := sessionview.FlowSessions(sessions()[:2], cfg, n)
	out, err := ops.Render(fs, false)
	if err != nil {
		t.Fatal(err)
	}
	id0, id1 := sessionview.ID(sessions()[0].Key), sessionview.ID(sessions()[1].Key)
	want := "Session ID: " + strconv.FormatUint(id0, 10) + ", Policy name: VPN-OUT/5, Timeout: 2, Session State: Valid\n" +
		"  In: 10.100.11.10/7 --> 10.100.22.10/7;icmp, Conn Tag: 0x0, If: ge-0/0/0.0, Pkts: 1, Bytes: 84,\n" +
		"  Out: 10.100.22.10/7 --> 10.100.11.10/7;icmp, Conn Tag: 0x0, If: st0.0, Pkts: 1, Bytes: 84,\n\n" +
		"Session ID: " + strconv.FormatUint(id1, 10) + ", Policy name: VPN-OUT/5, Timeout: 1798, Session State: Valid\n" +
		"  In: 10.100.11.10/51234 --> 10.100.22.10/22;tcp, Conn Tag: 0x0, If: ge-0/0/0.0, Pkts: 12, Bytes: 2140,\n" +
		"  Out: 10.100.22.10/22 --> 10.100.11.10/51234;tcp, Conn Tag: 0x0, If: st0.0, Pkts: 10, Bytes: 3312,\n" +
		"Total sessions: 2\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if id0 == id1 || id0 != sessionview.ID(sessions()[0].Key) {
		t.Errorf("ids %d %d not distinct and stable", id0, id1)
	}
	expired := sessionview.FlowSessions(sessions()[3:], cfg, sessionview.Names{})
	if s := expired.Sessions[0]; s.Valid || s.TimeoutSeconds != 0 || s.PolicyName != "1" || s.In.Interface != "-" {
		t.Errorf("expired session %+v", s)
	}
}

func TestSummary(t *testing.T) {
	got := sessionview.Summary(sessions(), cfg, 524288)
	want := ops.FlowSessionSummary{Unicast: 4, InUse: 4, Valid: 2, Pending: 1, Invalidated: 1, Maximum: 524288}
	if got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}

// TestSelector: a filter typed from what `show security flow session`
// printed selects the session it was read from: the Session ID, and the
// addresses, ports and protocol of the In line.
func TestSelector(t *testing.T) {
	ss := sessions()
	shown := sessionview.FlowSessions(ss, cfg, sessionview.Names{})
	for i, fs := range shown.Sessions {
		proto, err := ops.ParseProtocol(fs.In.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		id, sp, dp := fs.ID, fs.In.Source.Port(), fs.In.Destination.Port()
		f := ops.SessionFilter{SourcePrefix: netip.PrefixFrom(fs.In.Source.Addr(), 32), DestinationPrefix: netip.PrefixFrom(fs.In.Destination.Addr(), 32),
			Protocol: &proto, SourcePort: &sp, DestinationPort: &dp, SessionID: &id}
		sel := sessionview.Selector(f, sessionview.Names{})
		for j, s := range ss {
			if got := sel(s); got != (i == j) {
				t.Errorf("filter of shown session %d selects session %d: %v", i, j, got)
			}
		}
		byID := sessionview.Selector(ops.SessionFilter{SessionID: &id}, sessionview.Names{})
		reversed := ops.SessionFilter{SourcePort: &dp, DestinationPort: &sp}
		if !byID(ss[i]) || (sp != dp && sessionview.Selector(reversed, sessionview.Names{})(ss[i])) {
			t.Errorf("session %d: selected by its id %v, by its reply direction's ports %v", i, byID(ss[i]), sessionview.Selector(reversed, sessionview.Names{})(ss[i]))
		}
	}
}
