package kernel

import (
	"fmt"
	"net/netip"
	"sort"
)

// plan computes the changes that make the kernel (obs) match desired, given
// which tunnels are up. It is pure: no kernel access.
func plan(desired State, up map[int]bool, obs *observed) []Change {
	var out []Change
	tunnels := map[int]Tunnel{}
	for _, t := range desired.Tunnels {
		tunnels[t.Unit] = t
	}
	underlayIndex := func(name string) int {
		if name == "" {
			return 0
		}
		return obs.links[name].Index // 0 when missing: apply reports it
	}

	// Links. recreated/new st0 links start without addresses and routes.
	fresh := map[string]bool{}    // link names that will be (re)created
	gone := map[int]bool{}        // observed link indexes that will be deleted
	conflict := map[string]bool{} // desired unit names taken by a link that is not bpfvpn's
	for name, l := range obs.links {
		unit, ok := UnitOfLink(name)
		peer := 0
		if !ok {
			if unit, peer, ok = peerOfLink(name); !ok {
				continue
			}
		}
		t, want := tunnels[unit]
		if peer != 0 {
			want = want && hasPeer(t, peer) && !t.CollectMD
		}
		// if_id 0 is only possible on a collect_md xfrm interface.
		isMD := peer == 0 && l.Kind == "xfrm" && l.IfID == 0
		ours := l.Kind == "xfrm" && (l.IfID == tunnelIfID(unit, peer) || isMD)
		switch {
		case !ours && want:
			// Never delete a link bpfvpn did not create, even in its way.
			out = append(out, Change{Op: OpConflict, Link: name, Unit: unit, Peer: peer,
				Detail: fmt.Sprintf("kind %q, if_id %d", l.Kind, l.IfID)})
			conflict[name] = true
		case !ours:
			// Named like a unit but not bpfvpn's, and not wanted: left alone.
		case !want:
			out = append(out, Change{Op: OpDeleteLink, Link: name, Unit: unit, Peer: peer, linkIndex: l.Index})
			gone[l.Index] = true
		case isMD != t.CollectMD:
			// Per-unit and collect_md xfrm interfaces are different
			// devices: recreate.
			out = append(out, Change{Op: OpDeleteLink, Link: name, Unit: unit, Peer: peer, linkIndex: l.Index, early: true})
			gone[l.Index] = true
			fresh[name] = true
		case l.Underlay != underlayIndex(t.Underlay):
			// The kernel cannot change an xfrm interface's link in place
			// (changelink fails with EINVAL on 6.1 and 6.12): recreate.
			out = append(out, Change{Op: OpDeleteLink, Link: name, Unit: unit, Peer: peer, linkIndex: l.Index, early: true})
			gone[l.Index] = true
			fresh[name] = true
		default:
			if t.MTU != 0 && l.MTU != t.MTU {
				out = append(out, Change{Op: OpSetMTU, Link: name, Unit: unit, Peer: peer, MTU: t.MTU})
			}
			if w := linkWantUp(t, peer, up); l.Up != w {
				op := OpSetUp
				if !w {
					op = OpSetDown
				}
				out = append(out, Change{Op: op, Link: name, Unit: unit, Peer: peer})
			}
		}
	}
	for _, t := range desired.Tunnels {
		peers := []int{0}
		for _, p := range t.Peers {
			if !t.CollectMD {
				peers = append(peers, p.ID)
			}
		}
		for _, peer := range peers {
			name := LinkName(t.Unit)
			if peer != 0 {
				name = PeerLinkName(t.Unit, peer)
			}
			if _, ok := obs.links[name]; !ok {
				fresh[name] = true
			}
			if fresh[name] {
				out = append(out, Change{Op: OpAddLink, Link: name, Unit: t.Unit, Peer: peer, Underlay: t.Underlay, MTU: t.MTU,
					CollectMD: t.CollectMD && peer == 0})
				if linkWantUp(t, peer, up) {
					out = append(out, Change{Op: OpSetUp, Link: name, Unit: t.Unit, Peer: peer})
				}
			}
		}
	}

	// Addresses.
	type la struct {
		link string
		p    netip.Prefix
	}
	want := map[la]bool{}
	for _, t := range desired.Tunnels {
		for _, p := range []netip.Prefix{t.IPv4, t.IPv6} {
			if p.IsValid() {
				want[la{LinkName(t.Unit), unmapPrefix(p)}] = true
			}
		}
	}
	for _, a := range desired.Addresses {
		want[la{a.Link, unmapPrefix(a.Prefix)}] = true
	}
	have := map[la]bool{}
	for _, a := range obs.addrs {
		if gone[a.LinkIndex] {
			continue
		}
		l, ok := obs.linkByIndex(a.LinkIndex)
		if !ok {
			continue
		}
		k := la{l.Name, a.Prefix}
		have[k] = true
		if want[k] {
			continue
		}
		_, isUnit := UnitOfLink(l.Name)
		owned := a.Proto == uint8(RouteProtocol) ||
			(isUnit && l.Kind == "xfrm" && !a.Prefix.Addr().IsLinkLocalUnicast())
		if owned {
			out = append(out, Change{Op: OpDeleteAddress, Link: l.Name, Prefix: a.Prefix, linkIndex: a.LinkIndex,
				promote: hasSecondary(obs.addrs, a)})
		}
	}
	for k := range want {
		if conflict[k.link] {
			continue
		}
		if !have[k] || fresh[k.link] {
			out = append(out, Change{Op: OpAddAddress, Link: k.link, Prefix: k.p})
		}
	}

	for _, c := range planRoutes(desired, up, obs, gone) {
		if !conflict[c.Route.Dev] {
			out = append(out, c)
		}
	}

	// XFRM objects of units that are no longer configured.
	configured := func(unit, peer int) bool {
		t, ok := tunnels[unit]
		return ok && (peer == 0 || hasPeer(t, peer))
	}
	for _, p := range obs.pols {
		if !configured(p.Unit, p.Peer) {
			out = append(out, Change{Op: OpDeletePolicy, Unit: p.Unit, Dir: dirName(p.Dir), Detail: " " + p.Src.String() + " -> " + p.Dst.String(), pol: p})
		}
	}
	for _, sa := range obs.sas {
		if !configured(sa.Unit, sa.Peer) {
			out = append(out, Change{Op: OpDeleteSA, Unit: sa.Unit, SPI: sa.SPI, Dir: sa.Dst.String(), sa: sa})
		}
	}

	return sortChanges(out)
}

