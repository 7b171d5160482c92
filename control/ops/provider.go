package ops

import "context"

// AllIndexes selects every SA where a command takes an optional `index N`.
// Index 0 never names an SA: IKE and IPsec SA indexes start at 1.
const AllIndexes uint32 = 0

// Provider supplies the operational state behind the commands. The daemon
// implements it; tests use a fake (see package opstest). Methods taking an
// index return only that SA when index != AllIndexes (the caller filters
// again, so a provider may ignore it). Methods must be safe for concurrent
// use and must honour ctx. No returned value may carry key material.
type Provider interface {
	// IKESecurityAssociations backs `show security ike security-associations`.
	IKESecurityAssociations(ctx context.Context, index uint32) (IKESAs, error)
	// IPsecSecurityAssociations backs `show security ipsec security-associations`.
	IPsecSecurityAssociations(ctx context.Context, index uint32) (IPsecSAs, error)
	// IPsecStatistics backs `show security ipsec statistics`: the sum over
	// all SAs, or the counters of SA index.
	IPsecStatistics(ctx context.Context, index uint32) (IPsecStatistics, error)
	// Policies backs `show security policies [hit-count]`, in evaluation order.
	Policies(ctx context.Context) (Policies, error)
	// FlowSessions backs `show security flow session`.
	FlowSessions(ctx context.Context) (FlowSessions, error)
	// FlowSessionSummary backs `show security flow session summary`.
	FlowSessionSummary(ctx context.Context) (FlowSessionSummary, error)
	// Zones backs `show security zones`.
	Zones(ctx context.Context) (Zones, error)
	// Interfaces backs `show interfaces [NAME] [terse]`; name is "" for all
	// secure tunnel interfaces, "st0" or a unit such as "st0.0".
	Interfaces(ctx context.Context, name string) (Interfaces, error)
	// Routes backs `show route`.
	Routes(ctx context.Context) (Routes, error)
	// InactiveTunnels backs `show security ipsec inactive-tunnels`: the
	// configured VPNs without an installed IPsec SA pair.
	InactiveTunnels(ctx context.Context) (InactiveTunnels, error)

	// ClearIPsecStatistics zeroes the counters shown by IPsecStatistics.
	ClearIPsecStatistics(ctx context.Context, index uint32) error
	// ClearIKESecurityAssociations tears down IKE SAs (and their IPsec SAs);
	// tunnels with establish-tunnels immediately are negotiated again.
	ClearIKESecurityAssociations(ctx context.Context, index uint32) error
	// ClearFlowSessions deletes the sessions f selects and says how many it
	// deleted (exactly: a session that ended on its own meanwhile is not
	// counted). The next packet of a cleared flow is judged like the first
	// packet of a new flow: checked against the policies again, except that
	// a TCP packet other than a SYN is dropped (no session, no SYN).
	ClearFlowSessions(ctx context.Context, f SessionFilter) (FlowSessionsCleared, error)
}
