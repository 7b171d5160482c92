package kernel

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// FromConfig compiles the kernel part of a configuration: st0 units (bound
// to the external interface of the gateway of the VPN that uses them),
// interface addresses, and static routes with their preferences as metrics.
// Notes lists what the configuration asks for that the kernel state does not
// carry (yet); the returned State is still usable.
func FromConfig(cfg *config.Config) (s State, notes []string) {
	bound := map[string]*config.VPN{} // st0 unit name -> VPN
	for _, v := range cfg.IPsec.VPNs {
		if v.BindInterface != "" {
			bound[v.BindInterface] = v
		}
	}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			if ifc.Tunnel {
				t := Tunnel{Unit: u.Number, MTU: u.MTU, RoutesWhenDown: true}
				if t.MTU == 0 {
					t.MTU = ifc.MTU
				}
				if len(u.Inet) > 0 {
					t.IPv4 = u.Inet[0]
				}
				if len(u.Inet6) > 0 {
					t.IPv6 = u.Inet6[0]
				}
				if v := bound[u.Name]; v != nil {
					// establish-tunnels on-traffic needs the route to draw
					// the first packet into st0; immediately withdraws it
					// while the tunnel is down so a backup route can win.
					t.RoutesWhenDown = !v.EstablishImmediately
					if v.Gateway != nil {
						t.Underlay = v.Gateway.ExternalLinux
					}
				}
				if u.Multipoint {
					var n []string
					t, n = multipoint(cfg, u, t)
					notes = append(notes, n...)
				}
				s.Tunnels = append(s.Tunnels, t)
				continue
			}
			if ifc.Disable || u.Disable {
				continue
			}
			if u.VLANID != 0 {
				notes = append(notes, fmt.Sprintf("%s: VLAN device %s must exist; bpfvpn does not create it", u.Name, u.LinuxName))
			}
			for _, p := range append(append([]netip.Prefix{}, u.Inet...), u.Inet6...) {
				s.Addresses = append(s.Addresses, Address{Link: u.LinuxName, Prefix: p})
			}
		}
	}
	for _, r := range cfg.Routes {
		if r.Discard || r.Reject {
			notes = append(notes, fmt.Sprintf("route %s: discard/reject routes are not installed yet", r.Prefix))
			continue
		}
		seen := map[uint32]bool{}
		for _, nh := range append(append([]config.NextHop{}, r.NextHops...), r.Qualified...) {
			rt := Route{Dst: r.Prefix.Masked(), Gateway: nh.Address.Unmap(), Dev: nh.LinuxName, Metric: uint32(nh.Preference)}
			if seen[rt.Metric] {
				notes = append(notes, fmt.Sprintf("route %s: next hop %s has the preference of an earlier one; only the first is installed (no ECMP yet)", r.Prefix, nextHopText(nh)))
				continue
			}
			seen[rt.Metric] = true
			s.Routes = append(s.Routes, rt)
		}
	}
	sort.SliceStable(s.Tunnels, func(i, j int) bool { return s.Tunnels[i].Unit < s.Tunnels[j].Unit })
	return s, notes
}

func nextHopText(nh config.NextHop) string {
	if nh.Address.IsValid() {
		return nh.Address.String()
	}
	return nh.Interface
}

// multipoint fills in the peers of multipoint unit u: one per VPN bound to
// it, with the next hop its next-hop-tunnel names.
func multipoint(cfg *config.Config, u *config.Unit, t Tunnel) (Tunnel, []string) {
	var notes []string
	vpns := cfg.VPNsBoundTo(u.Name)
	ids := peerIDs(vpns)
	t.Underlay, t.RoutesWhenDown = "", false
	underlays := map[string]bool{}
	for _, v := range vpns {
		if v.Gateway != nil {
			underlays[v.Gateway.ExternalLinux] = true
		}
		t.RoutesWhenDown = t.RoutesWhenDown || !v.EstablishImmediately
		var nh netip.Addr
		for _, x := range u.NextHopTunnels {
			if x.VPN == v.Name {
				nh = x.Address
			}
		}
		if !nh.IsValid() {
			notes = append(notes, fmt.Sprintf("%s: VPN %s has no next-hop-tunnel; learning the peer's address from its tunnel is not supported yet", u.Name, v.Name))
			continue
		}
		t.Peers = append(t.Peers, Peer{ID: ids[v.Name], NextHop: nh})
	}
	if len(underlays) == 1 {
		for k := range underlays {
			t.Underlay = k
		}
	}
	sort.Slice(t.Peers, func(i, j int) bool { return t.Peers[i].ID < t.Peers[j].ID })
	return t, notes
}

// peerIDs gives each VPN of a multipoint unit a peer id from a hash of its
// name (probing upward on collision, in name order), so that adding or
// removing another VPN rarely renumbers one.
func peerIDs(vpns []*config.VPN) map[string]int {
	names := make([]string, 0, len(vpns))
	for _, v := range vpns {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	taken := map[int]bool{}
	out := map[string]int{}
	for _, n := range names {
		h := fnv.New32a()
		h.Write([]byte(n))
		id := int(h.Sum32()%MaxPeer) + 1
		for i := 0; taken[id] && i < MaxPeer; i++ {
			id = id%MaxPeer + 1
		}
		taken[id] = true
		out[n] = id
	}
	return out
}

// VPNIfID is the if_id the IKE engine must put on the CHILD SAs of VPN vpn:
// its peer's on a multipoint unit, the unit's otherwise (0 if the VPN is not
// bound to an st0 unit).
func VPNIfID(cfg *config.Config, vpn string) uint32 {
	v := cfg.VPN(vpn)
	if v == nil {
		return 0
	}
	unit, ok := UnitOfLink(v.BindInterface)
	if !ok {
		return 0
	}
	if u := cfg.Unit(v.BindInterface); u != nil && u.Multipoint {
		return PeerIfID(unit, peerIDs(cfg.VPNsBoundTo(v.BindInterface))[vpn])
	}
	return IfID(unit)
}
