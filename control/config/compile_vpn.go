package config

import (
	"encoding/hex"
	"net/netip"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/config/secret"
)

func (c *compiler) weak(n *node, what string) {
	c.d.warnf(valPos(n), "%s %s is weak; accepted because it is named explicitly (prefer group19/group20, aes-256-gcm, sha-256)", n.kw, what)
}

func (c *compiler) ike(n *node) {
	active(n, func(k *node) {
		if k.kw == "proposal" {
			c.ikeProposal(k)
		}
	})
	active(n, func(k *node) {
		if k.kw == "policy" {
			c.ikePolicy(k)
		}
	})
	active(n, func(k *node) {
		if k.kw == "gateway" {
			c.ikeGateway(k)
		}
	})
}

func (c *compiler) ikeProposal(k *node) {
	p := &IKEProposal{
		Name:                    k.name,
		AuthenticationMethod:    Defaults.IKEAuthenticationMethod,
		DHGroup:                 Defaults.IKEDHGroup,
		AuthenticationAlgorithm: Defaults.IKEAuthenticationAlgorithm,
		EncryptionAlgorithm:     Defaults.IKEEncryptionAlgorithm,
		LifetimeSeconds:         Defaults.IKELifetimeSeconds,
		Pos:                     c.p(k),
	}
	active(k, func(x *node) {
		switch x.kw {
		case "authentication-method":
			if v, ok := c.enum(x, ikeAuthMethods...); ok {
				p.AuthenticationMethod = v
				if v != "pre-shared-keys" {
					c.d.warnf(valPos(x), "authentication-method %s: bpfvpn only implements pre-shared-keys", v)
				}
			}
		case "dh-group":
			g, ok := dhGroups[x.val()]
			if !ok {
				c.d.errorf(valPos(x), "dh-group: invalid value %q (want group1, group2, group5, group14, group15, group16, group19, group20, group21, group24)", truncate(x.val()))
				return
			}
			if weakGroups[g] {
				c.weak(x, x.val())
			}
			p.DHGroup = g
		case "authentication-algorithm":
			if v, ok := c.enum(x, ikeAuthAlgorithms...); ok {
				if weakAlgorithms[v] {
					c.weak(x, v)
				}
				p.AuthenticationAlgorithm = v
			}
		case "encryption-algorithm":
			if v, ok := c.enum(x, ikeEncryptionAlgorithms...); ok {
				if weakAlgorithms[v] {
					c.weak(x, v)
				}
				p.EncryptionAlgorithm = v
			}
		case "lifetime-seconds":
			p.LifetimeSeconds, _ = c.num(x, 180, 86400)
		}
	})
	c.ikeProposals[p.Name] = p
	c.cfg.IKE.Proposals = append(c.cfg.IKE.Proposals, p)
}

func (c *compiler) ikePolicy(k *node) {
	pol := &IKEPolicy{Name: k.name, Mode: Defaults.IKEPolicyMode, Pos: c.p(k)}
	var props, set, psk *node
	active(k, func(x *node) {
		switch x.kw {
		case "mode":
			pol.Mode, _ = c.enum(x, "main", "aggressive")
		case "proposals":
			props = x
		case "proposal-set":
			set = x
		case "pre-shared-key":
			psk = x
		}
	})
	switch {
	case props != nil && set != nil:
		c.d.errorf(set.p, "ike policy %s: proposals and proposal-set are exclusive", k.name)
	case props != nil:
		for _, w := range props.vals {
			pol.ProposalNames = append(pol.ProposalNames, w.s)
			p := c.ikeProposals[w.s]
			if p == nil {
				c.d.errorf(w.p, "ike policy %s: undefined ike proposal %s", k.name, w.s)
				continue
			}
			pol.Proposals = append(pol.Proposals, p)
		}
	case set != nil:
		pol.ProposalSet = set.val()
		entries, ok := ikeProposalSets[pol.ProposalSet]
		if !ok {
			c.d.errorf(valPos(set), "ike policy %s: unknown proposal-set %q", k.name, truncate(pol.ProposalSet))
			break
		}
		weak := false
		for i, e := range entries {
			pol.Proposals = append(pol.Proposals, &IKEProposal{
				Name:                    pol.ProposalSet + "-" + itoa(i+1),
				AuthenticationMethod:    "pre-shared-keys",
				DHGroup:                 e.dh,
				AuthenticationAlgorithm: e.auth,
				EncryptionAlgorithm:     e.enc,
				LifetimeSeconds:         Defaults.IKELifetimeSeconds,
				FromSet:                 pol.ProposalSet,
			})
			weak = weak || weakGroups[e.dh] || weakAlgorithms[e.enc] || weakAlgorithms[e.auth]
		}
		if weak {
			c.weak(set, pol.ProposalSet+" (it proposes DES/3DES/MD5 or DH group 1/2/5)")
		}
	default:
		c.d.errorf(k.p, "ike policy %s: proposals or proposal-set is required", k.name)
	}
	needPSK := false
	for _, p := range pol.Proposals {
		needPSK = needPSK || p.AuthenticationMethod == "pre-shared-keys"
	}
	if psk != nil {
		pol.PreSharedKey = c.preSharedKey(k, psk)
	} else if needPSK {
		c.d.errorf(k.p, "ike policy %s: pre-shared-key is required for authentication-method pre-shared-keys", k.name)
	}
	c.ikePolicies[pol.Name] = pol
	c.cfg.IKE.Policies = append(c.cfg.IKE.Policies, pol)
}

