package topology

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// The hub's kernel state: st0.0 is multipoint with one peer per VPN, each
// bound to its next-hop-tunnel address, and the two VPNs' CHILD SAs get two
// distinct peer if_ids.
func TestHubKernelState(t *testing.T) {
	text, err := HubConfig(lab.SRX1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.ParseBytes("srx1.conf", []byte(text))
	if cfg == nil || diags.HasErrors() {
		t.Fatalf("hub config: %s", diags)
	}
	st, notes := kernel.FromConfig(cfg)
	if len(notes) != 0 {
		t.Errorf("notes: %q", notes)
	}
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(st.Tunnels) != 1 || len(st.Tunnels[0].Peers) != 2 {
		t.Fatalf("tunnels %+v: want st0.0 with two peers", st.Tunnels)
	}
	hops := map[netip.Addr]bool{}
	for _, p := range st.Tunnels[0].Peers {
		hops[p.NextHop] = true
	}
	if !hops[netip.MustParseAddr("10.100.200.2")] || !hops[netip.MustParseAddr("10.100.200.3")] {
		t.Errorf("peer next hops %v", hops)
	}
	a, b := kernel.VPNIfID(cfg, "VPN-to-Host2"), kernel.VPNIfID(cfg, "VPN-to-SRX3")
	ua, pa, oka := kernel.TunnelOfIfID(a)
	ub, pb, okb := kernel.TunnelOfIfID(b)
	if !oka || !okb || ua != 0 || ub != 0 || pa == 0 || pb == 0 || pa == pb {
		t.Errorf("if_ids %#x (st0.%d peer %d) and %#x (st0.%d peer %d): want two peers of st0.0", a, ua, pa, b, ub, pb)
	}
}
