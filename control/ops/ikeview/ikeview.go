// Package ikeview turns the IKE engines' status reports (package ike) into
// the IKE and IPsec security-association views, so the daemon's Provider
// only keeps the latest reports and adds what the engines do not know
// (DF-bit, VPN monitoring, negotiation counters).
package ikeview

import (
	"fmt"
	"strings"
	"time"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/ike"
)

// TunnelIDBase makes the IPsec SA ID of st0.N 131072 + if_id (131073 for
// st0.0, as on the device in the reference).
const TunnelIDBase = 131072

// IKESA converts one IKE SA status. Indexes wider than 32 bits keep their
// low 32 bits.
func IKESA(st ike.IKESAStatus) ops.IKESA {
	state := ops.StateDown
	if st.State == ike.StateEstablished || st.State == ike.StateRekeying {
		state = ops.StateUp
	}
	mode := ops.IKEMode(st.Mode)
	switch {
	case st.Version == 2:
		mode = ops.ModeIKEv2
	case strings.EqualFold(st.Mode, "aggressive"):
		mode = ops.ModeAggressive
	case mode == "":
		mode = ops.ModeMain
	}
	auth := st.Auth
	if auth != "" {
		auth = strings.ToUpper(auth[:1]) + auth[1:]
	}
	return ops.IKESA{
		Index:           uint32(st.Index),
		GatewayName:     st.Gateway,
		State:           state,
		Role:            st.Role.String(),
		InitiatorCookie: ops.Cookie(st.SPIi),
		ResponderCookie: ops.Cookie(st.SPIr),
		Mode:            mode,
		AuthMethod:      auth,
		LocalAddress:    st.Local,
		RemoteAddress:   st.Remote,
		LifetimeSeconds: int64(st.RemainingSeconds),
		PeerIKEID:       st.RemoteID,
		Algorithms: ops.IKEAlgorithms{Authentication: st.Integrity, Encryption: st.Encryption,
			PRF: st.PRF, DHGroup: st.DHGroup},
		Traffic: ops.Traffic{InputBytes: st.Stats.InBytes, OutputBytes: st.Stats.OutBytes,
			InputPackets: st.Stats.InPackets, OutputPackets: st.Stats.OutPackets},
		// The device counts directional SAs: one pair shows "2 created".
		IPsecCreated: uint32(2 * st.ChildSAs),
	}
}

// IPsecSA converts one CHILD SA pair at time now. Lifetimes left count from
// its establishment; lifesize left is the hard byte limit in KB (0 =
// unlimited). DF-bit is "clear" and monitoring "-": the caller sets them
// from the configuration.
func IPsecSA(st ike.ChildSAStatus, now time.Time) ops.IPsecSA {
	sa := st.SA
	version := "IKEv1"
	if sa.IKEVersion == 2 {
		version = "IKEv2"
	}
	port := sa.RemotePort
	if port == 0 {
		port = 500
	}
	if sa.Encap != nil {
		port = 4500
	}
	dir := func(spi uint32) ops.IPsecSADirection {
		d := ops.IPsecSADirection{SPI: ops.SPI(spi), Mode: "Tunnel", Type: "dynamic", State: "installed",
			AntiReplay: sa.ReplayWindow > 0, ReplayWindow: sa.ReplayWindow,
			HardLifetimeSeconds: left(st, sa.Lifetime.HardSeconds, now),
			SoftLifetimeSeconds: left(st, sa.Lifetime.SoftSeconds, now),
			LifesizeRemainingKB: sa.Lifetime.HardBytes / 1024}
		if sa.Mode == ike.ModeTransport {
			d.Mode = "Transport"
		}
		return d
	}
	v := ops.IPsecSA{
		ID:             TunnelIDBase + sa.IfID,
		VPNName:        sa.Name,
		LocalGateway:   sa.Local,
		RemoteGateway:  sa.Remote,
		LocalIdentity:  proxyID(sa.LocalTS),
		RemoteIdentity: proxyID(sa.RemoteTS),
		Version:        version,
		DFBit:          "clear",
		Port:           port,
		Monitoring:     ops.MonitorOff,
		Protocol:       sa.Protocol.String(),
		Encryption:     ops.CanonicalCipher(sa.Encryption.IKEName),
		Inbound:        dir(sa.SPIIn),
		Outbound:       dir(sa.SPIOut),
	}
	if sa.IfID > 0 {
		v.BindInterface = fmt.Sprintf("st0.%d", sa.IfID-1)
	}
	if sa.Integrity != nil && !sa.Encryption.AEAD {
		v.Authentication = ops.CanonicalIntegrity(sa.Integrity.IKEName)
	}
	return v
}

// left is the time left of a lifetime of limit seconds, or the engine's own
// count when the establishment time is unknown; 0 once expired.
func left(st ike.ChildSAStatus, limit uint64, now time.Time) int64 {
	if limit == 0 {
		return int64(st.RemainingSeconds)
	}
	if st.Established.IsZero() {
		return int64(min(limit, st.RemainingSeconds))
	}
	l := st.Established.Add(time.Duration(limit) * time.Second).Sub(now)
	if l < 0 {
		return 0
	}
	return int64(l / time.Second)
}

// proxyID shows the first traffic selector (route-based VPNs negotiate one
// each way); an empty list, or an address range that is not a prefix, shows
// as the 0.0.0.0/0 default.
func proxyID(ts []ike.TrafficSelector) ops.ProxyID {
	if len(ts) == 0 {
		return ops.ProxyID{Protocol: "any"}
	}
	t := ts[0]
	id := ops.ProxyID{Protocol: protocolName(t.Protocol)}
	if p, ok := t.Prefix(); ok {
		id.Prefix = p
	}
	if t.StartPort == t.EndPort {
		id.Port = t.StartPort
	}
	return id
}

func protocolName(p uint8) string {
	switch p {
	case 0:
		return "any"
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmp6"
	}
	return fmt.Sprint(p)
}

// Unit returns N of the st0.N whose IPsec SAs have the view ID id (the
// inverse of TunnelIDBase + if_id, with if_id = N+1), for `index N` of the
// ipsec commands.
func Unit(id uint32) (unit int, ok bool) {
	if id <= TunnelIDBase {
		return 0, false
	}
	return int(id - TunnelIDBase - 1), true
}
