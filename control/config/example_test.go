package config_test

import (
	"fmt"

	"github.com/bpfvpn/bpfvpn/control/config"
)

func ExampleParseBytes() {
	text := `
set interfaces eth1 unit 0 family inet address 192.0.2.1/24
set interfaces st0 unit 3 family inet address 10.9.0.1/30
set security zones security-zone untrust interfaces eth1 host-inbound-traffic system-services ike
set security zones security-zone vpn interfaces st0.3
set security ike proposal p dh-group group20
set security ike policy ip proposals p
set security ike policy ip pre-shared-key ascii-text "correct horse"
set security ike gateway g ike-policy ip address 192.0.2.2 external-interface eth1 version v2-only
set security ipsec policy sp proposal-set prime-256
set security ipsec vpn v bind-interface st0.3 ike gateway g ipsec-policy sp
set security ipsec vpn v establish-tunnels immediately
set security flow tcp-mss ipsec-vpn mss 1360
`
	cfg, diags := config.ParseBytes("example.set", []byte(text))
	if diags.HasErrors() {
		fmt.Print(diags)
		return
	}
	v := cfg.IPsec.VPNs[0]
	g := v.Gateway
	fmt.Println(v.Name, v.BindInterface, "if_id", v.IfID, "immediately", v.EstablishImmediately)
	fmt.Println(g.Name, "IKEv", g.Version, g.LocalAddress, "->", g.Addresses[0], "via", g.ExternalLinux)
	fmt.Println("ike dh", g.Policy.Proposals[0].DHGroup, g.Policy.Proposals[0].EncryptionAlgorithm, "key", g.Policy.PreSharedKey)
	fmt.Println("esp", v.Policy.Proposals[0].EncryptionAlgorithm, "pfs group", v.Policy.PFSGroup)
	fmt.Println("untrust allows ike:", cfg.Unit("eth1").HostInbound.Allows("ike"), "mss", cfg.Flow.TCPMSSIPsecVPN)
	// Output:
	// v st0.3 if_id 4 immediately true
	// g IKEv 2 192.0.2.1 -> 192.0.2.2 via eth1
	// ike dh 20 aes-256-cbc key <redacted>
	// esp aes-256-gcm pfs group 20
	// untrust allows ike: true mss 1360
}
