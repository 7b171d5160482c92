package lab

import (
	"fmt"
	"strings"
)

// ConfigOptions vary the generated gateway configurations.
type ConfigOptions struct {
	// IKEVersion is written as `ike gateway IKE-GW version V` when set
	// ("v1-only" or "v2-only"); empty keeps the reference's implicit v1-only.
	IKEVersion string
	// PreSharedKey replaces the reference's placeholder "$ABC123".
	PreSharedKey string
}

// site holds what differs between SRX1 and SRX2 in reference §3.
type site struct {
	lan, wan, st0, remoteLAN, nextHop, peer         string
	vpn, localBook, localNet, remoteBook, remoteNet string
}

var sites = map[string]site{
	SRX1: {
		lan: "10.100.11.1/24", wan: "172.16.13.1/24", st0: "10.100.200.1/24",
		remoteLAN: "10.100.22.0/24", nextHop: "172.16.13.2", peer: "172.16.23.1",
		vpn: "VPN-to-Host2", localBook: "Host1", localNet: "10.100.11.0/24",
		remoteBook: "Host2", remoteNet: "10.100.22.0/24",
	},
	SRX2: {
		lan: "10.100.22.1/24", wan: "172.16.23.1/24", st0: "10.100.200.2/24",
		remoteLAN: "10.100.11.0/24", nextHop: "172.16.23.2", peer: "172.16.13.1",
		vpn: "VPN-to-Host1", localBook: "Host2", localNet: "10.100.22.0/24",
		remoteBook: "Host1", remoteNet: "10.100.11.0/24",
	},
}

// Config returns the `set` configuration of gateway (SRX1 or SRX2) from
// reference §3, preceded by `set system interface-map` lines that map the
// vendor interface names onto the lab's veth names.
func Config(gateway string, opts ConfigOptions) (string, error) {
	s, ok := sites[gateway]
	if !ok {
		return "", fmt.Errorf("lab config: %q is not a gateway (want %s or %s)", gateway, SRX1, SRX2)
	}
	psk := opts.PreSharedKey
	if psk == "" {
		psk = "$ABC123"
	}
	if strings.ContainsAny(psk, "\"\n") {
		return "", fmt.Errorf("lab config: pre-shared key must not contain a quote or newline")
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "set "+format+"\n", args...) }
	fmt.Fprintf(&b, "# %s of the reference route-based VPN (bpfvpn lab)\n", strings.ToUpper(gateway))
	for _, e := range Endpoints(gateway) {
		line("system interface-map %s %s", e.Vendor, e.Link)
	}
	line("interfaces ge-0/0/0 unit 0 family inet address %s", s.lan)
	line("interfaces ge-0/0/1 unit 0 family inet address %s", s.wan)
	line("interfaces st0 unit 0 family inet address %s", s.st0)
	line("routing-options static route %s next-hop st0.0", s.remoteLAN)
	line("routing-options static route 0.0.0.0/0 next-hop %s", s.nextHop)
	line("security zones security-zone untrust host-inbound-traffic system-services ike")
	line("security zones security-zone untrust interfaces ge-0/0/1.0")
	line("security zones security-zone trust host-inbound-traffic system-services ping")
	line("security zones security-zone trust interfaces ge-0/0/0.0")
	line("security zones security-zone vpn interfaces st0.0")
	line("security ike proposal standard authentication-method pre-shared-keys")
	line("security ike policy IKE-POL mode main")
	line("security ike policy IKE-POL proposals standard")
	line("security ike policy IKE-POL pre-shared-key ascii-text \"%s\"", psk)
	line("security ike gateway IKE-GW ike-policy IKE-POL")
	line("security ike gateway IKE-GW address %s", s.peer)
	line("security ike gateway IKE-GW external-interface ge-0/0/1")
	if opts.IKEVersion != "" {
		line("security ike gateway IKE-GW version %s", opts.IKEVersion)
	}
	line("security ipsec proposal standard")
	line("security ipsec policy IPSEC-POL proposals standard")
	line("security ipsec vpn %s bind-interface st0.0", s.vpn)
	line("security ipsec vpn %s ike gateway IKE-GW", s.vpn)
	line("security ipsec vpn %s ike ipsec-policy IPSEC-POL", s.vpn)
	line("security ipsec vpn %s establish-tunnels immediately", s.vpn)
	line("security address-book %s address %s-Net %s", s.localBook, s.localBook, s.localNet)
	line("security address-book %s attach zone trust", s.localBook)
	line("security address-book %s address %s-Net %s", s.remoteBook, s.remoteBook, s.remoteNet)
	line("security address-book %s attach zone vpn", s.remoteBook)
	policy := func(from, to, name, src, dst string) {
		p := fmt.Sprintf("security policies from-zone %s to-zone %s policy %s", from, to, name)
		line("%s match source-address %s", p, src)
		line("%s match destination-address %s", p, dst)
		line("%s match application any", p)
		line("%s then permit", p)
	}
	policy("trust", "untrust", "default-permit", "any", "any")
	policy("trust", "vpn", "VPN-OUT", s.localBook+"-Net", s.remoteBook+"-Net")
	policy("vpn", "trust", "VPN-IN", s.remoteBook+"-Net", s.localBook+"-Net")
	line("security flow tcp-mss ipsec-vpn mss 1350")
	return b.String(), nil
}
