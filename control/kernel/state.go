package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// State is the kernel configuration bpfvpn wants (compiled from the
// configuration). Reconcile makes the kernel match it.
type State struct {
	Tunnels   []Tunnel
	Addresses []Address
	Routes    []Route
}

// Tunnel is one st0.N unit: an XFRM interface with if_id N+1.
type Tunnel struct {
	Unit     int
	Underlay string       // Linux name of the WAN device the interface is bound to; "" for none
	MTU      int          // 0 keeps the kernel's default
	IPv4     netip.Prefix // at most one address per family; the zero Prefix means none
	IPv6     netip.Prefix
	// RoutesWhenDown keeps the routes into this unit while its tunnel is
	// down (establish-tunnels on-traffic: the first packet must be routed
	// into st0 to start IKE). Otherwise routes into a down tunnel are
	// withdrawn so that a backup route takes over.
	RoutesWhenDown bool
	// Peers make the unit multipoint (hub and spoke): each VPN bound to it
	// gets a hidden xfrm interface PeerLinkName(Unit, ID) with if_id
	// PeerIfID, and routes whose next hop is a peer's NextHop go into that
	// peer's tunnel. Works on every kernel (the 6.1 fallback of the design).
	Peers []Peer
	// CollectMD carries a multipoint unit on one collect_md (external)
	// xfrm interface st0.N instead of hidden per-peer interfaces: the
	// tunnel of a packet is chosen by its next hop in BPF (the data plane's
	// tc_xfrm_md_egress sets the peer's if_id), and inbound SAs of every
	// peer arrive on st0.N. Needs Linux 6.2+ and that program on st0.N; a
	// network namespace holds at most one collect_md xfrm interface, and it
	// has no underlay.
	CollectMD bool
}

// Peer is one VPN of a multipoint unit.
type Peer struct {
	ID      int        // 1…MaxPeer, stable for the VPN
	NextHop netip.Addr // the peer's tunnel address (next-hop-tunnel)
}

// upKey is the key of a tunnel's state: the unit for its own tunnel, a
// negative number for a multipoint peer.
func upKey(unit, peer int) int {
	if peer == 0 {
		return unit
	}
	return -(unit<<8 | peer) - 1
}

// Address is an interface address on a non-st0 link.
type Address struct {
	Link   string // Linux interface name
	Prefix netip.Prefix
}

// Route is one static route (one qualified next hop: primary and backup next
// hops of a destination are separate Routes with different metrics).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: no gateway (device route)
	Dev     string     // "" lets the kernel resolve the device from Gateway
	Metric  uint32     // the next hop's preference

	src    netip.Addr // preferred source (multipoint peers)
	onlink bool       // the gateway is on the device without a subnet route
}

func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	fmt.Fprintf(&b, " metric %d", r.Metric)
	return b.String()
}

// key identifies a route in the kernel's main table.
type routeKey struct {
	dst    netip.Prefix
	metric uint32
}

func (r Route) key() routeKey { return routeKey{r.Dst, normMetric(r.Dst, r.Metric)} }

// normMetric maps metric 0 of IPv6 routes to the kernel's default 1024.
func normMetric(dst netip.Prefix, m uint32) uint32 {
	if m == 0 && dst.Addr().Is6() {
		return 1024
	}
	return m
}

