package config

import "strings"

// FillDefaults adds to the tree every leaf whose default applies (reference
// §6, table version DefaultsVersion), marked so that displays can tell them
// apart. Inactive statements are left alone.
func (t *Tree) FillDefaults() {
	sec := t.root.child("security")
	if sec == nil {
		return
	}
	if ike := sec.child("ike"); ike != nil {
		active(ike, func(k *node) {
			switch k.kw {
			case "proposal":
				ensureLeaf(k, "authentication-method", Defaults.IKEAuthenticationMethod)
				ensureLeaf(k, "dh-group", "group"+itoa(Defaults.IKEDHGroup))
				ensureLeaf(k, "authentication-algorithm", Defaults.IKEAuthenticationAlgorithm)
				ensureLeaf(k, "encryption-algorithm", Defaults.IKEEncryptionAlgorithm)
				ensureLeaf(k, "lifetime-seconds", itoa(Defaults.IKELifetimeSeconds))
			case "policy":
				ensureLeaf(k, "mode", Defaults.IKEPolicyMode)
				if set := k.child("proposal-set"); set != nil {
					if entries, ok := ikeProposalSets[set.val()]; ok {
						var parts []string
						for _, e := range entries {
							parts = append(parts, "group"+itoa(e.dh)+" "+e.enc+" "+e.auth)
						}
						set.extra().note = "proposes " + strings.Join(parts, ", ")
					}
				}
			case "gateway":
				ensureLeaf(k, "version", "v"+itoa(Defaults.IKEGatewayVersion)+"-only")
				if dpd := k.child("dead-peer-detection"); dpd != nil {
					if dpd.child("optimized") == nil && dpd.child("probe-idle-tunnel") == nil && dpd.child("always-send") == nil {
						ensureLeaf(dpd, Defaults.DPDMode, "")
					}
					ensureLeaf(dpd, "interval", itoa(Defaults.DPDInterval))
					ensureLeaf(dpd, "threshold", itoa(Defaults.DPDThreshold))
				}
			}
		})
	}
	if ipsec := sec.child("ipsec"); ipsec != nil {
		active(ipsec, func(k *node) {
			switch k.kw {
			case "proposal":
				ensureLeaf(k, "protocol", Defaults.IPsecProtocol)
				enc, auth := k.child("encryption-algorithm"), k.child("authentication-algorithm")
				ah := k.child("protocol") != nil && k.child("protocol").val() == "ah"
				switch {
				case ah:
					ensureLeaf(k, "authentication-algorithm", ipsecDefaultAuth)
				case enc == nil && auth == nil:
					ensureLeaf(k, "encryption-algorithm", Defaults.IPsecEncryptionAlgorithm)
				case enc == nil:
					ensureLeaf(k, "encryption-algorithm", ipsecDefaultCBC)
				case !isGCM(enc.val()):
					ensureLeaf(k, "authentication-algorithm", ipsecDefaultAuth)
				}
				ensureLeaf(k, "lifetime-seconds", itoa(Defaults.IPsecLifetimeSeconds))
			case "policy":
				if set := k.child("proposal-set"); set != nil {
					if s, ok := ipsecProposalSets[set.val()]; ok {
						var parts []string
						for _, e := range s.proposals {
							p := "esp " + e.enc
							if e.auth != "" {
								p += " " + e.auth
							}
							parts = append(parts, p)
						}
						note := "proposes " + strings.Join(parts, ", ")
						if s.pfs != 0 && k.child("perfect-forward-secrecy") == nil {
							note += "; pfs group" + itoa(s.pfs)
						}
						set.extra().note = note
					}
				}
			case "vpn":
				ensureLeaf(k, "establish-tunnels", Defaults.EstablishTunnels)
				ensureLeaf(k, "df-bit", Defaults.DFBit)
			}
		})
	}
	if flow := sec.child("flow"); flow != nil {
		if mss := flow.child("tcp-mss"); mss != nil {
			if v := mss.child("ipsec-vpn"); v != nil {
				ensureLeaf(v, "mss", itoa(Defaults.TCPMSSIPsecVPN))
			}
		}
	}
}

// ensureLeaf adds leaf (or flag when value is "") kw below n unless present.
func ensureLeaf(n *node, kw, value string) {
	if n.sp == nil || n.find(nodeKey{kw: kw}) != nil {
		return
	}
	sp := n.sp.lookup(kw)
	if sp == nil {
		return
	}
	c := &node{kw: kw, sp: sp, x: &nodeExtra{dflt: true}}
	if value != "" {
		c.vals = []word{{s: value}}
	}
	n.add(c)
}