func fromObsRoute(r obsRoute, obs *observed) Route {
	rt := Route{Dst: r.Dst, Gateway: r.Gateway, Metric: r.Metric}
	if l, ok := obs.linkByIndex(r.LinkIndex); ok {
		rt.Dev = l.Name
	}
	return rt
}

func dirName(d uint8) string {
	switch d {
	case 0:
		return "in"
	case 1:
		return "out"
	case 2:
		return "fwd"
	}
	return "dir?"
}

// hasSecondary reports whether deleting IPv4 address a would take other
// addresses of its subnet on its link with it (the kernel deletes the
// secondaries of a deleted primary unless promote_secondaries is set).
func hasSecondary(addrs []obsAddr, a obsAddr) bool {
	if !a.Prefix.Addr().Is4() {
		return false
	}
	for _, o := range addrs {
		if o.LinkIndex == a.LinkIndex && o.Prefix != a.Prefix && o.Prefix.Bits() == a.Prefix.Bits() &&
			o.Prefix.Masked() == a.Prefix.Masked() {
			return true
		}
	}
	return false
}

// planRoutes computes the route changes alone. gone holds the indexes of
// links that will be deleted (their routes vanish with them).
func planRoutes(desired State, up map[int]bool, obs *observed, gone map[int]bool) []Change {
	var out []Change
	wantR := map[routeKey]Route{}
	for _, r := range desired.Routes {
		t, peer, ok := desired.tunnelOfRoute(r)
		if ok && !up[upKey(t.Unit, peer)] && !t.RoutesWhenDown {
			continue // withdrawn while its tunnel is down
		}
		if ok && peer != 0 && !t.CollectMD {
			r = peerRoute(t, peer, r)
		}
		wantR[r.key()] = r
	}
	// Each multipoint peer's own address is reached through its tunnel (on
	// a collect_md unit, through the unit's subnet).
	for _, t := range desired.Tunnels {
		if t.CollectMD {
			continue
		}
		for _, p := range t.Peers {
			if !up[upKey(t.Unit, p.ID)] && !t.RoutesWhenDown {
				continue
			}
			nh := p.NextHop.Unmap()
			r := peerRoute(t, p.ID, Route{Dst: netip.PrefixFrom(nh, nh.BitLen())})
			r.Gateway, r.onlink = netip.Addr{}, false
			wantR[r.key()] = r
		}
	}
	haveR := map[routeKey]bool{}
	for _, r := range obs.routes {
		k := r.key()
		d, ok := wantR[k]
		lost := gone[r.LinkIndex]
		if !ok {
			if !lost {
				out = append(out, Change{Op: OpDeleteRoute, Route: fromObsRoute(r, obs), obsRoute: r})
			}
			continue
		}
		haveR[k] = true
		if lost {
			out = append(out, Change{Op: OpAddRoute, Route: d, Link: d.Dev})
			continue
		}
		same := (!d.Gateway.IsValid() || d.Gateway == r.Gateway) &&
			(d.Gateway.IsValid() || !r.Gateway.IsValid()) &&
			(d.Dev == "" || (obs.links[d.Dev].Index == r.LinkIndex && r.LinkIndex != 0))
		if !same {
			out = append(out, Change{Op: OpReplaceRoute, Route: d, Link: d.Dev})
		}
	}
	for k, d := range wantR {
		if !haveR[k] {
			out = append(out, Change{Op: OpAddRoute, Route: d, Link: d.Dev})
		}
	}

	return out
}