// Validate checks s for what the kernel would reject or what would make the
// reconciliation ambiguous.
func (s State) Validate() error {
	var errs []error
	units := map[int]bool{}
	collectMD := 0
	for _, t := range s.Tunnels {
		if t.CollectMD {
			collectMD++
			if collectMD == 2 {
				errs = append(errs, fmt.Errorf("st0.%d: a network namespace holds only one collect_md xfrm interface", t.Unit))
			}
			if t.Underlay != "" {
				errs = append(errs, fmt.Errorf("st0.%d: a collect_md xfrm interface has no underlay (%s)", t.Unit, t.Underlay))
			}
		}
		if err := checkUnit(t.Unit); err != nil {
			errs = append(errs, err)
			continue
		}
		if units[t.Unit] {
			errs = append(errs, fmt.Errorf("st0.%d: defined twice", t.Unit))
		}
		units[t.Unit] = true
		if t.IPv4.IsValid() && !t.IPv4.Addr().Is4() {
			errs = append(errs, fmt.Errorf("st0.%d: IPv4 address %s is not IPv4", t.Unit, t.IPv4))
		}
		if t.IPv6.IsValid() && (!t.IPv6.Addr().Is6() || t.IPv6.Addr().Is4In6()) {
			errs = append(errs, fmt.Errorf("st0.%d: IPv6 address %s is not IPv6", t.Unit, t.IPv6))
		}
		if t.MTU < 0 || (t.MTU > 0 && t.MTU < 68) || t.MTU > 65535 {
			errs = append(errs, fmt.Errorf("st0.%d: MTU %d out of range 68-65535", t.Unit, t.MTU))
		}
		if _, ok := UnitOfLink(t.Underlay); ok {
			errs = append(errs, fmt.Errorf("st0.%d: underlay %s is an st0 unit", t.Unit, t.Underlay))
		}
		ids := map[int]bool{}
		hops := map[netip.Addr]bool{}
		for _, p := range t.Peers {
			if p.ID < 1 || p.ID > MaxPeer || ids[p.ID] {
				errs = append(errs, fmt.Errorf("st0.%d: peer id %d out of range 1-%d or repeated", t.Unit, p.ID, MaxPeer))
			}
			ids[p.ID] = true
			if !p.NextHop.IsValid() || hops[p.NextHop.Unmap()] {
				errs = append(errs, fmt.Errorf("st0.%d: peer %d: next hop %s missing or repeated", t.Unit, p.ID, p.NextHop))
			}
			hops[p.NextHop.Unmap()] = true
			own := t.IPv4
			if p.NextHop.Unmap().Is6() {
				own = t.IPv6
			}
			if !own.IsValid() {
				errs = append(errs, fmt.Errorf("st0.%d: peer %d: no address of %s's family on the unit", t.Unit, p.ID, p.NextHop))
			}
		}
	}
	addrs := map[Address]bool{}
	for _, a := range s.Addresses {
		if _, ok := UnitOfLink(a.Link); ok || strings.HasPrefix(a.Link, "st0.") {
			errs = append(errs, fmt.Errorf("address %s on %s: st0 addresses belong to the Tunnel", a.Prefix, a.Link))
		}
		if a.Link == "" || !a.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("address %q on %q: incomplete", a.Prefix, a.Link))
		}
		a.Prefix = unmapPrefix(a.Prefix)
		if addrs[a] {
			errs = append(errs, fmt.Errorf("address %s on %s: listed twice", a.Prefix, a.Link))
		}
		addrs[a] = true
	}
	keys := map[routeKey]bool{}
	for _, r := range s.Routes {
		if !r.Dst.IsValid() || r.Dst.Masked() != r.Dst {
			errs = append(errs, fmt.Errorf("route %s: destination must be a prefix with host bits zero", r.Dst))
			continue
		}
		if !r.Gateway.IsValid() && r.Dev == "" {
			errs = append(errs, fmt.Errorf("route %s: needs a next hop (gateway or device)", r))
		}
		if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
			errs = append(errs, fmt.Errorf("route %s: gateway family differs from destination", r))
		}
		if keys[r.key()] {
			errs = append(errs, fmt.Errorf("route %s: two next hops with the same preference", r))
		}
		keys[r.key()] = true
	}
	return errors.Join(errs...)
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// tunnelOfRoute returns the unit whose tunnel carries r: its device is
// st0.N, or its gateway lies in an address prefix of st0.N. On a multipoint
// unit, peer is the peer whose next hop is r's gateway (0 when none is).
func (s State) tunnelOfRoute(r Route) (t Tunnel, peer int, ok bool) {
	t, ok = s.unitOfRoute(r)
	if ok && r.Gateway.IsValid() {
		for _, p := range t.Peers {
			if p.NextHop.Unmap() == r.Gateway.Unmap() {
				return t, p.ID, true
			}
		}
	}
	return t, 0, ok
}

func (s State) unitOfRoute(r Route) (Tunnel, bool) {
	if u, ok := UnitOfLink(r.Dev); ok {
		for _, t := range s.Tunnels {
			if t.Unit == u {
				return t, true
			}
		}
		return Tunnel{Unit: u}, true
	}
	if r.Gateway.IsValid() {
		for _, t := range s.Tunnels {
			if (t.IPv4.IsValid() && t.IPv4.Masked().Contains(r.Gateway)) ||
				(t.IPv6.IsValid() && t.IPv6.Masked().Contains(r.Gateway)) {
				return t, true
			}
		}
	}
	return Tunnel{}, false
}

// hasWithdrawableRoutes reports whether some route goes into unit's tunnel
// and is withdrawn while it is down.
func (s State) hasWithdrawableRoutes(unit int) bool {
	for _, t := range s.Tunnels {
		if t.Unit == unit && len(t.Peers) > 0 && !t.RoutesWhenDown {
			return true // every peer has its host route
		}
	}
	for _, r := range s.Routes {
		if t, _, ok := s.tunnelOfRoute(r); ok && t.Unit == unit && !t.RoutesWhenDown {
			return true
		}
	}
	return false
}
