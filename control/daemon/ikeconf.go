package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/ikev1"
	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// The translation of the configuration model into the IKE engines'
// configuration. The configuration has already filled in every default of
// reference §6 (config.Defaults), so this only maps names to transform
// identifiers; DPD's [ours] defaults (interval 10 s, threshold 5) apply when
// dead-peer-detection is not configured.

// ReplayWindow is the anti-replay window of installed SAs (the vendor shows 64).
const ReplayWindow = 64

// encrOf maps a configured encryption algorithm to an IKE transform.
func encrOf(name string) (suite.Encr, error) {
	switch name {
	case "aes-128-cbc":
		return suite.Encr{ID: suite.EncrAESCBC, KeyBits: 128}, nil
	case "aes-192-cbc":
		return suite.Encr{ID: suite.EncrAESCBC, KeyBits: 192}, nil
	case "aes-256-cbc":
		return suite.Encr{ID: suite.EncrAESCBC, KeyBits: 256}, nil
	case "aes-128-gcm":
		return suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 128}, nil
	case "aes-192-gcm":
		return suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 192}, nil
	case "aes-256-gcm":
		return suite.Encr{ID: suite.EncrAESGCM16, KeyBits: 256}, nil
	case "3des-cbc":
		return suite.Encr{ID: suite.Encr3DES}, nil
	}
	return suite.Encr{}, fmt.Errorf("encryption-algorithm %s is not supported by the IKE engines", name)
}

// ikeAuthOf maps an IKE authentication-algorithm to PRF, integrity and the
// IKEv1 hash.
func ikeAuthOf(name string) (suite.PRFID, suite.IntegID, ikev1.Hash, error) {
	switch name {
	case "sha1":
		return suite.PRFHMACSHA1, suite.IntegHMACSHA196, ikev1.HashSHA1, nil
	case "sha-256":
		return suite.PRFHMACSHA2256, suite.IntegHMACSHA2256128, ikev1.HashSHA256, nil
	case "sha-384":
		return suite.PRFHMACSHA2384, suite.IntegHMACSHA2384192, ikev1.HashSHA384, nil
	case "sha-512":
		return suite.PRFHMACSHA2512, suite.IntegHMACSHA2512256, ikev1.HashSHA512, nil
	}
	return 0, 0, 0, fmt.Errorf("authentication-algorithm %s is not supported by the IKE engines", name)
}

// espIntegOf maps an IPsec authentication-algorithm to an integrity transform.
func espIntegOf(name string) (suite.IntegID, error) {
	switch name {
	case "":
		return suite.IntegNone, nil
	case "hmac-sha1-96":
		return suite.IntegHMACSHA196, nil
	case "hmac-sha-256-128":
		return suite.IntegHMACSHA2256128, nil
	case "hmac-sha-384-192":
		return suite.IntegHMACSHA2384192, nil
	case "hmac-sha-512-256":
		return suite.IntegHMACSHA2512256, nil
	case "hmac-md5-96":
		return suite.IntegHMACMD596, nil
	}
	return 0, fmt.Errorf("IPsec authentication-algorithm %s is not supported by the IKE engines", name)
}

// Tunnel is one VPN ready for an IKE engine.
type Tunnel struct {
	VPN       string
	Gateway   string
	Unit      int
	Version   int
	Immediate bool
	Local     netip.Addr
	Remote    netip.Addr
	// Fingerprint changes whenever anything that shapes the tunnel does.
	Fingerprint string
	V1          *ikev1.Peer
	V2          *ikev2.Connection
}

// unitOf parses the st0 unit a VPN is bound to.
func unitOf(v *config.VPN) (int, error) {
	u, ok := kernel.UnitOfLink(v.BindInterface)
	if !ok {
		return 0, fmt.Errorf("vpn %s: bind-interface %q is not an st0 unit", v.Name, v.BindInterface)
	}
	return u, nil
}

