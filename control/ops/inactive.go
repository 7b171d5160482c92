package ops

import (
	"context"
	"fmt"
	"io"
	"net/netip"
)

// InactiveTunnel is a configured VPN without an installed IPsec SA pair.
type InactiveTunnel struct {
	ID        uint32     `json:"id"` // the IPsec SA id the tunnel shows when up (131073 for st0.0)
	VPNName   string     `json:"vpn-name"`
	Interface string     `json:"bind-interface"`
	Port      uint16     `json:"port"`
	Gateway   netip.Addr `json:"gateway"`
	// Negotiations counts the negotiations this gateway started for the
	// tunnel; Failures those that ended without bringing it up.
	Negotiations uint64 `json:"negotiations"`
	Failures     uint64 `json:"failures"`
	Immediate    bool   `json:"establish-immediately"`
	// State is what the tunnel is doing ("connecting", "retrying",
	// "waiting for traffic").
	State string `json:"state"`
	// DownReason is the last error or abandonment ("" when none).
	DownReason string `json:"tunnel-down-reason,omitempty"`
}

// InactiveTunnels is the answer to `show security ipsec inactive-tunnels`.
type InactiveTunnels struct {
	Tunnels []InactiveTunnel `json:"inactive-tunnels"`
}

// WriteText prints the totals and one row per tunnel. The vendor's Flag
// column (internal state bits) has no counterpart and shows "-"; a tunnel
// without a down reason shows its state.
func (v InactiveTunnels) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	immediate := 0
	for _, t := range v.Tunnels {
		if t.Immediate {
			immediate++
		}
	}
	ew.printf("  Total inactive tunnels: %d\n", len(v.Tunnels))
	ew.printf("  Total inactive tunnels with establish immediately: %d\n", immediate)
	if len(v.Tunnels) == 0 {
		return ew.err
	}
	ew.printf("  %-8s %-5s %-6s %-6s %-5s %-16s %s\n", "ID", "Port", "Nego#", "Fail#", "Flag", "Gateway", "Tunnel Down Reason")
	for _, t := range v.Tunnels {
		reason := t.DownReason
		if reason == "" {
			reason = t.State
		}
		ew.printf("  %-8d %-5d %-6d %-6d %-5s %-16s %s\n", t.ID, t.Port, t.Negotiations, t.Failures, "-", addrString(t.Gateway), reason)
	}
	return ew.err
}

func runInactiveTunnels(ctx context.Context, p Provider, inv Invocation) (View, error) {
	v, err := p.InactiveTunnels(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipsec inactive-tunnels: %w", err)
	}
	if idx := inv.Index(); idx != AllIndexes {
		v.Tunnels = filter(v.Tunnels, func(t InactiveTunnel) bool { return t.ID == idx })
	}
	return v, nil
}
