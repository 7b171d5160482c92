package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// crossChecks are the rules that need more than one part of the tree.
func (c *compiler) crossChecks() {
	// st0 bindings: a point-to-point unit carries one VPN.
	bound := map[string]*VPN{}
	for _, v := range c.cfg.IPsec.VPNs {
		if v.BindInterface == "" {
			continue
		}
		u := c.units[v.BindInterface]
		if u == nil {
			continue
		}
		if prev, ok := bound[v.BindInterface]; ok && !u.Multipoint {
			c.d.errorf(c.vpnNodes[v].p, "ipsec vpn %s: %s is point-to-point and already bound to vpn %s (line %d); use another st0 unit or make it multipoint",
				v.Name, v.BindInterface, prev.Name, prev.Pos.Line)
			continue
		}
		bound[v.BindInterface] = v
		if u.Zone == "" {
			c.d.warnf(c.vpnNodes[v].p, "ipsec vpn %s: %s is in no security zone, so no traffic can be routed into the tunnel", v.Name, v.BindInterface)
		}
	}
	// Several route-based VPNs to one peer need distinct proxy identities.
	type peerKey struct {
		peer netip.Addr
		pi   string
	}
	seen := map[peerKey]*VPN{}
	for _, v := range c.cfg.IPsec.VPNs {
		if v.Gateway == nil || len(v.Gateway.Addresses) == 0 {
			continue
		}
		for _, peer := range v.Gateway.Addresses {
			k := peerKey{peer, fmt.Sprintf("%s|%s|%s", v.ProxyIdentity.Local, v.ProxyIdentity.Remote, v.ProxyIdentity.Service)}
			if prev, ok := seen[k]; ok {
				c.d.errorf(c.vpnNodes[v].p, "ipsec vpn %s: vpn %s (line %d) goes to the same peer %s with the same proxy-identity; give each VPN a distinct ike proxy-identity",
					v.Name, prev.Name, prev.Pos.Line, peer)
				break
			}
			seen[k] = v
		}
	}
	// Next-hop tunnel bindings name VPNs bound to the unit.
	for _, ifc := range c.cfg.Interfaces {
		for _, u := range ifc.Units {
			for _, nh := range u.NextHopTunnels {
				v := c.vpns[nh.VPN]
				switch {
				case v == nil:
					c.d.errorAt(nh.Pos, "%s: next-hop-tunnel %s: undefined ipsec vpn %s", u.Name, nh.Address, nh.VPN)
				case v.BindInterface != u.Name:
					c.d.errorAt(nh.Pos, "%s: next-hop-tunnel %s: vpn %s is bound to %s, not %s", u.Name, nh.Address, nh.VPN, v.BindInterface, u.Name)
				}
			}
		}
	}
	// IKE to the router is dropped unless the external interface admits it.
	for _, g := range c.cfg.IKE.Gateways {
		u := c.units[g.ExternalInterface]
		if u != nil && u.Zone != "" && !u.HostInbound.Allows("ike") {
			c.d.warnAt(g.Pos, "ike gateway %s: host-inbound-traffic of %s (zone %s) does not allow system-services ike, so IKE from the peer is dropped", g.Name, u.Name, u.Zone)
		}
	}
	// A route into an st0 unit without a VPN sends traffic nowhere.
	for _, r := range c.cfg.Routes {
		for _, nh := range append(append([]NextHop(nil), r.NextHops...), r.Qualified...) {
			if strings.HasPrefix(nh.Interface, "st0.") && bound[nh.Interface] == nil {
				c.d.warnAt(r.Pos, "route %s: no ipsec vpn is bound to %s, so this route drops its traffic", r.Prefix, nh.Interface)
			}
		}
	}
	// Interfaces that carry traffic but are in no zone are worth a warning.
	for _, ifc := range c.cfg.Interfaces {
		for _, u := range ifc.Units {
			if u.Zone == "" && (len(u.Inet) > 0 || len(u.Inet6) > 0) && !strings.HasPrefix(u.Name, "lo") {
				c.d.warnAt(u.Pos, "interface %s is in no security zone: traffic through it is dropped", u.Name)
			}
		}
	}
}