// TunnelOf translates one VPN of the configuration for its IKE engine.
func TunnelOf(v *config.VPN) (*Tunnel, error) {
	g := v.Gateway
	if g == nil || g.Policy == nil || v.Policy == nil {
		return nil, fmt.Errorf("vpn %s: gateway or policies unresolved", v.Name)
	}
	unit, err := unitOf(v)
	if err != nil {
		return nil, err
	}
	if len(g.Addresses) == 0 {
		return nil, fmt.Errorf("vpn %s: gateway %s has no address (dynamic peers are not supported)", v.Name, g.Name)
	}
	if !g.LocalAddress.IsValid() {
		return nil, fmt.Errorf("vpn %s: gateway %s has no local address", v.Name, g.Name)
	}
	if g.Policy.PreSharedKey.IsZero() {
		return nil, fmt.Errorf("vpn %s: ike policy %s has no pre-shared-key", v.Name, g.Policy.Name)
	}
	for _, p := range g.Policy.Proposals {
		if p.AuthenticationMethod != "pre-shared-keys" {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: authentication-method %s is not supported (pre-shared-keys only)", v.Name, p.Name, p.AuthenticationMethod)
		}
	}
	t := &Tunnel{VPN: v.Name, Gateway: g.Name, Unit: unit, Version: g.Version, Immediate: v.EstablishImmediately,
		Local: g.LocalAddress, Remote: g.Addresses[0], Fingerprint: VPNFingerprint(v)}
	switch g.Version {
	case 2:
		c, err := connectionV2(v, unit)
		if err != nil {
			return nil, err
		}
		t.V2 = c
	default:
		p, err := peerV1(v, unit)
		if err != nil {
			return nil, err
		}
		t.V1 = p
	}
	return t, nil
}

func dpdOf(g *config.IKEGateway) (interval time.Duration, threshold int, mode string) {
	d := config.DPD{Mode: config.Defaults.DPDMode, Interval: config.Defaults.DPDInterval, Threshold: config.Defaults.DPDThreshold}
	if g.DPD != nil {
		d = *g.DPD
		if d.Interval == 0 {
			d.Interval = config.Defaults.DPDInterval
		}
		if d.Threshold == 0 {
			d.Threshold = config.Defaults.DPDThreshold
		}
	}
	return time.Duration(d.Interval) * time.Second, d.Threshold, d.Mode
}

func weakConfigured(g *config.IKEGateway, v *config.VPN) bool {
	for _, p := range g.Policy.Proposals {
		if p.DHGroup == 1 || p.DHGroup == 2 || p.DHGroup == 5 || p.EncryptionAlgorithm == "3des-cbc" || p.EncryptionAlgorithm == "des-cbc" {
			return true
		}
	}
	for _, p := range v.Policy.Proposals {
		if p.EncryptionAlgorithm == "3des-cbc" || p.EncryptionAlgorithm == "des-cbc" {
			return true
		}
	}
	return v.Policy.PFSGroup == 2 || v.Policy.PFSGroup == 5
}

// proxyProtocol maps a proxy-identity service to an IP protocol (0 = any).
func proxyProtocol(service string) (uint8, error) {
	if service == "" || service == "any" {
		return 0, nil
	}
	terms, ok := config.PredefinedApplication(service)
	if ok && len(terms) == 1 {
		return terms[0].Protocol, nil
	}
	return 0, fmt.Errorf("proxy-identity service %s: only any and single-protocol junos-* applications are supported", service)
}

