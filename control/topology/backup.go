package topology

import (
	"net/netip"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// The primary/backup topology: SRX1 of the lab has its reference VPN to
// SRX2 on st0.0 (primary) and a second VPN on st0.1 to SRX3 (backup), a
// site attached to the Internet node. SRX2 and SRX3 both answer for the
// service prefix ServicePrefix; SRX1 routes it with `next-hop st0.0`
// (preference 5) and `qualified-next-hop st0.1 preference 10`.

// SRX3 is the backup peer's node name.
const SRX3 = "srx3"

// BackupSite is SRX3's attachment to the Internet node.
var BackupSite = Site{
	Name:         SRX3,
	WAN:          netip.MustParsePrefix("172.16.33.1/24"),
	InternetAddr: netip.MustParsePrefix("172.16.33.2/24"),
	InternetLink: "eth3",
}

// ServicePrefix is the prefix reachable through both peers; ServiceAddr is
// the address each of SRX2 and SRX3 holds in it.
var (
	ServicePrefix = netip.MustParsePrefix("10.100.99.0/24")
	ServiceAddr   = netip.MustParseAddr("10.100.99.1")
)

// DPD of the primary/backup topology: a dead peer is declared after about
// Interval × (Threshold+1) seconds of silence.
const (
	DPDInterval  = 2
	DPDThreshold = 3
)

// BackupConfig returns the configuration of gateway (lab.SRX1, lab.SRX2 or
// SRX3) in the primary/backup topology, IKEv2 throughout.
func BackupConfig(gateway string) (string, error) {
	c, err := newSiteConfig("backup", gateway)
	if err != nil {
		return "", err
	}
	switch gateway {
	case lab.SRX1:
		c.dpd("IKE-GW")
		c.set("interfaces st0 unit 1 family inet address 10.100.201.1/24")
		c.set("security zones security-zone vpn interfaces st0.1")
		c.gatewaySRX3()
		c.dpd("IKE-GW3")
		c.vpnToSRX3("st0.1")
		c.set("routing-options static route %s next-hop st0.0", ServicePrefix)
		c.set("routing-options static route %s qualified-next-hop st0.1 preference 10", ServicePrefix)
	case lab.SRX2:
		c.dpd("IKE-GW")
		c.set("security zones security-zone vpn host-inbound-traffic system-services ping")
	case SRX3:
		c.site3("10.100.201.2/24", []string{"10.100.11.0/24"})
	}
	return c.String(), nil
}
