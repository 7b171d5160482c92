package config

import (
	"sort"
)

func (c *compiler) zonesNode(n *node) {
	active(n, func(zn *node) {
		if zn.kw != "security-zone" {
			return
		}
		z := &Zone{Name: zn.name, Pos: c.p(zn)}
		c.zones[z.Name] = z
		c.cfg.Zones = append(c.cfg.Zones, z)
		if h := zn.child("host-inbound-traffic"); h != nil {
			z.HostInbound = c.hostInbound(h)
		}
		if d := zn.child("description"); d != nil {
			z.Description = d.val()
		}
		if ifs := zn.child("interfaces"); ifs != nil {
			active(ifs, func(in *node) {
				u, name := c.lookupUnit(in.kw)
				if prev, dup := c.zoneOfUnit[name]; dup {
					if prev == z {
						c.d.errorf(in.p, "interface %s is listed twice in zone %s", name, z.Name)
					} else {
						c.d.errorf(in.p, "interface %s is already in zone %s (line %d); an interface belongs to one zone", name, prev.Name, c.unitZonePos[name].line)
					}
					return
				}
				if u == nil {
					c.d.errorf(in.p, "zone %s: undefined interface %s (configure it under interfaces)", z.Name, name)
					return
				}
				c.zoneOfUnit[name] = z
				c.unitZonePos[name] = in.p
				z.Interfaces = append(z.Interfaces, name)
				u.Zone = z.Name
				hi := z.HostInbound
				if h := in.child("host-inbound-traffic"); h != nil {
					hi = c.hostInbound(h)
					if z.InterfaceHostInbound == nil {
						z.InterfaceHostInbound = map[string]HostInbound{}
					}
					z.InterfaceHostInbound[name] = hi
				}
				u.HostInbound = hi
			})
		}
	})
}

// hostInbound resolves a host-inbound-traffic container: `all` enables every
// known name, `NAME except` removes one.
func (c *compiler) hostInbound(h *node) HostInbound {
	var out HostInbound
	if s := h.child("system-services"); s != nil {
		out.Services = c.serviceSet(s, hostServices, "system-services")
	}
	if p := h.child("protocols"); p != nil {
		out.Protocols = c.serviceSet(p, hostProtocols, "protocols")
	}
	for _, s := range out.Services {
		for _, r := range hostServices[s] {
			r.Name = s
			if r.Protocol != protoICMP && r.Protocol != protoICMPv6 {
				r.ICMPType = -1
			}
			out.Rules = append(out.Rules, r)
		}
	}
	for _, s := range out.Protocols {
		for _, r := range hostProtocols[s] {
			r.Name = s
			if r.Protocol != protoICMP && r.Protocol != protoICMPv6 {
				r.ICMPType = -1
			}
			out.Rules = append(out.Rules, r)
		}
	}
	return out
}

func (c *compiler) serviceSet(n *node, table map[string][]HostInboundRule, what string) []string {
	on := map[string]bool{}
	var except []string
	all := false
	active(n, func(s *node) {
		if s.kw == "all" || s.kw == "any-service" {
			if s.child("except") != nil {
				c.d.errorf(s.p, "%s: %s except is meaningless", what, s.kw)
				return
			}
			all = true
			return
		}
		if _, ok := table[s.kw]; !ok {
			c.d.errorf(s.p, "%s: unknown %s %q", what, what, truncate(s.kw))
			return
		}
		if s.child("except") != nil {
			except = append(except, s.kw)
		} else {
			on[s.kw] = true
		}
	})
	if all {
		for k := range table {
			on[k] = true
		}
	}
	for _, e := range except {
		delete(on, e)
	}
	out := make([]string, 0, len(on))
	for k := range on {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
