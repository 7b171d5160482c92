package daemon

import (
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"fmt"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// bindTunnel gives the CHILD SAs of t the if_id of its tunnel in the kernel:
// on a multipoint st0 unit each VPN is a peer with its own if_id
// (kernel.VPNIfID), chosen for a packet by its next hop. The if_id is part
// of the fingerprint: a VPN whose peer id changes is restarted.
func bindTunnel(cfg *config.Config, t *Tunnel) {
	id := kernel.VPNIfID(cfg, t.VPN)
	if id == 0 || id == kernel.IfID(t.Unit) {
		return
	}
	if t.V2 != nil {
		t.V2.IfID = id
	}
	if t.V1 != nil {
		t.V1.IfID = id
	}
	t.Fingerprint += fmt.Sprintf(" if_id %#x", id)
}

// tunnelIfID is the if_id of t's CHILD SAs.
func tunnelIfID(t *Tunnel) uint32 {
	switch {
	case t.V2 != nil:
		return t.V2.IfID
	case t.V1 != nil:
		return t.V1.IfID
	}
	return kernel.IfID(t.Unit)
}

// peerInterfaces returns the hidden per-VPN xfrm interfaces of cfg's
// multipoint st0 units as data-plane interfaces of their unit's zone, so
// that traffic routed into a peer's tunnel or decrypted from it meets the
// zone policies of the unit (vpn -> vpn for spoke-to-spoke hairpins).
func peerInterfaces(st kernel.State, ifcs []dataplane.Interface) []dataplane.Interface {
	var out []dataplane.Interface
	for _, t := range st.Tunnels {
		if t.CollectMD {
			continue // no hidden interfaces
		}
		for _, ifc := range ifcs {
			if ifc.Name != kernel.LinkName(t.Unit) {
				continue
			}
			for _, p := range t.Peers {
				x := ifc
				x.Name, x.Tunnel = kernel.PeerLinkName(t.Unit, p.ID), true
				out = append(out, x)
			}
			break
		}
	}
	return out
}

// multipointOf says how st0 link l carries several tunnels: as a collect_md
// xfrm interface steered by next hop in BPF (if_id 0 is only possible
// there), or through hidden per-VPN interfaces l.pK (the kernel < 6.2
// fallback); "" for neither.
func multipointOf(l netlink.Link) string {
	x, ok := l.(*netlink.Xfrmi)
	if !ok {
		return ""
	}
	if x.Ifid == 0 {
		return "collect_md xfrm interface, tunnel chosen by next hop in BPF"
	}
	links, err := netlink.LinkList()
	if err != nil {
		return ""
	}
	var peers []string
	for _, p := range links {
		if n := p.Attrs().Name; strings.HasPrefix(n, x.Name+".p") {
			peers = append(peers, n)
		}
	}
	if len(peers) == 0 {
		return ""
	}
	sort.Strings(peers)
	return "one xfrm interface per VPN (" + strings.Join(peers, " ") + ")"
}
