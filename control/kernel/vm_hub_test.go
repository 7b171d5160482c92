package kernel

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
	"github.com/vishvananda/netlink"
)

// TestVMMultipointHub runs a hub with a multipoint st0.0 and two spokes
// (issue 8's hub and spoke on the per-peer-interface design): each spoke's
// traffic is chosen by next hop into its own tunnel, spokes reach the hub,
// and spoke-to-spoke traffic hairpins through the hub. A spoke's tunnel
// going down withdraws only its routes.
func TestVMMultipointHub(t *testing.T) {
	vm.RequireKernelIPsec(t)
	startVMTest(t)
	ctx := context.Background()
	hub := &vmSite{name: "hub", st0: ip("10.200.0.1"), lan: ip("10.20.0.1")}
	s1 := &vmSite{name: "spoke1", wan: ip("10.98.1.2"), st0: ip("10.200.0.2"), lan: ip("10.21.0.1")}
	s2 := &vmSite{name: "spoke2", wan: ip("10.98.2.2"), st0: ip("10.200.0.3"), lan: ip("10.23.0.1")}
	for _, s := range []*vmSite{hub, s1, s2} {
		ns, h := newAnonNetns(t)
		s.ns, s.h, s.r = ns, h, newReconcilerIn(t, ns)
	}
	// hub wan1 <-> spoke1 wan0, hub wan2 <-> spoke2 wan0
	for i, sp := range []*vmSite{s1, s2} {
		name := []string{"wan1", "wan2"}[i]
		if err := hub.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "wan0",
			PeerNamespace: netlink.NsFd(int(sp.ns))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		s     *vmSite
		links []string
	}{{hub, []string{"lo", "wan1", "wan2"}}, {s1, []string{"lo", "wan0"}}, {s2, []string{"lo", "wan0"}}} {
		for _, n := range x.links {
			l, err := x.s.h.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.s.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := lab.Do(hub.ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0)
	}); err != nil {
		t.Fatal(err)
	}
	hub.state = State{
		Tunnels: []Tunnel{{Unit: 0, IPv4: netip.PrefixFrom(hub.st0, 24), Peers: []Peer{
			{ID: 1, NextHop: s1.st0}, {ID: 2, NextHop: s2.st0}}}},
		Addresses: []Address{
			{Link: "wan1", Prefix: pfx("10.98.1.1/24")}, {Link: "wan2", Prefix: pfx("10.98.2.1/24")},
			{Link: "lo", Prefix: netip.PrefixFrom(hub.lan, 32)},
		},
		Routes: []Route{
			{Dst: pfx("10.21.0.0/24"), Gateway: s1.st0, Metric: 5},
			{Dst: pfx("10.23.0.0/24"), Gateway: s2.st0, Metric: 5},
		},
	}
	for _, sp := range []*vmSite{s1, s2} {
		sp.state = State{
			Tunnels: []Tunnel{{Unit: 0, Underlay: "wan0", IPv4: netip.PrefixFrom(sp.st0, 24)}},
			Addresses: []Address{
				{Link: "wan0", Prefix: netip.PrefixFrom(sp.wan, 24)},
				{Link: "lo", Prefix: netip.PrefixFrom(sp.lan, 32)},
			},
			Routes: []Route{
				{Dst: pfx("10.20.0.0/14"), Dev: "st0.0", Metric: 5}, // the hub's and the other spoke's LANs
			},
		}
	}
	for _, s := range []*vmSite{hub, s1, s2} {
		s.reconcile(t)
	}
	// One SA pair per spoke; on the hub, each goes to the spoke's peer.
	pairs := map[*vmSite][2]ChildSA{}
	for i, sp := range []*vmSite{s1, s2} {
		hub.wan = netip.MustParseAddr([]string{"10.98.1.1", "10.98.2.1"}[i])
		forHub, forSpoke := saPair(t, hub, sp, gcm256)
		forHub.Peer = i + 1
		install(t, sp, forSpoke)
		install(t, hub, forHub)
		pairs[sp] = [2]ChildSA{forHub, forSpoke}
	}
	if ch := hub.reconcile(t); len(ch) != 0 {
		t.Errorf("hub: second reconcile changed %q", strs(ch))
	}
	us, err := hub.r.Units()
	if err != nil || len(us) != 1 || len(us[0].Peers) != 2 || !us[0].Peers[0].TunnelUp || us[0].Peers[1].Name != "st0.0.p2" {
		t.Fatalf("hub units %+v, %v", us, err)
	}

	pingOK(t, s1, hub.lan)
	pingOK(t, s2, hub.lan)
	pingOK(t, hub, s2.lan)
	pingOK(t, s1, s2.lan) // spoke to spoke through the hub
	pingOK(t, s2, s1.lan)
	for _, sp := range []*vmSite{s1, s2} {
		if n := saPackets(t, hub, pairs[sp][0].InboundSPI); n < 9 {
			t.Errorf("hub's inbound SA from %s counted %d packets", sp.name, n)
		}
	}

	// Spoke 2's tunnel goes down: only its routes go.
	if _, err := hub.r.RemovePeerTunnel(ctx, 0, 2); err != nil {
		t.Fatal(err)
	}
	if hasRoute(t, hub, "10.23.0.0/24") || !hasRoute(t, hub, "10.21.0.0/24") {
		t.Error("peer 2 down: wrong routes")
	}
	pingOK(t, s1, hub.lan)
	if _, err := lab.Ping(s1.ns, s2.lan, 2, 20*time.Millisecond, 300*time.Millisecond); err == nil {
		t.Error("spoke 2 reachable with its tunnel down")
	}
	if sas, _ := hub.r.InstalledSAs(); len(sas) != 2 {
		t.Errorf("hub SAs after peer 2 went down: %+v", sas)
	}

	// A second reconciler on the hub adopts without changes.
	r2 := newReconcilerIn(t, hub.ns)
	if ch := mustReconcile(t, r2, hub.state); len(ch) != 0 {
		t.Errorf("second hub reconciler changed %q", strs(ch))
	}

	// The multipoint unit leaves the config: every peer interface, SA and
	// policy goes.
	s := hub.state
	s.Tunnels, s.Routes = nil, nil
	mustReconcile(t, r2, s)
	if us, _ := r2.Units(); len(us) != 0 {
		t.Errorf("units left: %+v", us)
	}
	if _, err := hub.h.LinkByName("st0.0.p1"); err == nil {
		t.Error("st0.0.p1 left")
	}
	if sas, pols, _ := r2.observeXfrm(); len(sas) != 0 || len(pols) != 0 {
		t.Errorf("%d SAs and %d policies left", len(sas), len(pols))
	}
}
