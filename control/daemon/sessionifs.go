package daemon

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/maps"
)

// The data plane's session entries hold zones, not interfaces. The views
// name a session's interfaces the way the vendor does (In: where the first
// packet came from, Out: where the replies come from) from the routing
// table of the daemon's namespace: the interface that routes to the
// initiator, and the one that routes to the responder, shown by their
// configured unit names (ge-0/0/0.0, st0.0).

// unitNames maps the Linux devices of cfg's units to their unit names.
func unitNames(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			out[u.LinuxName] = u.Name
		}
	}
	return out
}

// routeUnit names the unit whose device routes to a ("-" when none does).
func routeUnit(a netip.Addr, names map[string]string) string {
	routes, err := netlink.RouteGet(net.IP(a.Unmap().AsSlice()))
	if err != nil || len(routes) == 0 {
		return "-"
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "-"
	}
	if n, ok := names[link.Attrs().Name]; ok {
		return n
	}
	return link.Attrs().Name
}

// sessionInterfaces is sessionview.Names.Interfaces by routing.
func sessionInterfaces(names map[string]string) func(maps.Session) (string, string) {
	return func(s maps.Session) (string, string) {
		return routeUnit(s.Src, names), routeUnit(s.Dst, names)
	}
}
