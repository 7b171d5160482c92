package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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

// IKESink installs what the IKE engines negotiate: it implements ike.SASink
// on a Reconciler.
//
// A rekey is make-before-break without loss: ChildSARekeyed installs the new
// inbound SA at once; the new outbound SA follows when the old pair is
// deleted (by then the peer has installed its new inbound SA too), or after
// Grace at the latest. The old inbound SA stays for Grace after that.
type IKESink struct {
	ike.NopSink
	R *Reconciler
	// Grace is how long an old inbound SA stays after its rekey, and the
	// longest the new outbound SA waits for the old pair's deletion
	// (default 5 s).
	Grace time.Duration
	Log   *slog.Logger

	mu      sync.Mutex
	pairs   map[int]map[uint32]ChildSA // unit -> inbound SPI -> SA without keys
	pending map[uint32]*pendingOut     // old pair's inbound SPI -> new pair waiting for its outbound SA
}

// pendingOut is a rekeyed pair whose outbound SA is not installed yet.
type pendingOut struct {
	sa    ChildSA // with keys
	timer *time.Timer
}

func (s *IKESink) grace() time.Duration {
	if s.Grace == 0 {
		return 5 * time.Second
	}
	return s.Grace
}

func (s *IKESink) remember(c ChildSA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pairs == nil {
		s.pairs = map[int]map[uint32]ChildSA{}
	}
	if s.pairs[c.Unit] == nil {
		s.pairs[c.Unit] = map[uint32]ChildSA{}
	}
	c.Inbound, c.Outbound = Keys{}, Keys{}
	s.pairs[c.Unit][c.InboundSPI] = c
}

// forget removes c and reports how many pairs its unit still has.
func (s *IKESink) forget(c ChildSA) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pairs[c.Unit], c.InboundSPI)
	return len(s.pairs[c.Unit])
}

// ChildSAInstalled installs the pair and brings the tunnel up.
func (s *IKESink) ChildSAInstalled(sa ike.ChildSA) error {
	c, err := FromIKE(sa)
	if err != nil {
		return err
	}
	if _, err := s.R.InstallChildSA(context.Background(), c); err != nil {
		return err
	}
	s.remember(c)
	return nil
}

// ChildSARekeyed installs the new pair's inbound SA; its outbound SA follows
// with the old pair's ChildSADeleted (or after Grace).
func (s *IKESink) ChildSARekeyed(old, sa ike.ChildSA) error {
	c, err := FromIKE(sa)
	if err != nil {
		return err
	}
	o, err := FromIKE(old)
	if err != nil {
		return err
	}
	if _, err := s.R.InstallInbound(context.Background(), c); err != nil {
		return err
	}
	s.remember(c)
	p := &pendingOut{sa: c}
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[uint32]*pendingOut{}
	}
	s.pending[o.InboundSPI] = p
	p.timer = time.AfterFunc(s.grace(), func() { s.completeRekey(o.InboundSPI, p) })
	s.mu.Unlock()
	return nil
}

// completeRekey installs the pending outbound SA of the pair that replaces
// the one with inbound SPI oldIn, once.
func (s *IKESink) completeRekey(oldIn uint32, p *pendingOut) {
	s.mu.Lock()
	if s.pending[oldIn] != p {
		s.mu.Unlock()
		return
	}
	delete(s.pending, oldIn)
	s.mu.Unlock()
	p.timer.Stop()
	if _, err := s.R.InstallChildSA(context.Background(), p.sa); err != nil && s.Log != nil {
		s.Log.Warn("install rekeyed outbound SA", "sa", p.sa.String(), "err", err)
	}
}

// ChildSADeleted retires the pair (its inbound SA after the grace period)
// or, when it was the unit's last one, takes the tunnel down.
func (s *IKESink) ChildSADeleted(sa ike.ChildSA) {
	c, err := FromIKE(sa)
	if err != nil {
		s.logWarn("child SA deleted", sa, err)
		return
	}
	ctx := context.Background()
	s.mu.Lock()
	p := s.pending[c.InboundSPI]
	s.mu.Unlock()
	if p != nil {
		s.completeRekey(c.InboundSPI, p) // switch outbound before the old one goes
	}
	if s.forget(c) > 0 {
		_, err = s.R.RetireChildSA(ctx, c, s.grace())
	} else {
		_, err = s.R.RemoveTunnel(ctx, c.Unit)
	}
	if err != nil {
		s.logWarn("child SA deleted", sa, err)
	}
}

func (s *IKESink) logWarn(what string, sa ike.ChildSA, err error) {
	if s.Log != nil {
		s.Log.Warn(what, "sa", sa.String(), "err", err)
	}
}

var _ ike.SASink = (*IKESink)(nil)