func connectionV2(v *config.VPN, unit int) (*ikev2.Connection, error) {
	g := v.Gateway
	c := &ikev2.Connection{
		Name: v.Name, Gateway: g.Name, ReqID: kernel.ReqID(unit), IfID: kernel.IfID(unit),
		Local:  netip.AddrPortFrom(g.LocalAddress, ike.PortIKE),
		Remote: netip.AddrPortFrom(g.Addresses[0], ike.PortIKE),
		PSK:    g.Policy.PreSharedKey.Bytes(), AllowWeak: weakConfigured(g, v), ReplayWindow: ReplayWindow,
	}
	for _, p := range g.Policy.Proposals {
		enc, err := encrOf(p.EncryptionAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: %w", v.Name, p.Name, err)
		}
		prf, integ, _, err := ikeAuthOf(p.AuthenticationAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: %w", v.Name, p.Name, err)
		}
		ip := ikev2.IKEProposal{Encryption: []suite.Encr{enc}, PRF: []suite.PRFID{prf}, DH: []suite.DHGroup{suite.DHGroup(p.DHGroup)}}
		if !enc.AEAD() {
			ip.Integrity = []suite.IntegID{integ}
		}
		c.IKEProposals = append(c.IKEProposals, ip)
		if c.IKELifetime == 0 {
			c.IKELifetime = time.Duration(p.LifetimeSeconds) * time.Second
		}
	}
	for _, p := range v.Policy.Proposals {
		if p.Protocol != "esp" {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: protocol %s is not supported (esp only)", v.Name, p.Name, p.Protocol)
		}
		enc, err := encrOf(p.EncryptionAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: %w", v.Name, p.Name, err)
		}
		integ, err := espIntegOf(p.AuthenticationAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: %w", v.Name, p.Name, err)
		}
		cp := ikev2.ChildProposal{Encryption: []suite.Encr{enc}}
		if integ != suite.IntegNone {
			cp.Integrity = []suite.IntegID{integ}
		}
		if v.Policy.PFSGroup != 0 {
			cp.DH = []suite.DHGroup{suite.DHGroup(v.Policy.PFSGroup)}
		}
		c.ChildProposals = append(c.ChildProposals, cp)
		if c.ChildLifetime == 0 {
			c.ChildLifetime = time.Duration(p.LifetimeSeconds) * time.Second
			c.ChildLifetimeKB = uint64(p.LifetimeKilobytes)
		}
	}
	var err error
	if c.LocalID, err = identityV2(g.LocalIdentity); err != nil {
		return nil, fmt.Errorf("vpn %s: local-identity: %w", v.Name, err)
	}
	if !g.GeneralIKEID {
		if c.RemoteID, err = identityV2(g.RemoteIdentity); err != nil {
			return nil, fmt.Errorf("vpn %s: remote-identity: %w", v.Name, err)
		}
	}
	if pi := v.ProxyIdentity; pi.Configured {
		proto, err := proxyProtocol(pi.Service)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: %w", v.Name, err)
		}
		l, r := ike.PrefixSelector(pi.Local), ike.PrefixSelector(pi.Remote)
		l.Protocol, r.Protocol = proto, proto
		c.LocalTS, c.RemoteTS = []ike.TrafficSelector{l}, []ike.TrafficSelector{r}
	}
	c.DPDInterval, c.DPDThreshold, _ = dpdOf(g)
	c.DPDAction = ikev2.DPDClear
	if v.EstablishImmediately {
		c.DPDAction = ikev2.DPDRestart
	}
	return c, nil
}

func identityV2(id *config.Identity) (ikev2.Identity, error) {
	if id == nil || id.Value == "" {
		return ikev2.Identity{}, nil
	}
	switch id.Type {
	case "inet", "inet6", "hostname", "user-at-hostname":
		return ikev2.ParseIdentity(id.Value), nil
	}
	return ikev2.Identity{}, fmt.Errorf("identity type %s is not supported", id.Type)
}

func identityV1(id *config.Identity) (*isakmp.ID, error) {
	if id == nil || id.Value == "" {
		return nil, nil
	}
	switch id.Type {
	case "inet", "inet6":
		a, err := netip.ParseAddr(id.Value)
		if err != nil {
			return nil, fmt.Errorf("identity %q: %w", id.Value, err)
		}
		t := isakmp.IDIPv4Addr
		if !a.Is4() {
			t = isakmp.IDIPv6Addr
		}
		return &isakmp.ID{IDType: t, Data: a.AsSlice()}, nil
	case "hostname":
		return &isakmp.ID{IDType: isakmp.IDFQDN, Data: []byte(id.Value)}, nil
	case "user-at-hostname":
		return &isakmp.ID{IDType: isakmp.IDUserFQDN, Data: []byte(id.Value)}, nil
	}
	return nil, fmt.Errorf("identity type %s is not supported", id.Type)
}

