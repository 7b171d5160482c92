package ops

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// LogicalInterface is one unit st0.N of a secure tunnel interface.
type LogicalInterface struct {
	Name            string         `json:"name"` // st0.0
	Index           uint32         `json:"index"`
	AdminUp         bool           `json:"admin-up"`
	LinkUp          bool           `json:"link-up"`
	Zone            string         `json:"zone"`
	HostInbound     []string       `json:"host-inbound-traffic,omitempty"`
	MTU             uint32         `json:"mtu"`
	Addresses       []netip.Prefix `json:"addresses"`
	InputPackets    uint64         `json:"input-packets"`
	OutputPackets   uint64         `json:"output-packets"`
	LinuxName       string         `json:"linux-name,omitempty"` // the xfrm interface carrying the unit
	XFRMInterfaceID uint32         `json:"xfrm-if-id,omitempty"`
	// Multipoint says how a multipoint unit carries its tunnels on Linux.
	Multipoint string `json:"multipoint,omitempty"`
}

// Interface is a physical interface with its logical units (st0 and st0.N).
type Interface struct {
	Name    string             `json:"name"` // st0
	Index   uint32             `json:"index"`
	AdminUp bool               `json:"admin-up"`
	LinkUp  bool               `json:"link-up"`
	MTU     uint32             `json:"mtu"`
	Units   []LogicalInterface `json:"units"`
}

// Interfaces is the answer to `show interfaces st0 [terse]`.
type Interfaces struct {
	Interfaces []Interface `json:"interfaces"`
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

var terseStops = []int{0, 24, 30, 35, 44, 66}

// InterfacesTerse is the terse view of Interfaces.
type InterfacesTerse Interfaces

// WriteText prints the terse table: one line per interface and unit, one
// continuation line per additional address.
func (v InterfacesTerse) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.line(columns(terseStops, "Interface", "Admin", "Link", "Proto", "Local", "Remote"))
	for _, ifc := range v.Interfaces {
		ew.line(columns(terseStops, ifc.Name, upDown(ifc.AdminUp), upDown(ifc.LinkUp)))
		for _, u := range ifc.Units {
			v4, v6 := splitFamilies(u.Addresses)
			first := true
			emit := func(proto string, addrs []netip.Prefix) {
				for i, a := range addrs {
					p := ""
					if i == 0 {
						p = proto
					}
					if first {
						ew.line(columns(terseStops, u.Name, upDown(u.AdminUp), upDown(u.LinkUp), p, a.String()))
						first = false
					} else {
						ew.line(columns(terseStops, "", "", "", p, a.String()))
					}
				}
			}
			emit("inet", v4)
			emit("inet6", v6)
			if first {
				ew.line(columns(terseStops, u.Name, upDown(u.AdminUp), upDown(u.LinkUp)))
			}
		}
	}
	return ew.err
}

func splitFamilies(addrs []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, a := range addrs {
		if a.Addr().Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// WriteText prints the detailed view: the physical interface, then each
// logical unit with its zone, counters and addresses.
func (v Interfaces) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, ifc := range v.Interfaces {
		if i > 0 {
			ew.line("")
		}
		enabled := "Enabled"
		if !ifc.AdminUp {
			enabled = "Disabled"
		}
		link := "Up"
		if !ifc.LinkUp {
			link = "Down"
		}
		ew.printf("Physical interface: %s, %s, Physical link is %s\n", ifc.Name, enabled, link)
		ew.printf("  Interface index: %d\n", ifc.Index)
		ew.printf("  Type: Secure-Tunnel, Link-level type: Secure-Tunnel, MTU: %s\n", mtu(ifc.MTU))
		ew.line("  Device flags   : Present Running")
		ew.line("  Interface flags: Point-To-Point")
		for _, u := range ifc.Units {
			ew.line("")
			ew.printf("  Logical interface %s (Index %d)\n", u.Name, u.Index)
			flags := "Point-To-Point SNMP-Traps"
			if u.LinkUp {
				flags = "Up " + flags
			}
			ew.printf("    Flags: %s Encapsulation: Secure-Tunnel\n", flags)
			ew.printf("    Input packets : %d\n", u.InputPackets)
			ew.printf("    Output packets: %d\n", u.OutputPackets)
			ew.printf("    Security: Zone: %s\n", orDefault(u.Zone, "Null"))
			if u.Multipoint != "" {
				ew.printf("    Multipoint: %s\n", u.Multipoint)
			}
			if len(u.HostInbound) > 0 {
				ew.printf("    Allowed host-inbound traffic : %s\n", strings.Join(u.HostInbound, " "))
			}
			v4, v6 := splitFamilies(u.Addresses)
			for _, fam := range []struct {
				name  string
				addrs []netip.Prefix
			}{{"inet", v4}, {"inet6", v6}} {
				if len(fam.addrs) == 0 {
					continue
				}
				ew.printf("    Protocol %s, MTU: %s\n", fam.name, mtu(u.MTU))
				ew.line("      Flags: None")
				for j, a := range fam.addrs {
					flags := "Is-Preferred"
					if j == 0 {
						flags = "Is-Preferred Is-Primary"
					}
					ew.printf("      Addresses, Flags: %s\n", flags)
					ew.printf("        Destination: %s, Local: %s\n", a.Masked(), a.Addr())
				}
			}
		}
	}
	return ew.err
}

func mtu(m uint32) string {
	if m == 0 {
		return "Unlimited"
	}
	return fmt.Sprint(m)
}
