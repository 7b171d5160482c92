package config

import (
	"fmt"
	"net/netip"
	"strings"
)

func (c *compiler) routingOptions(n *node) {
	active(n, func(k *node) {
		switch k.kw {
		case "static":
			c.staticRoutes(k, false)
		case "rib":
			switch k.name {
			case "inet6.0":
				if s := k.child("static"); s != nil {
					c.staticRoutes(s, true)
				}
			case "inet.0":
				if s := k.child("static"); s != nil {
					c.staticRoutes(s, false)
				}
			default:
				c.d.warnf(k.p, "routing-options rib %s: not supported by bpfvpn, ignored (only inet.0 and inet6.0)", k.name)
			}
		}
	})
}

func (c *compiler) staticRoutes(n *node, v6 bool) {
	table := "inet.0"
	if v6 {
		table = "inet6.0"
	}
	active(n, func(rn *node) {
		if rn.kw != "route" {
			return
		}
		p, ok := c.parseNetPrefix("route", "", word{rn.name, rn.p})
		if !ok {
			return
		}
		if p.Addr().Is6() != v6 {
			c.d.errorf(rn.p, "route %s does not belong in %s", rn.name, table)
			return
		}
		r := &Route{Prefix: p, Preference: Defaults.RoutePreference, Pos: c.p(rn)}
		active(rn, func(x *node) {
			switch x.kw {
			case "preference":
				r.Preference, _ = c.num(x, 0, 1<<31-1)
			case "metric":
				r.Metric, _ = c.num(x, 0, 1<<31-1)
			case "discard":
				r.Discard = true
			case "reject":
				r.Reject = true
			}
		})
		active(rn, func(x *node) {
			switch x.kw {
			case "next-hop":
				for _, w := range x.vals {
					if nh, ok := c.nextHop(rn, w, v6); ok {
						nh.Preference = r.Preference
						nh.Metric = r.Metric
						r.NextHops = append(r.NextHops, nh)
					}
				}
			case "qualified-next-hop":
				nh, ok := c.nextHop(rn, word{x.name, x.p}, v6)
				if !ok {
					return
				}
				nh.Preference = r.Preference
				nh.Metric = r.Metric
				if pr := x.child("preference"); pr != nil {
					nh.Preference, _ = c.num(pr, 0, 1<<31-1)
				}
				if m := x.child("metric"); m != nil {
					nh.Metric, _ = c.num(m, 0, 1<<31-1)
				}
				r.Qualified = append(r.Qualified, nh)
			}
		})
		if len(r.NextHops) == 0 && len(r.Qualified) == 0 && !r.Discard && !r.Reject {
			c.d.errorf(rn.p, "route %s needs next-hop, qualified-next-hop, discard or reject", rn.name)
		}
		c.cfg.Routes = append(c.cfg.Routes, r)
	})
}

// nextHop reads an address or an interface unit.
func (c *compiler) nextHop(rn *node, w word, v6 bool) (NextHop, bool) {
	if a, err := netip.ParseAddr(w.s); err == nil {
		if a.Is6() != v6 && !(v6 && a.Is4In6()) {
			c.d.errorf(w.p, "route %s: next-hop %s is of the wrong address family", rn.name, w.s)
			return NextHop{}, false
		}
		return NextHop{Address: a}, true
	}
	u, name := c.lookupUnit(w.s)
	if u == nil {
		c.d.errorf(w.p, "route %s: undefined interface %s (next-hop)", rn.name, name)
		return NextHop{}, false
	}
	return NextHop{Interface: name, LinuxName: u.LinuxName}, true
}

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
