package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// serviceAliases are config names that share a data-plane bit.
var serviceAliases = map[string]string{"bootp": "dhcp"}

// FromConfig compiles the security and interfaces parts of a configuration
// into a Spec. Host-inbound names the data plane has no match for are
// reported as warnings (they stay closed).
func FromConfig(cfg *config.Config) (*Spec, []string, error) {
	if err := CheckCapacity(cfg); err != nil {
		return nil, nil, err
	}
	s := &Spec{DefaultPermit: cfg.Policies.Default == config.ActionPermit}
	var warns []string
	units := map[string]*config.Unit{}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			units[u.Name] = u
		}
	}
	hi := func(where string, h config.HostInbound) HostInbound {
		var out HostInbound
		for _, n := range h.Services {
			if a, ok := serviceAliases[n]; ok {
				n = a
			}
			if _, ok := Services[n]; ok {
				out.Services = append(out.Services, n)
			} else {
				warns = append(warns, fmt.Sprintf("%s: host-inbound system-service %s is not enforced by the data plane (stays closed)", where, n))
			}
		}
		for _, n := range h.Protocols {
			if _, ok := Protocols[n]; ok {
				out.Protocols = append(out.Protocols, n)
			} else {
				warns = append(warns, fmt.Sprintf("%s: host-inbound protocol %s is not enforced by the data plane (stays closed)", where, n))
			}
		}
		return out
	}
	for _, z := range cfg.Zones {
		s.Zones = append(s.Zones, Zone{Name: z.Name, HostInbound: hi("zone "+z.Name, z.HostInbound)})
		for _, un := range z.Interfaces {
			u, ok := units[un]
			if !ok {
				return nil, warns, fmt.Errorf("zone %s: interface %s is not configured under interfaces", z.Name, un)
			}
			ifc := Interface{Name: u.LinuxName, Zone: z.Name, Tunnel: u.Tunnel}
			if u.VLANID != 0 && !u.Tunnel {
				ifc.Name, ifc.VLAN = parentName(cfg, u), uint16(u.VLANID)
			}
			if h, ok := z.InterfaceHostInbound[un]; ok {
				h2 := hi("interface "+un, h)
				ifc.HostInbound = &h2
			}
			s.Interfaces = append(s.Interfaces, ifc)
			for _, p := range append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...) {
				s.LocalAddrs = append(s.LocalAddrs, p.Addr())
			}
		}
	}
	n := 0
	for _, pc := range cfg.Policies.Contexts {
		n += len(pc.Policies)
	}
	s.Policies = make([]Policy, 0, n)
	for _, pc := range cfg.Policies.Contexts {
		for _, p := range pc.Policies {
			pol := Policy{Name: p.Name, FromZone: pc.From, ToZone: pc.To, Source: p.Source,
				Destination: p.Destination, Count: p.Count, Log: p.LogInit || p.LogClose, origin: p}
			switch p.Action {
			case config.ActionPermit:
				pol.Action = Permit
			case config.ActionReject:
				pol.Action = Reject
			default:
				pol.Action = Deny
			}
			if !p.AnyApplication {
				pol.Apps = []AppTerm{}
				for _, t := range p.Terms {
					if !t.SrcPorts.Any() {
						return nil, warns, fmt.Errorf("policy %s (%s → %s): source-port matches are not supported by the data plane", p.Name, pc.From, pc.To)
					}
					at := AppTerm{Proto: t.Protocol}
					if !t.DstPorts.Any() {
						at.PortLow, at.PortHigh = t.DstPorts.Lo, t.DstPorts.Hi
					}
					if t.ICMPType >= 0 {
						at.HasICMPType, at.ICMPType = true, uint8(t.ICMPType)
						if t.ICMPCode >= 0 {
							at.HasICMPCode, at.ICMPCode = true, uint8(t.ICMPCode)
						}
					}
					pol.Apps = append(pol.Apps, at)
				}
			}
			s.Policies = append(s.Policies, pol)
		}
	}
	s.TCPMSS = TCPMSS{IPsecVPN: uint16(cfg.Flow.TCPMSSIPsecVPN), AllTCP: uint16(cfg.Flow.TCPMSSAllTCP)}
	return s, warns, nil
}

func parentName(cfg *config.Config, u *config.Unit) string {
	for _, ifc := range cfg.Interfaces {
		if ifc.Name == u.Interface {
			return ifc.LinuxName
		}
	}
	return u.Interface
}
