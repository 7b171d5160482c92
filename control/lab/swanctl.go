package lab

import (
	"fmt"
	"strings"
)

// SwanIfID is the XFRM interface id of the strongSwan gateway's tunnel
// interface: st0.0 maps to if_id 1 as on a bpfvpn gateway (reference §8).
const SwanIfID = 1

// SwanctlConfig returns the swanctl.conf of a strongSwan charon that plays
// gateway (SRX1 or SRX2) of reference §3 against a bpfvpn peer: the same
// addresses and pre-shared key, IKE proposal `standard` with the defaults
// of reference §6 (aes-256-cbc, sha-256, group19, 28800 s), IPsec proposal
// `standard` (ESP aes-256-gcm, no PFS, 3600 s), route-based 0.0.0.0/0
// selectors on an XFRM interface with if_id SwanIfID, and identities that
// are the gateways' addresses (the vendor's default for pre-shared keys).
// Charon answers and never initiates by itself: the bpfvpn side
// establishes immediately.
func SwanctlConfig(gateway string, opts ConfigOptions) (string, error) {
	s, ok := sites[gateway]
	if !ok {
		return "", fmt.Errorf("swanctl config: %q is not a gateway (want %s or %s)", gateway, SRX1, SRX2)
	}
	psk := opts.PreSharedKey
	if psk == "" {
		psk = "$ABC123"
	}
	if strings.ContainsAny(psk, "\"\n\\") {
		return "", fmt.Errorf("swanctl config: pre-shared key must not contain a quote, backslash or newline")
	}
	version := 1
	switch opts.IKEVersion {
	case "", "v1-only":
	case "v2-only":
		version = 2
	default:
		return "", fmt.Errorf("swanctl config: IKE version %q (want v1-only or v2-only)", opts.IKEVersion)
	}
	local := strings.SplitN(s.wan, "/", 2)[0]
	return fmt.Sprintf(`# %[1]s of the reference route-based VPN as strongSwan (bpfvpn lab)
connections {
  ike-gw {
    version = %[2]d
    local_addrs = %[3]s
    remote_addrs = %[4]s
    proposals = aes256-sha256-ecp256
    rekey_time = 28800s
    encap = no
    mobike = no
    local {
      auth = psk
      id = %[3]s
    }
    remote {
      auth = psk
      id = %[4]s
    }
    children {
      %[5]s {
        mode = tunnel
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        esp_proposals = aes256gcm16
        rekey_time = 3600s
        replay_window = 64
        if_id_in = %[6]d
        if_id_out = %[6]d
        start_action = none
        dpd_action = clear
      }
    }
  }
}
secrets {
  ike-peer {
    id-1 = %[4]s
    secret = "%[7]s"
  }
}
`, strings.ToUpper(gateway), version, local, s.peer, s.vpn, SwanIfID, psk), nil
}
