// Package opstest provides a fake ops.Provider filled with the state of SRX1
// in the reference example, for tests of the operational commands, the
// control socket and the CLI.
package opstest

import (
	"context"
	"net/netip"
	"sync"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

// Clear records one clear action received by the fake.
type Clear struct {
	What   string // "ipsec-statistics", "ike-security-associations" or "flow-sessions"
	Index  uint32
	Filter ops.SessionFilter // of "flow-sessions"
}

// State is what the fake answers, one field per view.
type State struct {
	IKE        ops.IKESAs
	IPsec      ops.IPsecSAs
	Statistics ops.IPsecStatistics
	Policies   ops.Policies
	Sessions   ops.FlowSessions
	Summary    ops.FlowSessionSummary
	Zones      ops.Zones
	Interfaces ops.Interfaces
	Routes     ops.Routes
	Inactive   ops.InactiveTunnels
}

// Provider is a fake ops.Provider that answers from State. Err, when set, is
// returned by every method. Set State and Err before sharing the fake, or
// through Update afterwards.
type Provider struct {
	mu     sync.Mutex
	State  State
	Err    error
	clears []Clear
}

// Update changes the fake's state under its lock.
func (p *Provider) Update(f func(s *State, err *error)) {
	defer p.lock()()
	f(&p.State, &p.Err)
}

var _ ops.Provider = (*Provider)(nil)

// Clears returns the clear actions received so far.
func (p *Provider) Clears() []Clear {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Clear(nil), p.clears...)
}

func (p *Provider) lock() func() { p.mu.Lock(); return p.mu.Unlock }

func (p *Provider) IKESecurityAssociations(ctx context.Context, _ uint32) (ops.IKESAs, error) {
	defer p.lock()()
	return p.State.IKE, p.Err
}

func (p *Provider) IPsecSecurityAssociations(ctx context.Context, _ uint32) (ops.IPsecSAs, error) {
	defer p.lock()()
	return p.State.IPsec, p.Err
}

func (p *Provider) IPsecStatistics(ctx context.Context, _ uint32) (ops.IPsecStatistics, error) {
	defer p.lock()()
	return p.State.Statistics, p.Err
}

func (p *Provider) Policies(ctx context.Context) (ops.Policies, error) {
	defer p.lock()()
	return p.State.Policies, p.Err
}

func (p *Provider) FlowSessions(ctx context.Context) (ops.FlowSessions, error) {
	defer p.lock()()
	return p.State.Sessions, p.Err
}

func (p *Provider) FlowSessionSummary(ctx context.Context) (ops.FlowSessionSummary, error) {
	defer p.lock()()
	return p.State.Summary, p.Err
}

func (p *Provider) Zones(ctx context.Context) (ops.Zones, error) {
	defer p.lock()()
	return p.State.Zones, p.Err
}

func (p *Provider) Interfaces(ctx context.Context, name string) (ops.Interfaces, error) {
	defer p.lock()()
	return p.State.Interfaces, p.Err
}

func (p *Provider) Routes(ctx context.Context) (ops.Routes, error) {
	defer p.lock()()
	return p.State.Routes, p.Err
}

func (p *Provider) InactiveTunnels(ctx context.Context) (ops.InactiveTunnels, error) {
	defer p.lock()()
	return p.State.Inactive, p.Err
}

func (p *Provider) ClearIPsecStatistics(ctx context.Context, index uint32) error {
	defer p.lock()()
	if p.Err != nil {
		return p.Err
	}
	p.clears = append(p.clears, Clear{What: "ipsec-statistics", Index: index})
	p.State.Statistics = ops.IPsecStatistics{}
	return nil
}

func (p *Provider) ClearIKESecurityAssociations(ctx context.Context, index uint32) error {
	defer p.lock()()
	if p.Err != nil {
		return p.Err
	}
	p.clears = append(p.clears, Clear{What: "ike-security-associations", Index: index})
	return nil
}

