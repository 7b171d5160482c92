package kernel

import (
	"errors"
	"fmt"

	"github.com/bpfvpn/bpfvpn/ike"
)

// FromIKE converts a CHILD SA negotiated by the IKE engines. The st0 unit
// comes from c.IfID (IfID = unit+1); the reqid is this package's (c.ReqID is
// ignored). Keys are copied: the engine wipes its own when the SA dies.
func FromIKE(c ike.ChildSA) (ChildSA, error) {
	unit, peer, ok := tunnelOfIfID(c.IfID)
	if !ok {
		return ChildSA{}, fmt.Errorf("child SA %s: if_id %d is not an st0 unit's", c, c.IfID)
	}
	if c.Protocol != ike.ProtoESP || c.Mode != ike.ModeTunnel {
		return ChildSA{}, fmt.Errorf("child SA %s: only ESP in tunnel mode is supported, not %v %v", c, c.Protocol, c.Mode)
	}
	out := ChildSA{
		Unit:         unit,
		Peer:         peer,
		Local:        c.Local.Unmap(),
		Remote:       c.Remote.Unmap(),
		InboundSPI:   c.SPIIn,
		OutboundSPI:  c.SPIOut,
		Encryption:   c.Encryption.Name,
		ICVBits:      c.Encryption.ICVBits,
		Inbound:      Keys{Encryption: Key(c.In.Encryption.Clone()), Integrity: Key(c.In.Integrity.Clone())},
		Outbound:     Keys{Encryption: Key(c.Out.Encryption.Clone()), Integrity: Key(c.Out.Integrity.Clone())},
		ReplayWindow: c.ReplayWindow,
		ESN:          c.ESN,
		Lifetime: Lifetime{SoftSeconds: c.Lifetime.SoftSeconds, HardSeconds: c.Lifetime.HardSeconds,
			SoftBytes: c.Lifetime.SoftBytes, HardBytes: c.Lifetime.HardBytes},
	}
	if len(out.Inbound.Integrity) == 0 {
		out.Inbound.Integrity = nil
	}
	if len(out.Outbound.Integrity) == 0 {
		out.Outbound.Integrity = nil
	}
	if c.Integrity != nil {
		out.Integrity, out.IntegrityBits = c.Integrity.Name, c.Integrity.TruncBits
	}
	if c.Encap != nil {
		out.Encap = &UDPEncap{LocalPort: c.Encap.LocalPort, RemotePort: c.Encap.RemotePort}
	}
	sels, err := selectorsFromTS(c.LocalTS, c.RemoteTS)
	if err != nil {
		return ChildSA{}, fmt.Errorf("child SA %s: %w", c, err)
	}
	out.Selectors = sels
	return out, nil
}

// selectorsFromTS pairs every local selector with every remote selector of
// the same address family. Empty lists mean the route-based default.
func selectorsFromTS(local, remote []ike.TrafficSelector) ([]Selector, error) {
	if len(local) == 0 && len(remote) == 0 {
		return nil, nil
	}
	var out []Selector
	for _, l := range local {
		lp, ok := l.Prefix()
		if !ok {
			return nil, fmt.Errorf("local traffic selector %s is not a prefix", l)
		}
		lport, err := tsPort(l)
		if err != nil {
			return nil, err
		}
		for _, r := range remote {
			rp, ok := r.Prefix()
			if !ok {
				return nil, fmt.Errorf("remote traffic selector %s is not a prefix", r)
			}
			if lp.Addr().Is4() != rp.Addr().Is4() {
				continue
			}
			rport, err := tsPort(r)
			if err != nil {
				return nil, err
			}
			proto := l.Protocol
			if proto == 0 {
				proto = r.Protocol
			} else if r.Protocol != 0 && r.Protocol != proto {
				continue
			}
			out = append(out, Selector{Local: lp, Remote: rp, Protocol: proto, LocalPort: lport, RemotePort: rport})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no local and remote traffic selectors of one family")
	}
	return out, nil
}

// tsPort returns 0 for all ports or the single port; XFRM selectors cannot
// hold other ranges.
func tsPort(ts ike.TrafficSelector) (uint16, error) {
	switch {
	case ts.AllPorts():
		return 0, nil
	case ts.StartPort == ts.EndPort:
		return ts.StartPort, nil
	}
	return 0, fmt.Errorf("traffic selector %s: a port range is not supported by XFRM selectors", ts)
}
