package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// The operational views of the IKE component: engines report algorithms by
// their IKE transform names; the views carry configuration-language names.

var (
	encrNames  = map[string]string{} // suite.Encr.String() → config name
	prfNames   = map[string]string{} // suite.PRFID.String() → IKE authentication-algorithm
	integNames = map[string]string{} // suite.IntegID.String() → IKE authentication-algorithm
)

func init() {
	for _, n := range []string{"aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "3des-cbc"} {
		e, _ := encrOf(n)
		encrNames[e.String()] = n
	}
	for _, n := range []string{"sha1", "sha-256", "sha-384", "sha-512"} {
		prf, integ, _, _ := ikeAuthOf(n)
		prfNames[prf.String()] = n
		integNames[integ.String()] = n
	}
}

// encName maps an engine's cipher name ("AES-CBC-256" from IKEv2,
// "aes256-cbc" from IKEv1) to the configuration name (aes-256-cbc).
func encName(s string) string {
	if n, ok := encrNames[s]; ok {
		return n
	}
	var bits int
	var mode string
	if _, err := fmt.Sscanf(strings.Replace(s, "-", " ", 1), "aes%d %s", &bits, &mode); err == nil {
		return fmt.Sprintf("aes-%d-%s", bits, mode)
	}
	return strings.ToLower(s)
}

// authName maps an engine's PRF or integrity name ("PRF-HMAC-SHA2-256",
// "HMAC-SHA2-256-128", "hmac-sha-256") to the IKE authentication-algorithm
// (sha-256).
func authName(s string) string {
	if n, ok := prfNames[s]; ok {
		return n
	}
	if n, ok := integNames[s]; ok {
		return n
	}
	return strings.TrimPrefix(strings.ToLower(s), "hmac-")
}

// dhName maps "ECP-256" or "DH-group-19" to "group19".
func dhName(s string) string {
	var n int
	if _, err := fmt.Sscanf(s, "DH-group-%d", &n); err == nil {
		return fmt.Sprintf("group%d", n)
	}
	for g := suite.DHGroup(1); g < 40; g++ {
		if g.String() == s {
			return fmt.Sprintf("group%d", g)
		}
	}
	return s
}

// displayIndex makes engine-local IKE SA indexes unique across tunnels.
func displayIndex(unit int, index uint64) uint32 {
	return uint32(unit+1)*1000000 + uint32(index%1000000)
}

// espNames maps a negotiated ESP SA to configuration names.
func espNames(sa ike.ChildSA) (enc, auth string) {
	switch sa.Encryption.Name {
	case "rfc4106(gcm(aes))":
		enc = fmt.Sprintf("aes-%d-gcm", sa.Encryption.KeyBits-32)
	case "cbc(aes)":
		enc = fmt.Sprintf("aes-%d-cbc", sa.Encryption.KeyBits)
	case "cbc(des3_ede)":
		enc = "3des-cbc"
	default:
		enc = strings.ToLower(sa.Encryption.IKEName)
	}
	if sa.Integrity != nil {
		switch sa.Integrity.Name {
		case "hmac(sha1)":
			auth = "hmac-sha1-96"
		case "hmac(sha256)":
			auth = "hmac-sha-256-128"
		case "hmac(sha384)":
			auth = "hmac-sha-384-192"
		case "hmac(sha512)":
			auth = "hmac-sha-512-256"
		case "hmac(md5)":
			auth = "hmac-md5-96"
		default:
			auth = sa.Integrity.Name
		}
	}
	return enc, auth
}

// Tunnels implements TunnelSource.
func (c *ikeComponent) Tunnels() []TunnelStatus {
	var out []TunnelStatus
	for _, tu := range c.snapshotTunnels() {
		ts := TunnelStatus{VPN: tu.t.VPN, Interface: fmt.Sprintf("st0.%d", tu.t.Unit), Gateway: tu.t.Gateway,
			Version: tu.t.Version, Establish: establishName(tu.t.Immediate), Up: tu.up.Load(),
			Unit: tu.t.Unit, Remote: tu.t.Remote, Negotiations: tu.negotiations.Load(), Failures: tu.failures.Load()}
		switch {
		case ts.Up:
			ts.State = "up"
		case progress(tu.progress.Load()) != progressIdle:
			ts.State = "connecting"
		case tu.t.Immediate:
			ts.State = "retrying"
		default:
			ts.State = "waiting for traffic"
		}
		if e := tu.engErr.Load(); e != nil {
			ts.LastError = *e
		} else if e := tu.supErr.Load(); e != nil && !ts.Up {
			ts.LastError = *e
		}
		out = append(out, ts)
	}
	return out
}

