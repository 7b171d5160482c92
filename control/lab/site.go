package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// Site3 is an optional third gateway on the Internet node, for tests that
// need a second peer of SRX1 (a legitimate gateway connecting during an
// IKE flood). It is not part of the reference topology.
const Site3 = "srx3"

// Site3Wire links the Internet node to Site3.
var Site3Wire = Wire{
	A: Endpoint{Node: Internet, Link: "eth2", Address: netip.MustParsePrefix("172.16.33.2/24")},
	B: Endpoint{Node: Site3, Link: "eth1", Address: netip.MustParsePrefix("172.16.33.1/24")},
}

// AddSite3 creates Site3's namespace, wires it to the Internet node with
// Site3Wire and gives it a default route through the Internet node. Up must
// have run; RemoveSite3 (not Down) removes it.
func (l *Lab) AddSite3() error {
	if err := l.check(); err != nil {
		return err
	}
	ns, _, err := OpenNamed(l.Namespace(Site3))
	if err != nil {
		return fmt.Errorf("add %s: %w", Site3, err)
	}
	err = l.setupNode(Site3, ns)
	ns.Close()
	if err != nil {
		return fmt.Errorf("add %s: %w", Site3, err)
	}
	if err := l.wire(Site3Wire); err != nil {
		return fmt.Errorf("add %s: wire: %w", Site3, err)
	}
	if err := l.defaultRoute(Site3, Site3Wire.A.Address.Addr()); err != nil {
		return fmt.Errorf("add %s: default route: %w", Site3, err)
	}
	return nil
}

// RemoveSite3 deletes Site3's namespace (and with it the wire).
func (l *Lab) RemoveSite3() error { return DeleteNamed(l.Namespace(Site3)) }

// Site3SRX1Config is what SRX1's reference configuration needs to accept
// Site3 as a second IKEv2 peer: st0.1 in zone vpn, gateway IKE-GW3 and VPN
// VPN-to-Site3 that waits for traffic, so SRX1 only answers and Site3
// initiates.
const Site3SRX1Config = `set interfaces st0 unit 1 family inet address 10.100.201.1/24
set security zones security-zone vpn interfaces st0.1
set security ike gateway IKE-GW3 ike-policy IKE-POL
set security ike gateway IKE-GW3 address 172.16.33.1
set security ike gateway IKE-GW3 external-interface ge-0/0/1
set security ike gateway IKE-GW3 version v2-only
set security ipsec vpn VPN-to-Site3 bind-interface st0.1
set security ipsec vpn VPN-to-Site3 ike gateway IKE-GW3
set security ipsec vpn VPN-to-Site3 ike ipsec-policy IPSEC-POL
set security ipsec vpn VPN-to-Site3 establish-tunnels on-traffic
`

// Site3SwanctlConfig is the swanctl.conf of a charon at Site3 that
// connects to SRX1 (Site3SRX1Config) with the reference proposals over
// IKEv2 when told to (`swanctl --initiate --child VPN-to-SRX1`).
func Site3SwanctlConfig(psk string) (string, error) {
	if psk == "" {
		psk = "$ABC123"
	}
	if strings.ContainsAny(psk, "\"\n\\") {
		return "", fmt.Errorf("swanctl config: pre-shared key must not contain a quote, backslash or newline")
	}
	return fmt.Sprintf(`connections {
  site3 {
    version = 2
    local_addrs = 172.16.33.1
    remote_addrs = 172.16.13.1
    proposals = aes256-sha256-ecp256
    encap = no
    mobike = no
    local {
      auth = psk
      id = 172.16.33.1
    }
    remote {
      auth = psk
      id = 172.16.13.1
    }
    children {
      VPN-to-SRX1 {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        esp_proposals = aes256gcm16
        if_id_in = %[1]d
        if_id_out = %[1]d
        start_action = none
      }
    }
  }
}
secrets {
  ike-srx1 {
    id-1 = 172.16.13.1
    secret = "%[2]s"
  }
}
`, SwanIfID, psk), nil
}