// ClearFlowSessions removes the sessions f selects from State.Sessions.
func (p *Provider) ClearFlowSessions(ctx context.Context, f ops.SessionFilter) (ops.FlowSessionsCleared, error) {
	defer p.lock()()
	if p.Err != nil {
		return ops.FlowSessionsCleared{}, p.Err
	}
	p.clears = append(p.clears, Clear{What: "flow-sessions", Filter: f})
	cleared := map[uint64]bool{}
	for _, s := range p.State.Sessions.Select(f).Sessions {
		cleared[s.ID] = true
	}
	var kept []ops.FlowSession
	for _, s := range p.State.Sessions.Sessions {
		if !cleared[s.ID] {
			kept = append(kept, s)
		}
	}
	p.State.Sessions.Sessions = kept
	return ops.FlowSessionsCleared{Cleared: len(cleared)}, nil
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// Reference returns a fake holding SRX1's state in the reference example
// after the tunnel came up: the values of the §4 sample outputs.
func Reference() *Provider {
	any4 := ops.ProxyID{Prefix: pfx("0.0.0.0/0"), Protocol: "any"}
	dir := func(spi ops.SPI) ops.IPsecSADirection {
		return ops.IPsecSADirection{SPI: spi, HardLifetimeSeconds: 3203, SoftLifetimeSeconds: 2611,
			Mode: "Tunnel", Type: "dynamic", State: "installed", AntiReplay: true, ReplayWindow: 64}
	}
	return &Provider{State: State{
		IKE: ops.IKESAs{SAs: []ops.IKESA{{
			Index: 1512635, GatewayName: "IKE-GW", State: ops.StateUp, Role: "Initiator",
			InitiatorCookie: 0xa296c603e4746996, ResponderCookie: 0xe3c175f78f62f6ee,
			Mode: ops.ModeMain, AuthMethod: "Pre-shared-keys",
			LocalAddress:    netip.AddrPortFrom(addr("172.16.13.1"), 500),
			RemoteAddress:   netip.AddrPortFrom(addr("172.16.23.1"), 500),
			LifetimeSeconds: 28391, PeerIKEID: "172.16.23.1",
			Algorithms:   ops.IKEAlgorithms{Authentication: "sha-256", Encryption: "aes-256-cbc", DHGroup: "group19"},
			Traffic:      ops.Traffic{InputBytes: 2316, OutputBytes: 2480, InputPackets: 11, OutputPackets: 12},
			IPsecCreated: 2,
		}}},
		IPsec: ops.IPsecSAs{SAs: []ops.IPsecSA{{
			ID: 131073, VPNName: "VPN-to-Host2",
			LocalGateway: addr("172.16.13.1"), RemoteGateway: addr("172.16.23.1"),
			LocalIdentity: any4, RemoteIdentity: any4, Version: "IKEv1", DFBit: "clear",
			BindInterface: "st0.0", Port: 500, NegoCount: 1, Flag: 0x600a29, Monitoring: ops.MonitorOff,
			Protocol: "ESP", Encryption: "aes-256-gcm",
			Inbound: dir(0x8f3a21c4), Outbound: dir(0x5b0c77e1),
		}}},
		Statistics: ops.IPsecStatistics{ESP: ops.ESPStatistics{
			EncryptedBytes: 14689428, DecryptedBytes: 7909692, EncryptedPackets: 94163, DecryptedPackets: 94163}},
		Policies: ops.Policies{DefaultPolicy: "deny-all", Policies: []ops.Policy{
			{Name: "default-permit", FromZone: "trust", ToZone: "untrust", Index: 4, Sequence: 1, Enabled: true,
				SourceAddresses: []string{"any"}, DestinationAddresses: []string{"any"}, Applications: []string{"any"},
				Action: "permit", Hits: 17},
			{Name: "VPN-OUT", FromZone: "trust", ToZone: "vpn", Index: 5, Sequence: 1, Enabled: true,
				SourceAddresses: []string{"Host1-Net"}, DestinationAddresses: []string{"Host2-Net"}, Applications: []string{"any"},
				Action: "permit", Hits: 3},
			{Name: "VPN-IN", FromZone: "vpn", ToZone: "trust", Index: 6, Sequence: 1, Enabled: true,
				SourceAddresses: []string{"Host2-Net"}, DestinationAddresses: []string{"Host1-Net"}, Applications: []string{"any"},
				Action: "permit", Hits: 0},
		}},
		Sessions: ops.FlowSessions{Sessions: []ops.FlowSession{
			{ID: 1021, PolicyName: "VPN-OUT", PolicyIndex: 5, TimeoutSeconds: 2, Valid: true,
				In: ops.FlowWing{Source: netip.AddrPortFrom(addr("10.100.11.10"), 7), Destination: netip.AddrPortFrom(addr("10.100.22.10"), 7),
					Protocol: "icmp", Interface: "ge-0/0/0.0", Packets: 1, Bytes: 84},
				Out: ops.FlowWing{Source: netip.AddrPortFrom(addr("10.100.22.10"), 7), Destination: netip.AddrPortFrom(addr("10.100.11.10"), 7),
					Protocol: "icmp", Interface: "st0.0", Packets: 1, Bytes: 84}},
			{ID: 1022, PolicyName: "VPN-OUT", PolicyIndex: 5, TimeoutSeconds: 1800, Valid: true,
				In: ops.FlowWing{Source: netip.AddrPortFrom(addr("10.100.11.10"), 51234), Destination: netip.AddrPortFrom(addr("10.100.22.10"), 22),
					Protocol: "tcp", Interface: "ge-0/0/0.0", Packets: 12, Bytes: 2140},
				Out: ops.FlowWing{Source: netip.AddrPortFrom(addr("10.100.22.10"), 22), Destination: netip.AddrPortFrom(addr("10.100.11.10"), 51234),
					Protocol: "tcp", Interface: "st0.0", Packets: 10, Bytes: 3312}},
		}},
		Summary: ops.FlowSessionSummary{Unicast: 2, InUse: 2, Valid: 2, Maximum: 524288},
		Zones: ops.Zones{Zones: []ops.Zone{
			{Name: "trust", ID: 6, Interfaces: []string{"ge-0/0/0.0"}, HostInbound: []string{"ping"}},
			{Name: "untrust", ID: 7, Interfaces: []string{"ge-0/0/1.0"}, HostInbound: []string{"ike"}},
			{Name: "vpn", ID: 8, Interfaces: []string{"st0.0"}},
		}},
		Interfaces: ops.Interfaces{Interfaces: []ops.Interface{{
			Name: "st0", Index: 131, AdminUp: true, LinkUp: true, MTU: 9192,
			Units: []ops.LogicalInterface{{Name: "st0.0", Index: 70, AdminUp: true, LinkUp: true, Zone: "vpn",
				MTU: 9192, Addresses: []netip.Prefix{pfx("10.100.200.1/24")}, InputPackets: 94163, OutputPackets: 94163,
				LinuxName: "st0.0", XFRMInterfaceID: 1}},
		}}},
		Routes: ops.Routes{Tables: []ops.RouteTable{{Name: "inet.0", Routes: []ops.Route{
			{Destination: pfx("0.0.0.0/0"), Protocol: "Static", Preference: 5, Active: true, AgeSeconds: 754,
				NextHops: []ops.NextHop{{Gateway: addr("172.16.13.2"), Interface: "ge-0/0/1.0", Selected: true}}},
			{Destination: pfx("10.100.11.0/24"), Protocol: "Direct", Preference: 0, Active: true, AgeSeconds: 754,
				NextHops: []ops.NextHop{{Interface: "ge-0/0/0.0", Selected: true}}},
			{Destination: pfx("10.100.11.1/32"), Protocol: "Local", Preference: 0, Active: true, AgeSeconds: 754,
				NextHops: []ops.NextHop{{Interface: "ge-0/0/0.0"}}},
			{Destination: pfx("10.100.22.0/24"), Protocol: "Static", Preference: 5, Active: true, AgeSeconds: 754,
				NextHops: []ops.NextHop{{Interface: "st0.0", Selected: true}}},
			{Destination: pfx("10.100.200.0/24"), Protocol: "Direct", Preference: 0, Active: true, AgeSeconds: 90061,
				NextHops: []ops.NextHop{{Interface: "st0.0", Selected: true}}},
			{Destination: pfx("10.100.200.1/32"), Protocol: "Local", Preference: 0, Active: true, AgeSeconds: 90061,
				NextHops: []ops.NextHop{{Interface: "st0.0"}}},
			{Destination: pfx("172.16.13.0/24"), Protocol: "Direct", Preference: 0, Active: true, AgeSeconds: 1900000,
				NextHops: []ops.NextHop{{Interface: "ge-0/0/1.0", Selected: true}}},
			{Destination: pfx("172.16.13.1/32"), Protocol: "Local", Preference: 0, Active: true, AgeSeconds: 1900000,
				NextHops: []ops.NextHop{{Interface: "ge-0/0/1.0"}}},
		}}}},
	}}
}
