package config

import (
	"net/netip"
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
