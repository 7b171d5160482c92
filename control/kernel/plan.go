package kernel

import (
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
	fresh := map[string]bool{} // link names that will be (re)created
	gone := map[int]bool{}     // observed link indexes that will be deleted
	for name, l := range obs.links {
		unit, ok := UnitOfLink(name)
		if !ok {
			continue
		}
		t, want := tunnels[unit]
		switch {
		case !want && l.Kind == "xfrm":
			out = append(out, Change{Op: OpDeleteLink, Link: name, Unit: unit, linkIndex: l.Index})
			gone[l.Index] = true
		case !want:
			// A non-xfrm link named like a unit is not bpfvpn's.
		case l.Kind != "xfrm" || l.IfID != IfID(unit) || l.Underlay != underlayIndex(t.Underlay):
			// Wrong shape, or another underlay: the kernel cannot change
			// an xfrm interface's link in place (changelink fails with
			// EINVAL on 6.1 and 6.12), so the unit is recreated.
			out = append(out, Change{Op: OpDeleteLink, Link: name, Unit: unit, linkIndex: l.Index, early: true})
			gone[l.Index] = true
			fresh[name] = true
		default:
			if t.MTU != 0 && l.MTU != t.MTU {
				out = append(out, Change{Op: OpSetMTU, Link: name, Unit: unit, MTU: t.MTU})
			}
			if !l.Up {
				out = append(out, Change{Op: OpSetUp, Link: name, Unit: unit})
			}
		}
	}
	for _, t := range desired.Tunnels {
		name := LinkName(t.Unit)
		if _, ok := obs.links[name]; !ok {
			fresh[name] = true
		}
		if fresh[name] {
			out = append(out,
				Change{Op: OpAddLink, Link: name, Unit: t.Unit, Underlay: t.Underlay, MTU: t.MTU},
				Change{Op: OpSetUp, Link: name, Unit: t.Unit})
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
		if !have[k] || fresh[k.link] {
			out = append(out, Change{Op: OpAddAddress, Link: k.link, Prefix: k.p})
		}
	}

	out = append(out, planRoutes(desired, up, obs, gone)...)

	// XFRM objects of units that are no longer configured.
	for _, p := range obs.pols {
		if _, ok := tunnels[p.Unit]; !ok {
			out = append(out, Change{Op: OpDeletePolicy, Unit: p.Unit, Dir: dirName(p.Dir), Detail: " " + p.Src.String() + " -> " + p.Dst.String(), pol: p})
		}
	}
	for _, sa := range obs.sas {
		if _, ok := tunnels[sa.Unit]; !ok {
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
		if t, ok := desired.tunnelOfRoute(r); ok && !up[t.Unit] && !t.RoutesWhenDown {
			continue // withdrawn while its tunnel is down
		}
		wantR[r.key()] = r
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