// preSharedKey decodes the $9$ value; error messages never include it.
func (c *compiler) preSharedKey(pol, psk *node) secret.Value {
	var leafNode *node
	active(psk, func(x *node) { leafNode = x })
	if leafNode == nil {
		c.d.errorf(psk.p, "ike policy %s: pre-shared-key needs ascii-text or hexadecimal", pol.name)
		return secret.Value{}
	}
	enc := leafNode.val()
	plain, err := secret.Decode(enc)
	if err != nil {
		c.d.errorf(valPos(leafNode), "ike policy %s: pre-shared-key cannot be decoded", pol.name)
		return secret.Value{}
	}
	if leafNode.kw == "hexadecimal" {
		b, err := hex.DecodeString(strings.TrimPrefix(string(plain), "0x"))
		if err != nil || len(b) == 0 {
			c.d.errorf(valPos(leafNode), "ike policy %s: pre-shared-key hexadecimal is not a hex string", pol.name)
			return secret.Value{}
		}
		plain = b
	}
	if len(plain) == 0 {
		c.d.errorf(valPos(leafNode), "ike policy %s: pre-shared-key is empty", pol.name)
	}
	return secret.New(plain, enc)
}

func (c *compiler) ikeGateway(k *node) {
	g := &IKEGateway{Name: k.name, Version: Defaults.IKEGatewayVersion, NATTraversal: true, Pos: c.p(k)}
	var ext, local *node
	active(k, func(x *node) {
		switch x.kw {
		case "ike-policy":
			g.PolicyName = x.val()
			g.Policy = c.ikePolicies[g.PolicyName]
			if g.Policy == nil {
				c.d.errorf(valPos(x), "ike gateway %s: undefined ike policy %s", k.name, g.PolicyName)
			}
		case "address":
			for _, w := range x.vals {
				if a, ok := c.parseAddr(x, w); ok {
					g.Addresses = append(g.Addresses, a)
				}
			}
		case "external-interface":
			ext = x
		case "local-address":
			local = x
		case "version":
			if v, ok := c.enum(x, "v1-only", "v2-only"); ok {
				g.Version = int(v[1] - '0')
			}
		case "dead-peer-detection":
			g.DPD = &DPD{Mode: Defaults.DPDMode, Interval: Defaults.DPDInterval, Threshold: Defaults.DPDThreshold}
			active(x, func(y *node) {
				switch y.kw {
				case "optimized", "probe-idle-tunnel", "always-send":
					g.DPD.Mode = y.kw
				case "interval":
					g.DPD.Interval, _ = c.num(y, 2, 60)
				case "threshold":
					g.DPD.Threshold, _ = c.num(y, 1, 5)
				}
			})
		case "nat-traversal":
			if x.child("disable") != nil {
				g.NATTraversal = false
			}
		case "no-nat-traversal":
			g.NATTraversal = false
		case "local-identity", "remote-identity":
			id := c.identity(x)
			if x.kw == "local-identity" {
				g.LocalIdentity = id
			} else {
				g.RemoteIdentity = id
			}
		case "general-ikeid":
			g.GeneralIKEID = true
		}
	})
	if g.PolicyName == "" {
		c.d.errorf(k.p, "ike gateway %s: ike-policy is required", k.name)
	}
	if len(g.Addresses) == 0 {
		c.d.errorf(k.p, "ike gateway %s: address is required", k.name)
	}
	if local != nil {
		if a, ok := c.parseAddr(local, local.vals[0]); ok {
			g.LocalAddress = a
			if !c.isLocalAddress(a) {
				c.d.errorf(valPos(local), "ike gateway %s: local-address %s is not an address of any interface", k.name, a)
			}
		}
	}
	if ext == nil {
		c.d.errorf(k.p, "ike gateway %s: external-interface is required", k.name)
	} else {
		u, name := c.lookupUnit(ext.val())
		g.ExternalInterface = name
		if u == nil {
			c.d.errorf(valPos(ext), "ike gateway %s: undefined interface %s (external-interface)", k.name, name)
		} else {
			g.ExternalLinux = u.LinuxName
			want6 := len(g.Addresses) > 0 && g.Addresses[0].Is6()
			var addrs []netip.Prefix
			if want6 {
				addrs = u.Inet6
			} else {
				addrs = u.Inet
			}
			if len(addrs) == 0 {
				fam := "inet"
				if want6 {
					fam = "inet6"
				}
				c.d.errorf(valPos(ext), "ike gateway %s: external interface %s has no %s address", k.name, name, fam)
			} else if !g.LocalAddress.IsValid() {
				g.LocalAddress = addrs[0].Addr()
			}
		}
	}
	if g.Policy != nil && g.Policy.Mode == "aggressive" && g.Version == 2 {
		c.d.warnf(k.p, "ike gateway %s: mode aggressive of ike policy %s has no meaning for IKEv2", k.name, g.PolicyName)
	}
	c.gateways[g.Name] = g
	c.cfg.IKE.Gateways = append(c.cfg.IKE.Gateways, g)
}

