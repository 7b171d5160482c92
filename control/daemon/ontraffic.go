package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// establish-tunnels on-traffic with the data plane: the st0 interface of
// every down on-traffic tunnel is marked in the data plane's tunnel map;
// the first packet routed into it raises a ring-buffer event (at most one a
// second per interface) that starts IKE. Without the data plane, the IKE
// component polls the st0 counters instead.

// errEventsInstead makes the IKE component's st0 counter polling skip a
// unit: the data plane's events start its tunnel.
var errEventsInstead = errors.New("on-traffic start comes from the data plane's events")

// wireOnTraffic connects the data plane's on-traffic events to the IKE
// component and the tunnels' up/down state to the data plane.
func wireOnTraffic(ik *ikeComponent, dp *dataplaneComponent) {
	dp.onDemand = ik.trafficStartIfID
	poll := ik.txCount
	ik.txCount = func(unit int) (uint64, error) {
		if dp.demandsRunning() {
			return 0, errEventsInstead
		}
		return poll(unit)
	}
}

// trafficStartIfID starts what the down on-traffic tunnel whose CHILD SAs
// carry ifid lacks: an IKE SA (after the tunnel's back-off) or, on an
// established one without a CHILD SA (the peer deleted it), a CHILD SA. An
// IKE SA that is being set up is left to finish (one the peer started, until
// it stalls).
func (c *ikeComponent) trafficStartIfID(ifid uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, tu := range c.tunnels {
		if tunnelIfID(tu.t) != ifid || tu.t.Immediate || tu.up.Load() || tu.stopped.Load() {
			continue
		}
		tu.sup.Lock()
		sas := tu.eng.IKESAs(now)
		if ikeProgress(sas) != progressIdle || !now.Before(tu.nextTry) {
			c.trafficLocked(now, tu, sas, "data plane event")
		}
		tu.sup.Unlock()
	}
}

// demandMark is one st0 interface that raises on-traffic events.
type demandMark struct {
	unit  int
	ifids []uint32              // if_ids of the on-traffic tunnels behind it
	hops  map[netip.Addr]uint32 // on a collect_md unit: next hop -> if_id
}

// onTrafficMarks maps the on-traffic VPNs of cfg to the st0 interfaces
// their packets are routed into, by interface name.
func onTrafficMarks(cfg *config.Config, st kernel.State) map[string]*demandMark {
	md := map[int]kernel.Tunnel{}
	for _, t := range st.Tunnels {
		if t.CollectMD {
			md[t.Unit] = t
		}
	}
	out := map[string]*demandMark{}
	for _, v := range cfg.IPsec.VPNs {
		if v.EstablishImmediately {
			continue
		}
		ifid := kernel.VPNIfID(cfg, v.Name)
		unit, peer, ok := kernel.TunnelOfIfID(ifid)
		if !ok {
			continue
		}
		name := kernel.LinkName(unit)
		t, shared := md[unit]
		if peer != 0 && !shared {
			name = kernel.PeerLinkName(unit, peer)
		}
		m := out[name]
		if m == nil {
			m = &demandMark{unit: unit}
			out[name] = m
		}
		m.ifids = append(m.ifids, ifid)
		if shared {
			if m.hops == nil {
				m.hops = map[netip.Addr]uint32{}
			}
			for _, p := range t.Peers {
				if p.ID == peer {
					m.hops[p.NextHop.Unmap()] = ifid
				}
			}
		}
	}
	return out
}