func peerV1(v *config.VPN, unit int) (*ikev1.Peer, error) {
	g := v.Gateway
	if strings.EqualFold(g.Policy.Mode, "aggressive") {
		return nil, fmt.Errorf("vpn %s: ike policy %s: mode aggressive is not supported (main only)", v.Name, g.Policy.Name)
	}
	p := &ikev1.Peer{
		Name: g.Name, Local: g.LocalAddress, Remote: g.Addresses[0], PSK: g.Policy.PreSharedKey.Bytes(),
		PFS: suite.DHGroup(v.Policy.PFSGroup), DisableNATT: !g.NATTraversal, Immediately: v.EstablishImmediately,
		VPNName: v.Name, ReqID: kernel.ReqID(unit), IfID: kernel.IfID(unit),
	}
	for _, x := range g.Policy.Proposals {
		enc, err := encrOf(x.EncryptionAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: %w", v.Name, x.Name, err)
		}
		if enc.AEAD() {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: %s is not available in IKEv1 (use version v2-only)", v.Name, x.Name, x.EncryptionAlgorithm)
		}
		_, _, hash, err := ikeAuthOf(x.AuthenticationAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ike proposal %s: %w", v.Name, x.Name, err)
		}
		p.IKE = append(p.IKE, ikev1.Phase1Proposal{Encryption: enc, Hash: hash, Group: suite.DHGroup(x.DHGroup),
			Lifetime: time.Duration(x.LifetimeSeconds) * time.Second})
	}
	for _, x := range v.Policy.Proposals {
		if x.Protocol != "esp" {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: protocol %s is not supported (esp only)", v.Name, x.Name, x.Protocol)
		}
		enc, err := encrOf(x.EncryptionAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: %w", v.Name, x.Name, err)
		}
		integ, err := espIntegOf(x.AuthenticationAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: ipsec proposal %s: %w", v.Name, x.Name, err)
		}
		p.ESP = append(p.ESP, ikev1.Phase2Proposal{Encryption: enc, Integrity: integ,
			Lifetime: time.Duration(x.LifetimeSeconds) * time.Second, LifeKilobytes: uint64(x.LifetimeKilobytes)})
	}
	var err error
	if p.LocalID, err = identityV1(g.LocalIdentity); err != nil {
		return nil, fmt.Errorf("vpn %s: local-identity: %w", v.Name, err)
	}
	if !g.GeneralIKEID {
		if p.RemoteID, err = identityV1(g.RemoteIdentity); err != nil {
			return nil, fmt.Errorf("vpn %s: remote-identity: %w", v.Name, err)
		}
	}
	if pi := v.ProxyIdentity; pi.Configured {
		proto, err := proxyProtocol(pi.Service)
		if err != nil {
			return nil, fmt.Errorf("vpn %s: %w", v.Name, err)
		}
		p.ProxyIDs = []ikev1.ProxyID{{Local: pi.Local, Remote: pi.Remote, Protocol: proto}}
	}
	interval, threshold, mode := dpdOf(g)
	p.DPD = ikev1.DPD{Interval: interval, Threshold: threshold, Action: ikev1.DPDClear}
	switch mode {
	case "probe-idle-tunnel":
		p.DPD.Mode = ikev1.DPDProbeIdle
	case "always-send":
		p.DPD.Mode = ikev1.DPDAlwaysSend
	default:
		p.DPD.Mode = ikev1.DPDOptimized
	}
	if v.EstablishImmediately {
		p.DPD.Action = ikev1.DPDRestart
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("vpn %s: %w", v.Name, err)
	}
	return p, nil
}