// isLocalAddress reports whether a is configured on an interface unit.
func (c *compiler) isLocalAddress(a netip.Addr) bool {
	for _, ifc := range c.cfg.Interfaces {
		for _, u := range ifc.Units {
			for _, p := range append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...) {
				if p.Addr() == a {
					return true
				}
			}
		}
	}
	return false
}

func (c *compiler) identity(x *node) *Identity {
	var id *Identity
	active(x, func(y *node) {
		id = &Identity{Type: y.kw, Value: y.val()}
		switch y.kw {
		case "inet", "inet6":
			a, err := netip.ParseAddr(y.val())
			if err != nil || a.Is6() != (y.kw == "inet6") {
				c.d.errorf(valPos(y), "%s %s: %q is not an %s address", x.kw, y.kw, truncate(y.val()), y.kw)
			}
		}
	})
	if id == nil {
		c.d.errorf(x.p, "%s needs inet, inet6, hostname, user-at-hostname or distinguished-name", x.kw)
	}
	return id
}

func (c *compiler) ipsec(n *node) {
	active(n, func(k *node) {
		if k.kw == "proposal" {
			c.ipsecProposal(k)
		}
	})
	active(n, func(k *node) {
		if k.kw == "policy" {
			c.ipsecPolicy(k)
		}
	})
	active(n, func(k *node) {
		if k.kw == "vpn" {
			c.vpn(k)
		}
	})
}

func (c *compiler) ipsecProposal(k *node) {
	p := &IPsecProposal{
		Name:              k.name,
		Protocol:          Defaults.IPsecProtocol,
		LifetimeSeconds:   Defaults.IPsecLifetimeSeconds,
		LifetimeKilobytes: Defaults.IPsecLifetimeKilobytes,
		Pos:               c.p(k),
	}
	var encN, authN *node
	active(k, func(x *node) {
		switch x.kw {
		case "protocol":
			p.Protocol, _ = c.enum(x, "esp", "ah")
		case "encryption-algorithm":
			if v, ok := c.enum(x, ipsecEncryptionAlgorithms...); ok {
				if weakAlgorithms[v] {
					c.weak(x, v)
				}
				p.EncryptionAlgorithm = v
				encN = x
			}
		case "authentication-algorithm":
			if v, ok := c.enum(x, ipsecAuthAlgorithms...); ok {
				if weakAlgorithms[v] {
					c.weak(x, v)
				}
				p.AuthenticationAlgorithm = v
				authN = x
			}
		case "lifetime-seconds":
			p.LifetimeSeconds, _ = c.num(x, 180, 86400)
		case "lifetime-kilobytes":
			p.LifetimeKilobytes, _ = c.num(x, 64, 4294967294)
		}
	})
	switch {
	case p.Protocol == "ah":
		if encN != nil {
			c.d.errorf(encN.p, "ipsec proposal %s: protocol ah has no encryption-algorithm", k.name)
		}
		if p.AuthenticationAlgorithm == "" {
			p.AuthenticationAlgorithm = ipsecDefaultAuth
		}
	case p.EncryptionAlgorithm == "" && p.AuthenticationAlgorithm == "":
		p.EncryptionAlgorithm = Defaults.IPsecEncryptionAlgorithm
	case p.EncryptionAlgorithm == "":
		p.EncryptionAlgorithm = ipsecDefaultCBC
	case isGCM(p.EncryptionAlgorithm) && authN != nil:
		c.d.errorf(authN.p, "ipsec proposal %s: authentication-algorithm must not be set with %s (GCM authenticates)", k.name, p.EncryptionAlgorithm)
	case !isGCM(p.EncryptionAlgorithm) && p.AuthenticationAlgorithm == "":
		p.AuthenticationAlgorithm = ipsecDefaultAuth
	}
	c.ipsecProps[p.Name] = p
	c.cfg.IPsec.Proposals = append(c.cfg.IPsec.Proposals, p)
}

