package topology

import (
	"net/netip"

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
	c, err := newSiteConfig("hub", gateway)
	if err != nil {
		return "", err
	}
	switch gateway {
	case lab.SRX1:
		c.WriteString("delete routing-options static route 10.100.22.0/24\n")
		c.set("interfaces st0 unit 0 multipoint")
		c.set("interfaces st0 unit 0 family inet next-hop-tunnel 10.100.200.2 ipsec-vpn VPN-to-Host2")
		c.set("interfaces st0 unit 0 family inet next-hop-tunnel 10.100.200.3 ipsec-vpn VPN-to-SRX3")
		c.set("routing-options static route 10.100.22.0/24 next-hop 10.100.200.2")
		c.set("routing-options static route %s next-hop 10.100.200.3", Spoke3Prefix)
		c.gatewaySRX3()
		c.vpnToSRX3("st0.0")
		c.set("security address-book Host2 address Spoke3-Net %s", Spoke3Prefix)
		c.policy("trust", "vpn", "TO-SPOKE3", "Host1-Net", "Spoke3-Net")
		// Spoke-to-spoke traffic enters and leaves through st0.0's
		// tunnels: a vpn -> vpn policy lets it hairpin.
		c.policy("vpn", "vpn", "SPOKE-TO-SPOKE", "any", "any")
	case lab.SRX2:
		c.set("routing-options static route %s next-hop st0.0", Spoke3Prefix)
		c.set("security address-book Host1 address Spoke3-Net %s", Spoke3Prefix)
		c.policy("trust", "vpn", "TO-SPOKE3", "Host2-Net", "Spoke3-Net")
	case SRX3:
		c.site3("10.100.200.3/24", []string{"10.100.11.0/24", "10.100.22.0/24"})
	}
	return c.String(), nil
}
