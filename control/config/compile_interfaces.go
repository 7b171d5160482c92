package config

import (
	"net/netip"
	"strconv"
)

// st0 unit limits (reference §1).
const (
	st0MaxUnit       = 15999
	st0ReservedFirst = 16000
	st0ReservedLast  = 16385
	maxUnit          = 16385
)

func (c *compiler) interfaces(n *node) {
	byLinux := map[string]*Interface{}
	active(n, func(in *node) {
		ifc := &Interface{Name: in.kw, LinuxName: c.linuxName(in.kw), Tunnel: in.kw == "st0", Pos: c.p(in)}
		if !ifc.Tunnel && !validLinuxName(ifc.LinuxName) {
			c.d.errorf(in.p, "interface %s: Linux name %q is not valid; map it with `set system interface-map %s NAME`", in.kw, truncate(ifc.LinuxName), in.kw)
		}
		if prev, dup := byLinux[ifc.LinuxName]; dup && !ifc.Tunnel {
			c.d.errorf(in.p, "interface %s: Linux device %s is already used by interface %s (line %d)", in.kw, ifc.LinuxName, prev.Name, prev.Pos.Line)
		}
		byLinux[ifc.LinuxName] = ifc
		c.ifaces[ifc.Name] = ifc
		c.cfg.Interfaces = append(c.cfg.Interfaces, ifc)
		active(in, func(k *node) {
			switch k.kw {
			case "description":
				ifc.Description = k.val()
			case "disable":
				if ifc.Tunnel {
					c.d.errorf(k.p, "interfaces st0: disable is not supported on st0")
				}
				ifc.Disable = true
			case "mtu":
				ifc.MTU, _ = c.num(k, 256, 9192)
			case "unit":
				c.unit(ifc, k)
			}
		})
	})
}

func (c *compiler) unit(ifc *Interface, k *node) {
	num, err := strconv.Atoi(k.name)
	if err != nil || num < 0 {
		c.d.errorf(k.p, "interface %s: unit %q is not a number", ifc.Name, truncate(k.name))
		return
	}
	if ifc.Tunnel {
		switch {
		case num >= st0ReservedFirst && num <= st0ReservedLast:
			c.d.errorf(k.p, "st0.%d: units st0.16000 to st0.16385 are reserved for HA control-link encryption; use 0..15999", num)
			return
		case num > st0MaxUnit:
			c.d.errorf(k.p, "st0.%d: unit out of range 0..15999", num)
			return
		}
	} else if num > maxUnit {
		c.d.errorf(k.p, "%s.%d: unit out of range 0..%d", ifc.Name, num, maxUnit)
		return
	}
	u := &Unit{
		Name:      ifc.Name + "." + k.name,
		Interface: ifc.Name,
		Number:    num,
		Tunnel:    ifc.Tunnel,
		Pos:       c.p(k),
	}
	if ifc.Tunnel {
		u.LinuxName = u.Name
		u.IfID = uint32(num) + 1
	} else if num == 0 {
		u.LinuxName = ifc.LinuxName
	} else {
		u.VLANID = num
		u.LinuxName = ifc.LinuxName + "." + k.name
	}
	var addr4Pos, addr6Pos pos
	active(k, func(x *node) {
		switch x.kw {
		case "description":
			u.Description = x.val()
		case "disable":
			if ifc.Tunnel {
				c.d.errorf(x.p, "%s: disable is not supported on st0", u.Name)
			}
			u.Disable = true
		case "multipoint":
			if !ifc.Tunnel {
				c.d.errorf(x.p, "%s: multipoint is only valid on st0 units", u.Name)
			}
			u.Multipoint = true
		case "vlan-id":
			if v, ok := c.num(x, 1, 4094); ok {
				u.VLANID = v
				if !ifc.Tunnel {
					u.LinuxName = ifc.LinuxName + "." + strconv.Itoa(v)
				}
			}
		case "family":
			active(x, func(f *node) {
				v6 := f.kw == "inet6"
				active(f, func(e *node) {
					switch e.kw {
					case "address":
						p, err := netip.ParsePrefix(e.name)
						if err != nil || p.Addr().Is6() != v6 || p.Addr().Zone() != "" {
							c.d.errorf(e.p, "%s: %q is not an %s interface address (ADDRESS/LENGTH)", u.Name, truncate(e.name), f.kw)
							return
						}
						if v6 {
							if ifc.Tunnel && len(u.Inet6) == 1 {
								c.d.errorf(e.p, "%s: a tunnel unit takes at most one IPv6 address (first at line %d)", u.Name, addr6Pos.line)
								return
							}
							addr6Pos = e.p
							u.Inet6 = append(u.Inet6, p)
						} else {
							if ifc.Tunnel && len(u.Inet) == 1 {
								c.d.errorf(e.p, "%s: a tunnel unit takes at most one IPv4 address (first at line %d)", u.Name, addr4Pos.line)
								return
							}
							addr4Pos = e.p
							u.Inet = append(u.Inet, p)
						}
					case "mtu":
						u.MTU, _ = c.num(e, 256, 9192)
					case "next-hop-tunnel":
						a, err := netip.ParseAddr(e.name)
						if err != nil || a.Is6() != v6 {
							c.d.errorf(e.p, "%s: next-hop-tunnel %q is not an %s address", u.Name, truncate(e.name), f.kw)
							return
						}
						nh := NextHopTunnel{Address: a, Pos: c.p(e)}
						if v := e.child("ipsec-vpn"); v != nil {
							nh.VPN = v.val()
						} else {
							c.d.errorf(e.p, "%s: next-hop-tunnel %s needs ipsec-vpn VPN", u.Name, a)
							return
						}
						u.NextHopTunnels = append(u.NextHopTunnels, nh)
					}
				})
			})
		}
	})
	if len(u.NextHopTunnels) > 0 && !u.Multipoint {
		c.d.errorf(k.p, "%s: next-hop-tunnel needs a multipoint unit", u.Name)
	}
	ifc.Units = append(ifc.Units, u)
	c.units[u.Name] = u
}

// lookupUnit resolves an interface reference (ge-0/0/1 or ge-0/0/1.0).
func (c *compiler) lookupUnit(ref string) (*Unit, string) {
	name := unitName(ref)
	return c.units[name], name
}
