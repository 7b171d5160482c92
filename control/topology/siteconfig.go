package topology

import (
	"fmt"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// siteConfig builds one gateway's configuration of a topology as `set`
// lines. SRX1 and SRX2 start from the two-site lab's IKEv2 configuration;
// SRX3 starts empty.
type siteConfig struct{ strings.Builder }

// newSiteConfig starts gateway's configuration in the named topology; a
// gateway other than lab.SRX1, lab.SRX2 or SRX3 is an error.
func newSiteConfig(topology, gateway string) (*siteConfig, error) {
	c := &siteConfig{}
	switch gateway {
	case lab.SRX1, lab.SRX2:
		base, err := lab.Config(gateway, lab.ConfigOptions{IKEVersion: "v2-only"})
		if err != nil {
			return nil, err
		}
		c.WriteString(base)
	case SRX3:
	default:
		return nil, fmt.Errorf("%s config: unknown gateway %q", topology, gateway)
	}
	return c, nil
}

// set writes one `set` line.
func (c *siteConfig) set(format string, args ...any) {
	fmt.Fprintf(&c.Builder, "set "+format+"\n", args...)
}

// policy writes a permit policy.
func (c *siteConfig) policy(from, to, name, src, dst string) {
	p := fmt.Sprintf("security policies from-zone %s to-zone %s policy %s", from, to, name)
	c.set("%s match source-address %s", p, src)
	c.set("%s match destination-address %s", p, dst)
	c.set("%s match application any", p)
	c.set("%s then permit", p)
}

// dpd turns on dead-peer detection for IKE gateway gw with the topology's
// DPDInterval and DPDThreshold.
func (c *siteConfig) dpd(gw string) {
	p := "security ike gateway " + gw + " dead-peer-detection "
	c.set("%salways-send", p)
	c.set("%sinterval %d", p, DPDInterval)
	c.set("%sthreshold %d", p, DPDThreshold)
}

// gatewaySRX3 writes SRX1's IKEv2 gateway IKE-GW3 to SRX3 (BackupSite).
func (c *siteConfig) gatewaySRX3() {
	c.set("security ike gateway IKE-GW3 ike-policy IKE-POL")
	c.set("security ike gateway IKE-GW3 address %s", BackupSite.WAN.Addr())
	c.set("security ike gateway IKE-GW3 external-interface ge-0/0/1")
	c.set("security ike gateway IKE-GW3 version v2-only")
}

// vpnToSRX3 writes SRX1's VPN VPN-to-SRX3 over IKE-GW3, bound to st0 and
// established immediately.
func (c *siteConfig) vpnToSRX3(st0 string) {
	c.set("security ipsec vpn VPN-to-SRX3 bind-interface %s", st0)
	c.set("security ipsec vpn VPN-to-SRX3 ike gateway IKE-GW3")
	c.set("security ipsec vpn VPN-to-SRX3 ike ipsec-policy IPSEC-POL")
	c.set("security ipsec vpn VPN-to-SRX3 establish-tunnels immediately")
}

// site3 writes SRX3's configuration: one IKEv2 VPN on st0.0 (address st0)
// to SRX1 with DPD, a default route to the Internet node and routes through
// st0.0 to the given prefixes.
func (c *siteConfig) site3(st0 string, viaTunnel []string) {
	c.WriteString("# SRX3: third gateway, peer of SRX1\n")
	c.set("system interface-map ge-0/0/1 %s", SiteWANLink)
	c.set("interfaces ge-0/0/1 unit 0 family inet address %s", BackupSite.WAN)
	c.set("interfaces st0 unit 0 family inet address %s", st0)
	for _, p := range viaTunnel {
		c.set("routing-options static route %s next-hop st0.0", p)
	}
	c.set("routing-options static route 0.0.0.0/0 next-hop %s", BackupSite.InternetAddr.Addr())
	c.set("security zones security-zone untrust host-inbound-traffic system-services ike")
	c.set("security zones security-zone untrust interfaces ge-0/0/1.0")
	c.set("security zones security-zone vpn host-inbound-traffic system-services ping")
	c.set("security zones security-zone vpn interfaces st0.0")
	c.set("security ike proposal standard authentication-method pre-shared-keys")
	c.set("security ike policy IKE-POL mode main")
	c.set("security ike policy IKE-POL proposals standard")
	c.set("security ike policy IKE-POL pre-shared-key ascii-text \"$ABC123\"")
	c.set("security ike gateway IKE-GW ike-policy IKE-POL")
	c.set("security ike gateway IKE-GW address 172.16.13.1")
	c.set("security ike gateway IKE-GW external-interface ge-0/0/1")
	c.set("security ike gateway IKE-GW version v2-only")
	c.dpd("IKE-GW")
	c.set("security ipsec proposal standard")
	c.set("security ipsec policy IPSEC-POL proposals standard")
	c.set("security ipsec vpn VPN-to-SRX1 bind-interface st0.0")
	c.set("security ipsec vpn VPN-to-SRX1 ike gateway IKE-GW")
	c.set("security ipsec vpn VPN-to-SRX1 ike ipsec-policy IPSEC-POL")
	c.set("security ipsec vpn VPN-to-SRX1 establish-tunnels immediately")
}
