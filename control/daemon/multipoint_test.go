package daemon

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

func hubKernelState() kernel.State {
	nh := netip.MustParseAddr
	return kernel.State{Tunnels: []kernel.Tunnel{
		{Unit: 0, Underlay: "eth1"},
		{Unit: 1, Underlay: "eth1", IPv4: netip.MustParsePrefix("10.0.0.1/24"), Peers: []kernel.Peer{{ID: 3, NextHop: nh("10.0.0.2")}, {ID: 9, NextHop: nh("10.0.0.3")}}},
		{Unit: 2, IPv4: netip.MustParsePrefix("10.0.1.1/24"), Peers: []kernel.Peer{{ID: 4, NextHop: nh("10.0.1.2")}}},
	}}
}

// Only the first multipoint unit can be the namespace's one collect_md
// xfrm interface; it loses its underlay. Without support nothing changes.
func TestMultipointMode(t *testing.T) {
	st := hubKernelState()
	multipointMode(&st, false)
	for _, tu := range st.Tunnels {
		if tu.CollectMD {
			t.Fatalf("st0.%d collect_md without support", tu.Unit)
		}
	}
	multipointMode(&st, true)
	if st.Tunnels[0].CollectMD || !st.Tunnels[1].CollectMD || st.Tunnels[1].Underlay != "" || st.Tunnels[2].CollectMD {
		t.Errorf("tunnels %+v: want st0.1 alone collect_md, without underlay", st.Tunnels)
	}
	if err := st.Validate(); err != nil {
		t.Error(err)
	}
}

// The hidden per-VPN interfaces join their unit's zone in the data plane;
// a collect_md unit has none.
func TestPeerInterfaces(t *testing.T) {
	st := hubKernelState()
	multipointMode(&st, true)
	ifcs := []dataplane.Interface{{Name: "st0.1", Zone: "vpn", Tunnel: true}, {Name: "st0.2", Zone: "hub2", Tunnel: true}, {Name: "eth0", Zone: "trust"}}
	got := peerInterfaces(st, ifcs)
	if len(got) != 1 || got[0].Name != "st0.2.p4" || got[0].Zone != "hub2" || !got[0].Tunnel {
		t.Errorf("peer interfaces %+v, want st0.2.p4 in zone hub2", got)
	}
	st = hubKernelState()
	if got := peerInterfaces(st, ifcs); len(got) != 3 {
		t.Errorf("without collect_md: %+v, want the three hidden interfaces", got)
	}
}
