package ops_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

func TestInactiveTunnels(t *testing.T) {
	p := opstest.Reference()
	if out := opstest.Run(t, p, "show security ipsec inactive-tunnels"); out != "  Total inactive tunnels: 0\n  Total inactive tunnels with establish immediately: 0\n" {
		t.Errorf("reference (tunnel up):\n%q", out)
	}
	p.Update(func(s *opstest.State, _ *error) {
		s.Inactive = ops.InactiveTunnels{Tunnels: []ops.InactiveTunnel{
			{ID: 131073, VPNName: "VPN-to-Host2", Interface: "st0.0", Port: 500, Gateway: netip.MustParseAddr("172.16.23.1"),
				Negotiations: 3, Failures: 2, Immediate: true, State: "retrying", DownReason: "IKE SA not established within 1m15s"},
			{ID: 131074, VPNName: "VPN-2", Interface: "st0.1", Port: 500, Gateway: netip.MustParseAddr("172.16.23.2"),
				State: "waiting for traffic"},
		}}
	})
	want := `  Total inactive tunnels: 2
  Total inactive tunnels with establish immediately: 1
  ID       Port  Nego#  Fail#  Flag  Gateway          Tunnel Down Reason
  131073   500   3      2      -     172.16.23.1      IKE SA not established within 1m15s
  131074   500   0      0      -     172.16.23.2      waiting for traffic
`
	if out := opstest.Run(t, p, "show security ipsec inactive-tunnels"); out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	out := opstest.Run(t, p, "sh sec ipsec inactive-tunnels index 131074 | display json")
	if !strings.Contains(out, `"vpn-name": "VPN-2"`) || strings.Contains(out, "VPN-to-Host2") || !strings.Contains(out, `"state": "waiting for traffic"`) {
		t.Errorf("index 131074 as JSON:\n%s", out)
	}
}