// Defaults for IPsec proposals that name only one of the two algorithms.
const (
	ipsecDefaultAuth = "hmac-sha-256-128"
	ipsecDefaultCBC  = "aes-256-cbc"
)

func (c *compiler) ipsecPolicy(k *node) {
	pol := &IPsecPolicy{Name: k.name, Pos: c.p(k)}
	var props, set *node
	active(k, func(x *node) {
		switch x.kw {
		case "proposals":
			props = x
		case "proposal-set":
			set = x
		case "perfect-forward-secrecy":
			if keys := x.child("keys"); keys != nil {
				g, ok := dhGroups[keys.val()]
				if !ok {
					c.d.errorf(valPos(keys), "perfect-forward-secrecy keys: invalid value %q (want groupN)", truncate(keys.val()))
					return
				}
				if weakGroups[g] {
					c.weak(keys, keys.val())
				}
				pol.PFSGroup = g
			}
		}
	})
	switch {
	case props != nil && set != nil:
		c.d.errorf(set.p, "ipsec policy %s: proposals and proposal-set are exclusive", k.name)
	case props != nil:
		for _, w := range props.vals {
			pol.ProposalNames = append(pol.ProposalNames, w.s)
			p := c.ipsecProps[w.s]
			if p == nil {
				c.d.errorf(w.p, "ipsec policy %s: undefined ipsec proposal %s", k.name, w.s)
				continue
			}
			pol.Proposals = append(pol.Proposals, p)
		}
	case set != nil:
		pol.ProposalSet = set.val()
		s, ok := ipsecProposalSets[pol.ProposalSet]
		if !ok {
			c.d.errorf(valPos(set), "ipsec policy %s: unknown proposal-set %q", k.name, truncate(pol.ProposalSet))
			break
		}
		weak := weakGroups[s.pfs]
		for i, e := range s.proposals {
			pol.Proposals = append(pol.Proposals, &IPsecProposal{
				Name:                    pol.ProposalSet + "-" + itoa(i+1),
				Protocol:                "esp",
				EncryptionAlgorithm:     e.enc,
				AuthenticationAlgorithm: e.auth,
				LifetimeSeconds:         Defaults.IPsecLifetimeSeconds,
				FromSet:                 pol.ProposalSet,
			})
			weak = weak || weakAlgorithms[e.enc] || weakAlgorithms[e.auth]
		}
		if pol.PFSGroup == 0 {
			pol.PFSGroup = s.pfs
		}
		if weak {
			c.weak(set, pol.ProposalSet+" (it proposes DES/3DES/MD5 or DH group 1/2/5)")
		}
	default:
		c.d.errorf(k.p, "ipsec policy %s: proposals or proposal-set is required", k.name)
	}
	c.ipsecPols[pol.Name] = pol
	c.cfg.IPsec.Policies = append(c.cfg.IPsec.Policies, pol)
}

