package dataplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
	"github.com/bpfvpn/bpfvpn/vm"
)

// TestVMTunnelDemand: a real XFRM st0 with a route but no SA or policy (an
// on-traffic tunnel that is down): traffic routed into it raises a demand
// event from tc egress; once the tunnel is marked up, none.
func TestVMTunnelDemand(t *testing.T) {
	vm.RequireKernelIPsec(t)
	l := newLab(t)
	var st0 uint32
	inNS(t, l.rt, func() {
		if err := netlink.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "st0.0"}, Ifid: vmIfID}); err != nil {
			t.Fatal(err)
		}
		st0 = uint32(linkUp(t, "st0.0", "10.200.0.1/24", "10.201.0.0/24"))
	})
	spec := labSpec()
	spec.Zones = append(spec.Zones, dataplane.Zone{Name: "vpn"})
	spec.Interfaces = append(spec.Interfaces, dataplane.Interface{Name: "st0.0", Zone: "vpn"})
	spec.Policies = append(spec.Policies, dataplane.Policy{Name: "VPN-OUT", FromZone: "trust", ToZone: "vpn", Action: dataplane.Permit})
	var err error
	inNS(t, l.rt, func() {
		_, err = dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt", "rtu", "st0.0"}, Spec: spec})
	})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() { inNS(t, l.rt, func() { dataplane.Detach(l.instance, []string{"rtt", "rtu", "st0.0"}) }) })
	m, err := maps.OpenPinned(loader.InstanceDir(l.instance))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := dataplane.TunnelDemands(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := dataplane.SetTunnelState(m, st0, 0, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, l.th, "10.201.0.9"); err == nil {
		t.Fatal("ping into a tunnel without SAs was answered")
	}
	select {
	case d := <-events:
		if d.Ifindex != st0 || d.Unit != 0 || d.Proto != tp.ICMP || d.Dst != addr("10.201.0.9") || d.Src != addr("10.10.1.2") {
			t.Errorf("event %+v, want st0.0 (ifindex %d) 10.10.1.2 → 10.201.0.9 ICMP", d, st0)
		}
	case <-time.After(10 * time.Second):
		l.dump(t)
		t.Fatal("no tunnel demand event within 10 s")
	}
	if err := dataplane.SetTunnelState(m, st0, 0, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	var st maps.TunnelState
	if err := m.Tunnels.Lookup(st0, &st); err != nil {
		t.Fatal(err)
	}
	st.LastEventNs = 0 // outside any window: only the up flag keeps it quiet
	if err := m.Tunnels.Put(st0, st); err != nil {
		t.Fatal(err)
	}
	before := l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND)
	outBefore := l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT)
	ping(t, l.th, "10.201.0.9")
	if l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT) <= outBefore {
		t.Fatal("the ping did not reach tc egress on st0.0")
	}
	if d := l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_DEMAND) - before; d != 0 {
		t.Errorf("tunnel up: %d demand events", d)
	}
}