// syncOnTraffic marks the interfaces of on-traffic tunnels in the data
// plane (up when every tunnel behind the interface has installed SAs),
// forgets interfaces no longer marked, and starts the event reader once.
// Caller holds c.mu; c.set is open.
func (c *dataplaneComponent) syncOnTraffic(cfg *config.Config, st kernel.State) error {
	marks := onTrafficMarks(cfg, st)
	up := map[uint32]bool{}
	if installed, err := c.kern.InstalledSAs(); err == nil {
		for _, sa := range installed {
			up[kernel.TunnelIfID(sa.Unit, sa.Peer)] = true
		}
	}
	c.tunnelUp = up
	next := map[uint32]*demandMark{}
	var errs []error
	for name, m := range marks {
		l, err := netlink.LinkByName(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("on-traffic interface %s: %w", name, err))
			continue
		}
		idx := uint32(l.Attrs().Index)
		next[idx] = m
		if err := dataplane.SetTunnelState(c.set, idx, uint32(m.unit), c.allUp(m), 0); err != nil {
			errs = append(errs, err)
		}
	}
	for idx := range c.marks {
		if next[idx] == nil {
			if err := dataplane.RemoveTunnelState(c.set, idx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.marks = next
	if c.demandStop == nil && len(next) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := dataplane.TunnelDemands(ctx, c.set)
		if err != nil {
			cancel()
			return errors.Join(append(errs, err)...)
		}
		c.demandStop = cancel
		go c.readDemands(ch)
	}
	return errors.Join(errs...)
}

// syncOnTrafficOrWarn is syncOnTraffic for Apply: a tunnel that cannot be
// marked keeps the rest of the configuration (it is started by the st0
// counter polling instead, or not at all).
func (c *dataplaneComponent) syncOnTrafficOrWarn(cfg *config.Config, st kernel.State) {
	if err := c.syncOnTraffic(cfg, st); err != nil {
		c.log.Warn("on-traffic tunnels", "err", err)
	}
}

func (c *dataplaneComponent) allUp(m *demandMark) bool {
	for _, id := range m.ifids {
		if !c.tunnelUp[id] {
			return false
		}
	}
	return true
}

// demandsRunning reports whether the event reader runs.
func (c *dataplaneComponent) demandsRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.demandStop != nil
}

func (c *dataplaneComponent) readDemands(ch <-chan dataplane.TunnelDemand) {
	for d := range ch {
		ifids := c.demandIfIDs(d)
		c.log.Debug("on-traffic event", "ifindex", d.Ifindex, "dst", d.Dst.String(), "tunnels", len(ifids))
		if c.onDemand != nil {
			for _, id := range ifids {
				c.onDemand(id)
			}
		}
	}
}

// demandIfIDs returns the tunnels an event asks for: the one behind its
// interface, or on a collect_md unit the one whose peer is the next hop of
// the packet's destination (every on-traffic tunnel of the unit when that
// is not known).
func (c *dataplaneComponent) demandIfIDs(d dataplane.TunnelDemand) []uint32 {
	c.mu.Lock()
	m := c.marks[d.Ifindex]
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	if m.hops != nil && d.Dst.IsValid() {
		if rs, err := netlink.RouteGet(d.Dst.AsSlice()); err == nil && len(rs) > 0 {
			nh := d.Dst
			if gw, ok := netip.AddrFromSlice(rs[0].Gw); ok {
				nh = gw
			}
			if id, ok := m.hops[nh.Unmap()]; ok {
				return []uint32{id}
			}
		}
	}
	return m.ifids
}

// SetTunnelUp records the state of the tunnel whose SAs carry ifid (the
// IKE sink's hooks call it) and updates its interface's mark.
func (c *dataplaneComponent) SetTunnelUp(ifid uint32, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tunnelUp == nil {
		c.tunnelUp = map[uint32]bool{}
	}
	c.tunnelUp[ifid] = up
	if c.set == nil {
		return
	}
	for idx, m := range c.marks {
		for _, id := range m.ifids {
			if id == ifid {
				if err := dataplane.SetTunnelState(c.set, idx, uint32(m.unit), c.allUp(m), 0); err != nil {
					c.log.Warn("on-traffic tunnel state", "err", err)
				}
			}
		}
	}
}

// tunnelUpSetter is the data plane as the IKE sink sees it.
type tunnelUpSetter interface{ SetTunnelUp(ifid uint32, up bool) }

var _ tunnelUpSetter = (*dataplaneComponent)(nil)
