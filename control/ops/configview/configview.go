// Package configview builds the operational views that follow from the
// configuration alone (policies, zones, st0 interfaces, static and
// interface routes, proxy identities, negotiated-algorithm names) so the
// daemon's ops.Provider only adds live numbers: hit counts, link state and
// counters. It reads a validated *config.Config and never touches secrets.
package configview

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/ops"
)

// PolicyHits returns the hit count of a policy; nil means zero.
type PolicyHits func(from, to, policy string) uint64

// Policies lists every policy in evaluation order (zone pairs in
// configuration order, policies in order within each pair). Index numbers
// policies from 1 across the configuration; Sequence is the position within
// the zone pair.
func Policies(cfg *config.Config, hits PolicyHits) ops.Policies {
	out := ops.Policies{DefaultPolicy: "deny-all"}
	if cfg.Policies.Default == config.ActionPermit {
		out.DefaultPolicy = "permit-all"
	}
	index := uint32(0)
	for _, pc := range cfg.Policies.Contexts {
		for seq, p := range pc.Policies {
			index++
			v := ops.Policy{
				Name: p.Name, FromZone: pc.From, ToZone: pc.To, Index: index, Sequence: uint32(seq + 1), Enabled: true,
				SourceAddresses:      names(p.SourceAddresses),
				DestinationAddresses: names(p.DestinationAddresses),
				Applications:         names(p.Applications),
				Action:               p.Action.String(),
				Log:                  p.LogInit || p.LogClose,
				Count:                p.Count,
			}
			if hits != nil {
				v.Hits = hits(pc.From, pc.To, p.Name)
			}
			out.Policies = append(out.Policies, v)
		}
	}
	return out
}

func names(n []string) []string {
	if len(n) == 0 {
		return []string{"any"}
	}
	return append([]string(nil), n...)
}

// Zones lists the security zones in configuration order, numbered from 1.
func Zones(cfg *config.Config) ops.Zones {
	var out ops.Zones
	for i, z := range cfg.Zones {
		hi := append(append([]string(nil), z.HostInbound.Services...), z.HostInbound.Protocols...)
		out.Zones = append(out.Zones, ops.Zone{Name: z.Name, ID: uint32(i + 1),
			Interfaces: append([]string{}, z.Interfaces...), HostInbound: hi})
	}
	return out
}

// Link is the live state of a Linux device; ok is false when the device
// does not exist.
type Link func(linuxName string) (state LinkState, ok bool)

// LinkState is what the kernel says about one device.
type LinkState struct {
	Index         uint32
	AdminUp       bool
	LinkUp        bool
	MTU           uint32
	InputPackets  uint64
	OutputPackets uint64
	Multipoint    string // how a multipoint unit carries its tunnels
}

// Interfaces builds `show interfaces [NAME]` for secure tunnel interfaces:
// name "" or "st0" gives st0 with all its units, "st0.N" that unit only.
// Units whose device is missing show as down. Any other name is an error,
// worded as on the device.
func Interfaces(cfg *config.Config, name string, link Link) (ops.Interfaces, error) {
	var out ops.Interfaces
	for _, ifc := range cfg.Interfaces {
		if !ifc.Tunnel {
			continue
		}
		if name != "" && name != ifc.Name && !strings.HasPrefix(name, ifc.Name+".") {
			continue
		}
		phys := ops.Interface{Name: ifc.Name, AdminUp: !ifc.Disable, LinkUp: !ifc.Disable, MTU: uint32(ifc.MTU)}
		if phys.MTU == 0 {
			phys.MTU = 9192
		}
		for _, u := range ifc.Units {
			if name != "" && name != ifc.Name && name != u.Name {
				continue
			}
			lu := ops.LogicalInterface{Name: u.Name, Zone: u.Zone, MTU: uint32(u.MTU), LinuxName: u.LinuxName,
				XFRMInterfaceID: u.IfID, AdminUp: !u.Disable}
			lu.HostInbound = append(append([]string(nil), u.HostInbound.Services...), u.HostInbound.Protocols...)
			lu.Addresses = append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...)
			if link != nil {
				if st, ok := link(u.LinuxName); ok {
					lu.Index, lu.LinkUp = st.Index, st.LinkUp
					lu.AdminUp = lu.AdminUp && st.AdminUp
					lu.InputPackets, lu.OutputPackets = st.InputPackets, st.OutputPackets
					if u.Multipoint {
						lu.Multipoint = st.Multipoint
					}
					if lu.MTU == 0 {
						lu.MTU = st.MTU
					}
				}
			}
			phys.Units = append(phys.Units, lu)
		}
		if name != "" && name != ifc.Name && len(phys.Units) == 0 {
			continue
		}
		out.Interfaces = append(out.Interfaces, phys)
	}
	if name != "" && len(out.Interfaces) == 0 {
		return out, fmt.Errorf("device %s not found", name)
	}
	return out, nil
}

// RouteState says whether a static route is installed in the kernel and
// for how long; nil treats every route as installed just now.
type RouteState func(r *config.Route) (active bool, ageSeconds int64)

