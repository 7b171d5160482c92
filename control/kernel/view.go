package kernel

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// UnitStatus is one st0 unit as the kernel has it (for `show interfaces st0`).
type UnitStatus struct {
	Unit      int
	Name      string // st0.N
	Index     int
	IfID      uint32
	Underlay  string // "" when not bound
	AdminUp   bool
	LinkUp    bool // operational state of the xfrm interface
	TunnelUp  bool // the tunnel state routes follow (an SA pair is installed)
	MTU       int
	Addresses []netip.Prefix
	RxPackets uint64
	TxPackets uint64
	// Peers are the tunnels of a multipoint unit: its hidden per-VPN
	// interfaces, or on a collect_md unit the peers (without a link).
	Peers []PeerStatus
	// CollectMD: the unit is a collect_md xfrm interface whose tunnel is
	// chosen per packet by next hop in BPF.
	CollectMD bool
}

// PeerStatus is one peer of a multipoint unit.
type PeerStatus struct {
	ID                   int
	Name                 string // st0.N.pK; "" on a collect_md unit
	Index                int
	IfID                 uint32
	LinkUp               bool
	TunnelUp             bool
	RxPackets, TxPackets uint64
}

// Units lists the st0 units bpfvpn owns, by unit number.
func (r *Reconciler) Units() ([]UnitStatus, error) {
	links, err := r.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrs, err := r.addrDump()
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []UnitStatus
	peers := map[int][]PeerStatus{}
	for _, l := range links {
		x, ok := l.(*netlink.Xfrmi)
		if !ok {
			continue
		}
		a := l.Attrs()
		if unit, peer, ok := peerOfLink(a.Name); ok && x.Ifid == PeerIfID(unit, peer) {
			p := PeerStatus{ID: peer, Name: a.Name, Index: a.Index, IfID: x.Ifid,
				LinkUp: a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown, TunnelUp: r.up[upKey(unit, peer)]}
			if a.Statistics != nil {
				p.RxPackets, p.TxPackets = a.Statistics.RxPackets, a.Statistics.TxPackets
			}
			peers[unit] = append(peers[unit], p)
			continue
		}
		unit, ok := UnitOfLink(a.Name)
		if !ok || (x.Ifid != IfID(unit) && x.Ifid != 0) {
			continue
		}
		u := UnitStatus{Unit: unit, Name: a.Name, Index: a.Index, IfID: x.Ifid, Underlay: names[x.ParentIndex],
			AdminUp: a.Flags&net.FlagUp != 0, LinkUp: a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown,
			TunnelUp: r.up[unit], MTU: a.MTU, CollectMD: x.Ifid == 0}
		if !u.AdminUp {
			u.LinkUp = false
		}
		if a.Statistics != nil {
			u.RxPackets, u.TxPackets = a.Statistics.RxPackets, a.Statistics.TxPackets
		}
		for _, ad := range addrs {
			if ad.LinkIndex == a.Index && !ad.Prefix.Addr().IsLinkLocalUnicast() {
				u.Addresses = append(u.Addresses, ad.Prefix)
			}
		}
		out = append(out, u)
	}
	for i := range out {
		ps := peers[out[i].Unit]
		if out[i].CollectMD {
			ps = nil
			for _, t := range r.desired.Tunnels {
				if t.Unit != out[i].Unit {
					continue
				}
				for _, p := range t.Peers {
					up := r.up[upKey(t.Unit, p.ID)]
					ps = append(ps, PeerStatus{ID: p.ID, IfID: PeerIfID(t.Unit, p.ID), LinkUp: up, TunnelUp: up})
				}
				out[i].TunnelUp = false
				for _, p := range ps {
					out[i].TunnelUp = out[i].TunnelUp || p.TunnelUp
				}
			}
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a].ID < ps[b].ID })
		out[i].Peers = ps
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out, nil
}

// RouteStatus is one kernel route of the main or local table (for `show
// route`).
type RouteStatus struct {
	Dst      netip.Prefix
	Gateway  netip.Addr // invalid for device routes
	Dev      string
	Protocol int  // rtnetlink protocol: RouteProtocol for bpfvpn's static routes, 2 kernel, …
	Table    int  // 254 main, 255 local
	Local    bool // a route to one of the router's own addresses (local table, type local)
	Metric   uint32
	Owned    bool // installed by bpfvpn
}

// KernelRoutes lists the unicast and local routes of the main and local
// tables (both families), sorted by destination then metric.
func (r *Reconciler) KernelRoutes() ([]RouteStatus, error) {
	links, err := r.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []RouteStatus
	for _, table := range []int{mainTable, unix.RT_TABLE_LOCAL} {
		routes, err := r.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, rt := range routes {
			if rt.Type != unix.RTN_UNICAST && rt.Type != unix.RTN_LOCAL {
				continue // broadcast, multicast, anycast
			}
			o, ok := toObsRoute(rt)
			if !ok {
				continue
			}
			out = append(out, RouteStatus{Dst: o.Dst, Gateway: o.Gateway, Dev: names[rt.LinkIndex],
				Protocol: int(rt.Protocol), Table: table, Local: rt.Type == unix.RTN_LOCAL, Metric: o.Metric,
				Owned: table == mainTable && rt.Protocol == RouteProtocol})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := out[i].Dst.Addr().Compare(out[j].Dst.Addr()); c != 0 {
			return c < 0
		}
		if out[i].Dst.Bits() != out[j].Dst.Bits() {
			return out[i].Dst.Bits() < out[j].Dst.Bits()
		}
		return out[i].Metric < out[j].Metric
	})
	return out, nil
}