func (c *compiler) vpn(k *node) {
	v := &VPN{
		Name:  k.name,
		DFBit: Defaults.DFBit,
		ProxyIdentity: ProxyIdentity{
			Local:   netip.MustParsePrefix("0.0.0.0/0"),
			Remote:  netip.MustParsePrefix("0.0.0.0/0"),
			Service: Defaults.ProxyIdentityService,
		},
		Pos: c.p(k),
	}
	var bind *node
	active(k, func(x *node) {
		switch x.kw {
		case "bind-interface":
			bind = x
		case "ike":
			active(x, func(y *node) {
				switch y.kw {
				case "gateway":
					v.GatewayName = y.val()
					v.Gateway = c.gateways[v.GatewayName]
					if v.Gateway == nil {
						c.d.errorf(valPos(y), "ipsec vpn %s: undefined ike gateway %s", k.name, v.GatewayName)
					}
				case "ipsec-policy":
					v.PolicyName = y.val()
					v.Policy = c.ipsecPols[v.PolicyName]
					if v.Policy == nil {
						c.d.errorf(valPos(y), "ipsec vpn %s: undefined ipsec policy %s", k.name, v.PolicyName)
					}
				case "proxy-identity":
					c.proxyIdentity(k, y, &v.ProxyIdentity)
				}
			})
		case "establish-tunnels":
			if s, ok := c.enum(x, "immediately", "on-traffic"); ok {
				v.EstablishImmediately = s == "immediately"
			}
		case "df-bit":
			v.DFBit, _ = c.enum(x, "clear", "copy", "set")
		case "vpn-monitor":
			m := &VPNMonitor{}
			active(x, func(y *node) {
				switch y.kw {
				case "optimized":
					m.Optimized = true
				case "source-interface":
					u, name := c.lookupUnit(y.val())
					m.SourceInterface = name
					if u == nil {
						c.d.errorf(valPos(y), "ipsec vpn %s: undefined interface %s (vpn-monitor source-interface)", k.name, name)
					}
				case "destination-ip":
					m.DestinationIP, _ = c.parseAddr(y, y.vals[0])
				}
			})
			v.VPNMonitor = m
		}
	})
	if v.GatewayName == "" {
		c.d.errorf(k.p, "ipsec vpn %s: ike gateway is required", k.name)
	}
	if v.PolicyName == "" {
		c.d.errorf(k.p, "ipsec vpn %s: ike ipsec-policy is required", k.name)
	}
	if bind == nil {
		c.d.errorf(k.p, "ipsec vpn %s: bind-interface is required (a route-based VPN is bound to an st0 unit)", k.name)
	} else {
		name := unitName(bind.val())
		v.BindInterface = name
		u := c.units[name]
		switch {
		case !strings.HasPrefix(name, "st0."):
			c.d.errorf(valPos(bind), "ipsec vpn %s: bind-interface %s is not an st0 unit", k.name, name)
		case u == nil:
			c.d.errorf(valPos(bind), "ipsec vpn %s: undefined interface %s (bind-interface)", k.name, name)
		default:
			v.IfID = u.IfID
			// An IPv6-only tunnel defaults to ::/0 selectors.
			if !v.ProxyIdentity.Configured && len(u.Inet) == 0 && len(u.Inet6) > 0 {
				v.ProxyIdentity.Local = netip.MustParsePrefix("::/0")
				v.ProxyIdentity.Remote = netip.MustParsePrefix("::/0")
			}
		}
	}
	c.vpns[v.Name] = v
	c.vpnNodes[v] = k
	c.cfg.IPsec.VPNs = append(c.cfg.IPsec.VPNs, v)
}

func (c *compiler) proxyIdentity(vpn, y *node, pi *ProxyIdentity) {
	pi.Configured = true
	active(y, func(z *node) {
		switch z.kw {
		case "local", "remote":
			p, ok := c.parseNetPrefix("proxy-identity", z.kw, z.vals[0])
			if !ok {
				return
			}
			if z.kw == "local" {
				pi.Local = p
			} else {
				pi.Remote = p
			}
		case "service":
			pi.Service = z.val()
			terms, _, ok := c.appTerms(pi.Service, true)
			if !ok {
				c.d.errorf(valPos(z), "ipsec vpn %s: undefined application %s (proxy-identity service)", vpn.name, pi.Service)
			}
			pi.ServiceTerms = terms
		}
	})
	if pi.Local.Addr().Is6() && pi.Remote == netip.MustParsePrefix("0.0.0.0/0") {
		pi.Remote = netip.MustParsePrefix("::/0")
	}
	if pi.Remote.Addr().Is6() && pi.Local == netip.MustParsePrefix("0.0.0.0/0") {
		pi.Local = netip.MustParsePrefix("::/0")
	}
	if pi.Local.Addr().Is6() != pi.Remote.Addr().Is6() {
		c.d.errorf(y.p, "ipsec vpn %s: proxy-identity local and remote must be of one address family", vpn.name)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
