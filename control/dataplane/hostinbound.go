package dataplane

import (
	"fmt"
	"sort"

	"github.com/bpfvpn/bpfvpn/loader"
)

// Services maps system-services names to host-inbound bits (bpf/hostin.h).
var Services = map[string]loader.BpfvpnHiBit{
	"ike":        loader.BpfvpnHiBitHI_IKE,
	"ping":       loader.BpfvpnHiBitHI_PING,
	"ssh":        loader.BpfvpnHiBitHI_SSH,
	"https":      loader.BpfvpnHiBitHI_HTTPS,
	"http":       loader.BpfvpnHiBitHI_HTTP,
	"telnet":     loader.BpfvpnHiBitHI_TELNET,
	"dns":        loader.BpfvpnHiBitHI_DNS,
	"ntp":        loader.BpfvpnHiBitHI_NTP,
	"snmp":       loader.BpfvpnHiBitHI_SNMP,
	"traceroute": loader.BpfvpnHiBitHI_TRACEROUTE,
	"dhcp":       loader.BpfvpnHiBitHI_DHCP,
	"dhcpv6":     loader.BpfvpnHiBitHI_DHCPV6,
	"netconf":    loader.BpfvpnHiBitHI_NETCONF,
	"tftp":       loader.BpfvpnHiBitHI_TFTP,
	"ftp":        loader.BpfvpnHiBitHI_FTP,
	"syslog":     loader.BpfvpnHiBitHI_SYSLOG,
}

// Protocols maps host-inbound protocols names to bits.
var Protocols = map[string]loader.BpfvpnHiBit{
	"bgp":   loader.BpfvpnHiBitHI_BGP,
	"ospf":  loader.BpfvpnHiBitHI_OSPF,
	"ospf3": loader.BpfvpnHiBitHI_OSPF3,
	"bfd":   loader.BpfvpnHiBitHI_BFD,
	"rip":   loader.BpfvpnHiBitHI_RIP,
	"ripng": loader.BpfvpnHiBitHI_RIPNG,
	"vrrp":  loader.BpfvpnHiBitHI_VRRP,
	"pim":   loader.BpfvpnHiBitHI_PIM,
	"ldp":   loader.BpfvpnHiBitHI_LDP,
	"rsvp":  loader.BpfvpnHiBitHI_RSVP,
	"igmp":  loader.BpfvpnHiBitHI_IGMP,
}

func namesMask(kind string, table map[string]loader.BpfvpnHiBit, names, except []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		if n == "all" {
			for _, b := range table {
				m |= 1 << b
			}
			continue
		}
		b, ok := table[n]
		if !ok {
			return 0, fmt.Errorf("unknown host-inbound %s %q (known: %s)", kind, n, known(table))
		}
		m |= 1 << b
	}
	for _, n := range except {
		b, ok := table[n]
		if !ok {
			return 0, fmt.Errorf("unknown host-inbound %s %q in except (known: %s)", kind, n, known(table))
		}
		m &^= 1 << b
	}
	return m, nil
}

func known(table map[string]loader.BpfvpnHiBit) string {
	var s []string
	for k := range table {
		s = append(s, k)
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

// Mask compiles the host-inbound settings into the bits the programs test.
func (h HostInbound) Mask() (uint64, error) {
	s, err := namesMask("system-service", Services, h.Services, h.ServicesExcept)
	if err != nil {
		return 0, err
	}
	p, err := namesMask("protocol", Protocols, h.Protocols, h.ProtocolsExcept)
	if err != nil {
		return 0, err
	}
	return s | p, nil
}