// Routes builds `show route` from the configuration: Direct and Local
// routes of every interface address (of units that are not disabled) and
// the static routes, in inet.0 and inet6.0, sorted by destination.
func Routes(cfg *config.Config, state RouteState) ops.Routes {
	tables := map[bool]*ops.RouteTable{false: {Name: "inet.0"}, true: {Name: "inet6.0"}}
	add := func(r ops.Route) {
		t := tables[r.Destination.Addr().Is6()]
		t.Routes = append(t.Routes, r)
	}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			if u.Disable || ifc.Disable {
				continue
			}
			for _, a := range append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...) {
				add(ops.Route{Destination: a.Masked(), Protocol: "Direct", Active: true,
					NextHops: []ops.NextHop{{Interface: u.Name, Selected: true}}})
				add(ops.Route{Destination: netip.PrefixFrom(a.Addr(), a.Addr().BitLen()), Protocol: "Local", Active: true,
					NextHops: []ops.NextHop{{Interface: u.Name}}})
			}
		}
	}
	for _, r := range cfg.Routes {
		active, age := true, int64(0)
		if state != nil {
			active, age = state(r)
		}
		v := ops.Route{Destination: r.Prefix, Protocol: "Static", Preference: uint32(r.Preference), Active: active, AgeSeconds: age}
		for i, nh := range r.NextHops {
			v.NextHops = append(v.NextHops, ops.NextHop{Gateway: nh.Address, Interface: via(cfg, nh), Selected: i == 0})
		}
		add(v)
		for _, q := range r.Qualified {
			add(ops.Route{Destination: r.Prefix, Protocol: "Static", Preference: uint32(q.Preference),
				NextHops: []ops.NextHop{{Gateway: q.Address, Interface: via(cfg, q)}}})
		}
	}
	var out ops.Routes
	for _, v6 := range []bool{false, true} {
		t := tables[v6]
		if len(t.Routes) == 0 {
			continue
		}
		sortRoutes(t.Routes)
		out.Tables = append(out.Tables, *t)
	}
	return out
}

// via is the unit a next hop leaves through: the configured interface, or
// the unit whose subnet holds the gateway address.
func via(cfg *config.Config, nh config.NextHop) string {
	if nh.Interface != "" || !nh.Address.IsValid() {
		return nh.Interface
	}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			for _, a := range append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...) {
				if a.Masked().Contains(nh.Address) {
					return u.Name
				}
			}
		}
	}
	return ""
}

func sortRoutes(rs []ops.Route) {
	// Stable insertion sort by destination address then length: tables are
	// small, and equal destinations keep their order (active one first).
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && lessPrefix(rs[j].Destination, rs[j-1].Destination); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func lessPrefix(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

// ProxyIDs gives the local and remote proxy identities of a VPN as the
// detail view prints them: the configured or default prefixes, with the
// service's protocol and destination port (any:0 for `any`).
func ProxyIDs(cfg *config.Config, vpn *config.VPN) (local, remote ops.ProxyID) {
	proto, port := "any", uint16(0)
	if svc := vpn.ProxyIdentity.Service; svc != "" && svc != "any" {
		if terms := applicationTerms(cfg, svc); len(terms) > 0 {
			proto, port = protocolName(terms[0].Protocol), terms[0].DstPorts.Lo
		}
	}
	lp, rp := vpn.ProxyIdentity.Local, vpn.ProxyIdentity.Remote
	if !lp.IsValid() {
		lp = netip.MustParsePrefix("0.0.0.0/0")
	}
	if !rp.IsValid() {
		rp = netip.MustParsePrefix("0.0.0.0/0")
	}
	return ops.ProxyID{Prefix: lp, Protocol: proto, Port: port}, ops.ProxyID{Prefix: rp, Protocol: proto, Port: port}
}

func applicationTerms(cfg *config.Config, name string) []config.AppTerm {
	if t, ok := config.PredefinedApplication(name); ok {
		return t
	}
	for _, a := range cfg.Applications {
		if a.Name == name {
			return a.Terms
		}
	}
	for _, s := range cfg.ApplicationSets {
		if s.Name == name {
			return s.Terms
		}
	}
	return nil
}

func protocolName(p uint8) string {
	switch p {
	case 0:
		return "any"
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmp6"
	}
	return fmt.Sprint(p)
}

// IKEAlgorithms names the transforms of an IKE proposal for ops.IKESA.
func IKEAlgorithms(p *config.IKEProposal) ops.IKEAlgorithms {
	return ops.IKEAlgorithms{Authentication: p.AuthenticationAlgorithm, Encryption: p.EncryptionAlgorithm,
		DHGroup: fmt.Sprintf("group%d", p.DHGroup)}
}

// IPsecAlgorithms names the transforms of an IPsec proposal for ops.IPsecSA.
func IPsecAlgorithms(p *config.IPsecProposal) (protocol, encryption, authentication string) {
	return strings.ToUpper(p.Protocol), p.EncryptionAlgorithm, p.AuthenticationAlgorithm
}
