package topology

import (
	"fmt"
	"net/netip"
	"strings"

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

func dpd(gw string) string {
	p := "set security ike gateway " + gw + " dead-peer-detection "
	return fmt.Sprintf("%salways-send\n%sinterval %d\n%sthreshold %d\n", p, p, DPDInterval, p, DPDThreshold)
}

// BackupConfig returns the configuration of gateway (lab.SRX1, lab.SRX2 or
// SRX3) in the primary/backup topology, IKEv2 throughout.
func BackupConfig(gateway string) (string, error) {
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
		b.WriteString(dpd("IKE-GW"))
		line("interfaces st0 unit 1 family inet address 10.100.201.1/24")
		line("security zones security-zone vpn interfaces st0.1")
		line("security ike gateway IKE-GW3 ike-policy IKE-POL")
		line("security ike gateway IKE-GW3 address %s", BackupSite.WAN.Addr())
		line("security ike gateway IKE-GW3 external-interface ge-0/0/1")
		line("security ike gateway IKE-GW3 version v2-only")
		b.WriteString(dpd("IKE-GW3"))
		line("security ipsec vpn VPN-to-SRX3 bind-interface st0.1")
		line("security ipsec vpn VPN-to-SRX3 ike gateway IKE-GW3")
		line("security ipsec vpn VPN-to-SRX3 ike ipsec-policy IPSEC-POL")
		line("security ipsec vpn VPN-to-SRX3 establish-tunnels immediately")
		line("routing-options static route %s next-hop st0.0", ServicePrefix)
		line("routing-options static route %s qualified-next-hop st0.1 preference 10", ServicePrefix)
	case lab.SRX2:
		base, err := lab.Config(lab.SRX2, opts)
		if err != nil {
			return "", err
		}
		b.WriteString(base)
		b.WriteString(dpd("IKE-GW"))
		line("security zones security-zone vpn host-inbound-traffic system-services ping")
	case SRX3:
		b.WriteString(site3Config("10.100.201.2/24", []string{"10.100.11.0/24"}))
	default:
		return "", fmt.Errorf("backup config: unknown gateway %q", gateway)
	}
	return b.String(), nil
}

// site3Config returns SRX3's configuration: one IKEv2 VPN on st0.0 (address
// st0) to SRX1 with DPD, a default route to the Internet node and routes
// through st0.0 to the given prefixes.
func site3Config(st0 string, viaTunnel []string) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "set "+format+"\n", args...) }
	fmt.Fprintf(&b, "# SRX3: third gateway, peer of SRX1\n")
	line("system interface-map ge-0/0/1 %s", SiteWANLink)
	line("interfaces ge-0/0/1 unit 0 family inet address %s", BackupSite.WAN)
	line("interfaces st0 unit 0 family inet address %s", st0)
	for _, p := range viaTunnel {
		line("routing-options static route %s next-hop st0.0", p)
	}
	line("routing-options static route 0.0.0.0/0 next-hop %s", BackupSite.InternetAddr.Addr())
	line("security zones security-zone untrust host-inbound-traffic system-services ike")
	line("security zones security-zone untrust interfaces ge-0/0/1.0")
	line("security zones security-zone vpn host-inbound-traffic system-services ping")
	line("security zones security-zone vpn interfaces st0.0")
	line("security ike proposal standard authentication-method pre-shared-keys")
	line("security ike policy IKE-POL mode main")
	line("security ike policy IKE-POL proposals standard")
	line("security ike policy IKE-POL pre-shared-key ascii-text \"$ABC123\"")
	line("security ike gateway IKE-GW ike-policy IKE-POL")
	line("security ike gateway IKE-GW address 172.16.13.1")
	line("security ike gateway IKE-GW external-interface ge-0/0/1")
	line("security ike gateway IKE-GW version v2-only")
	b.WriteString(dpd("IKE-GW"))
	line("security ipsec proposal standard")
	line("security ipsec policy IPSEC-POL proposals standard")
	line("security ipsec vpn VPN-to-SRX1 bind-interface st0.0")
	line("security ipsec vpn VPN-to-SRX1 ike gateway IKE-GW")
	line("security ipsec vpn VPN-to-SRX1 ike ipsec-policy IPSEC-POL")
	line("security ipsec vpn VPN-to-SRX1 establish-tunnels immediately")
	return b.String()
}