// sortChanges orders changes by phase, then by description (computed once).
func sortChanges(out []Change) []Change {
	keys := make([]string, len(out))
	idx := make([]int, len(out))
	for i := range out {
		keys[i], idx[i] = out[i].String(), i
	}
	sort.SliceStable(idx, func(x, y int) bool {
		i, j := idx[x], idx[y]
		if out[i].early != out[j].early {
			return out[i].early // a link in the way of its replacement goes first
		}
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return keys[i] < keys[j]
	})
	sorted := make([]Change, len(out))
	for k, i := range idx {
		sorted[k] = out[i]
	}
	out = sorted
	return out
}

func hasPeer(t Tunnel, id int) bool {
	for _, p := range t.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// peerRoute sends r into the hidden interface of peer id of multipoint unit
// t: the peer's next hop is on-link there, and the unit's own address is
// the source.
func peerRoute(t Tunnel, id int, r Route) Route {
	r.Dev = PeerLinkName(t.Unit, id)
	r.onlink = true
	if r.Dst.Addr().Is4() {
		r.src = t.IPv4.Addr()
	} else {
		r.src = t.IPv6.Addr()
	}
	return r
}

// linkWantUp is the administrative state of the xfrm interface of unit t
// (peer 0) or of one of its multipoint peers: it follows the tunnel, so that
// `show interfaces st0` and routing daemons see a unit without an SA pair
// as down. A unit whose routes stay while it is down (on-traffic) stays up:
// the first packet must enter it. A multipoint unit's own interface carries
// no SAs and stays up; its peers' interfaces follow their tunnels.
func linkWantUp(t Tunnel, peer int, up map[int]bool) bool {
	if t.RoutesWhenDown || (peer == 0 && len(t.Peers) > 0) {
		return true
	}
	return up[upKey(t.Unit, peer)]
}
