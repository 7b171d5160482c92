package topology

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// The hub-and-spoke topology: SRX1 is the hub with one multipoint st0.0
// (10.100.200.1/24) and two VPNs bound to it, chosen by next hop
// (`next-hop-tunnel`): SRX2 (10.100.200.2, LAN 10.100.22.0/24 with Host2)
// and SRX3 (10.100.200.3, which holds Spoke3Addr in Spoke3Prefix). Spokes
// route every other site through their one tunnel, so spoke-to-spoke
// traffic hairpins through the hub.
var (
	Spoke3Prefix = netip.MustParsePrefix("10.100.33.0/24")
	Spoke3Addr   = netip.MustParseAddr("10.100.33.1")
)

// HubConfig returns the configuration of gateway (lab.SRX1 = hub,
// lab.SRX2 or SRX3 = spokes) in the hub-and-spoke topology, IKEv2.
func HubConfig(gateway string) (string, error) {
	opts := lab.ConfigOptions{IKEVersion: "v2-only"}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "set "+format+"\n", args...) }
	switch gateway {
	case lab.SRX1:
		base, err := lab.Config(lab.SRX1, opts)
		if err != nil {
			return "", err
		}
		b.WriteString(base)
		b.WriteString("delete routing-options static route 10.100.22.0/24\n")
		line("interfaces st0 unit 0 multipoint")
		line("interfaces st0 unit 0 family inet next-hop-tunnel 10.100.200.2 ipsec-vpn VPN-to-Host2")
		line("interfaces st0 unit 0 family inet next-hop-tunnel 10.100.200.3 ipsec-vpn VPN-to-SRX3")
		line("routing-options static route 10.100.22.0/24 next-hop 10.100.200.2")
		line("routing-options static route %s next-hop 10.100.200.3", Spoke3Prefix)
		line("security ike gateway IKE-GW3 ike-policy IKE-POL")
		line("security ike gateway IKE-GW3 address %s", BackupSite.WAN.Addr())
		line("security ike gateway IKE-GW3 external-interface ge-0/0/1")
		line("security ike gateway IKE-GW3 version v2-only")
		line("security ipsec vpn VPN-to-SRX3 bind-interface st0.0")
		line("security ipsec vpn VPN-to-SRX3 ike gateway IKE-GW3")
		line("security ipsec vpn VPN-to-SRX3 ike ipsec-policy IPSEC-POL")
		line("security ipsec vpn VPN-to-SRX3 establish-tunnels immediately")
		line("security address-book Host2 address Spoke3-Net %s", Spoke3Prefix)
		policy(line, "trust", "vpn", "TO-SPOKE3", "Host1-Net", "Spoke3-Net")
		// Spoke-to-spoke traffic enters and leaves through st0.0's
		// tunnels: a vpn -> vpn policy lets it hairpin.
		policy(line, "vpn", "vpn", "SPOKE-TO-SPOKE", "any", "any")
	case lab.SRX2:
		base, err := lab.Config(lab.SRX2, opts)
		if err != nil {
			return "", err
		}
		b.WriteString(base)
		line("routing-options static route %s next-hop st0.0", Spoke3Prefix)
		line("security address-book Host1 address Spoke3-Net %s", Spoke3Prefix)
		policy(line, "trust", "vpn", "TO-SPOKE3", "Host2-Net", "Spoke3-Net")
	case SRX3:
		b.WriteString(site3Config("10.100.200.3/24", []string{"10.100.11.0/24", "10.100.22.0/24"}))
	default:
		return "", fmt.Errorf("hub config: unknown gateway %q", gateway)
	}
	return b.String(), nil
}

// policy writes a permit policy.
func policy(line func(string, ...any), from, to, name, src, dst string) {
	p := fmt.Sprintf("security policies from-zone %s to-zone %s policy %s", from, to, name)
	line("%s match source-address %s", p, src)
	line("%s match destination-address %s", p, dst)
	line("%s match application any", p)
	line("%s then permit", p)
}
