package config

// Unit returns the logical interface named ref (ge-0/0/1 means
// ge-0/0/1.0), or nil.
func (c *Config) Unit(ref string) *Unit {
	name := unitName(ref)
	for _, ifc := range c.Interfaces {
		for _, u := range ifc.Units {
			if u.Name == name {
				return u
			}
		}
	}
	return nil
}

// Zone returns the security zone named name, or nil.
func (c *Config) Zone(name string) *Zone {
	for _, z := range c.Zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// Gateway returns the IKE gateway named name, or nil.
func (c *Config) Gateway(name string) *IKEGateway {
	for _, g := range c.IKE.Gateways {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// VPN returns the IPsec VPN named name, or nil.
func (c *Config) VPN(name string) *VPN {
	for _, v := range c.IPsec.VPNs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// ApplicationTerms resolves an application name as policies do: `any`
// (any is true, no terms), a predefined junos-* application, a user
// application or an application set. The terms are shared: read-only.
func (c *Config) ApplicationTerms(name string) (terms []AppTerm, any bool, ok bool) {
	if name == "any" {
		return nil, true, true
	}
	if t, ok := predefinedApplications[name]; ok {
		return t, false, true
	}
	for _, a := range c.Applications {
		if a.Name == name {
			return a.Terms, false, true
		}
	}
	for _, s := range c.ApplicationSets {
		if s.Name == name {
			return s.Terms, false, true
		}
	}
	return nil, false, false
}

// VPNsBoundTo returns the VPNs bound to the st0 unit named unit, in
// configuration order (more than one only on a multipoint unit).
func (c *Config) VPNsBoundTo(unit string) []*VPN {
	var out []*VPN
	for _, v := range c.IPsec.VPNs {
		if v.BindInterface == unit {
			out = append(out, v)
		}
	}
	return out
}