// IKESAs implements TunnelSource.
func (c *ikeComponent) IKESAs() []ops.IKESA {
	now := c.now()
	var out []ops.IKESA
	for _, tu := range c.snapshotTunnels() {
		for _, s := range tu.eng.IKESAs(now) {
			if s.State == ike.StateDown {
				continue
			}
			v := ops.IKESA{
				Index: displayIndex(tu.t.Unit, s.Index), GatewayName: s.Gateway, State: ops.StateDown, Role: s.Role.String(),
				InitiatorCookie: ops.Cookie(s.SPIi), ResponderCookie: ops.Cookie(s.SPIr), Mode: ops.IKEMode(s.Mode),
				AuthMethod: "Pre-shared-keys", LocalAddress: s.Local, RemoteAddress: s.Remote,
				LifetimeSeconds: int64(s.RemainingSeconds), PeerIKEID: s.RemoteID,
				Algorithms: ops.IKEAlgorithms{Encryption: encName(s.Encryption),
					Authentication: authName(s.PRF), DHGroup: dhName(s.DHGroup)},
				Traffic: ops.Traffic{InputBytes: s.Stats.InBytes, OutputBytes: s.Stats.OutBytes,
					InputPackets: s.Stats.InPackets, OutputPackets: s.Stats.OutPackets},
				IPsecCreated: uint32(s.ChildSAs),
			}
			if s.State == ike.StateEstablished || s.State == ike.StateRekeying {
				v.State = ops.StateUp
			}
			if v.Mode == "" {
				v.Mode = ops.ModeMain
			}
			if v.PeerIKEID == "" {
				v.PeerIKEID = s.Remote.Addr().String()
			}
			out = append(out, v)
		}
	}
	return out
}

// IPsecSAs implements TunnelSource.
func (c *ikeComponent) IPsecSAs() []ops.IPsecSA {
	now := c.now()
	var out []ops.IPsecSA
	for _, tu := range c.snapshotTunnels() {
		for _, cs := range tu.eng.ChildSAs(now) {
			sa := cs.SA
			enc, auth := espNames(sa)
			port := uint16(500)
			if sa.Encap != nil || sa.RemotePort == ike.PortNATT {
				port = 4500
			}
			version := "IKEv1"
			if tu.t.Version == 2 {
				version = "IKEv2"
			}
			dir := func(spi uint32) ops.IPsecSADirection {
				d := ops.IPsecSADirection{SPI: ops.SPI(spi), HardLifetimeSeconds: int64(cs.RemainingSeconds),
					Mode: "Tunnel", Type: "dynamic", State: "installed", AntiReplay: sa.ReplayWindow > 0, ReplayWindow: sa.ReplayWindow}
				if sa.Lifetime.HardSeconds > sa.Lifetime.SoftSeconds && sa.Lifetime.SoftSeconds > 0 {
					d.SoftLifetimeSeconds = max(0, int64(cs.RemainingSeconds)-int64(sa.Lifetime.HardSeconds-sa.Lifetime.SoftSeconds))
				}
				return d
			}
			v := ops.IPsecSA{
				ID: TunnelID(tu.t.Unit), VPNName: tu.t.VPN, LocalGateway: sa.Local, RemoteGateway: sa.Remote,
				LocalIdentity: proxyID(sa.LocalTS), RemoteIdentity: proxyID(sa.RemoteTS), Version: version,
				DFBit: "clear", BindInterface: fmt.Sprintf("st0.%d", tu.t.Unit), Port: port, NegoCount: 1,
				Monitoring: ops.MonitorOff, Protocol: sa.Protocol.String(), Encryption: enc, Authentication: auth,
				Inbound: dir(sa.SPIIn), Outbound: dir(sa.SPIOut),
			}
			out = append(out, v)
		}
	}
	return out
}

func proxyID(ts []ike.TrafficSelector) ops.ProxyID {
	if len(ts) == 0 {
		return ops.ProxyID{Protocol: "any"}
	}
	p, _ := ts[0].Prefix()
	proto := "any"
	switch ts[0].Protocol {
	case 0:
	case 6:
		proto = "tcp"
	case 17:
		proto = "udp"
	case 1:
		proto = "icmp"
	default:
		proto = fmt.Sprint(ts[0].Protocol)
	}
	id := ops.ProxyID{Prefix: p, Protocol: proto}
	if !ts[0].AllPorts() {
		id.Port = ts[0].StartPort
	}
	return id
}

// ClearIKE implements TunnelSource: it deletes the IKE SA index (all with
// 0) and its IPsec SAs; tunnels with establish-tunnels immediately come up
// again through the supervision.
func (c *ikeComponent) ClearIKE(ctx context.Context, index uint32) error {
	now := c.now()
	found := false
	for _, tu := range c.snapshotTunnels() {
		match := index == ops.AllIndexes
		for _, s := range tu.eng.IKESAs(now) {
			if displayIndex(tu.t.Unit, s.Index) == index {
				match = true
			}
		}
		if !match {
			continue
		}
		found = true
		tu.eng.Terminate(now)
		if tu.t.Immediate {
			tu.sup.Lock()
			tu.nextTry, tu.backoff = now.Add(RetryMin), 0
			tu.sup.Unlock()
		}
	}
	if !found {
		return fmt.Errorf("no IKE security association with index %d", index)
	}
	c.mu.Lock()
	for _, l := range c.listeners {
		l.mux.wake()
	}
	c.mu.Unlock()
	return nil
}

var _ TunnelSource = (*ikeComponent)(nil)
