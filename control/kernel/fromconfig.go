package kernel

import (
	"fmt"
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
					notes = append(notes, fmt.Sprintf("%s: multipoint is installed as a point-to-point unit", u.Name))
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
