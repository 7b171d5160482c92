package daemon

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

// bpfvpnRouteProtocol is the rtnetlink protocol of routes bpfvpn installs
// (control/kernel.RouteProtocol).
const bpfvpnRouteProtocol = 246

// LinkInfo is the kernel's view of one link.
type LinkInfo struct {
	Index     uint32
	AdminUp   bool
	LinkUp    bool
	MTU       uint32
	RxPackets uint64
	TxPackets uint64
	// Multipoint: how an st0 unit carries several tunnels, if it does
	// (multipointOf).
	Multipoint string
}

// LinkReader reads links and routes of the daemon's network namespace for
// the operational views.
type LinkReader interface {
	Link(name string) (LinkInfo, error)
	// Routes returns the main table's routes (Static for bpfvpn's, Direct
	// for connected ones) and the local table's host routes (Local), with
	// Linux device names.
	Routes() ([]ops.Route, error)
}

type netlinkReader struct{}

func (netlinkReader) Link(name string) (LinkInfo, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return LinkInfo{}, fmt.Errorf("link %s: %w", name, err)
	}
	a := l.Attrs()
	li := LinkInfo{Index: uint32(a.Index), AdminUp: a.Flags&unix.IFF_UP != 0,
		LinkUp: a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown, MTU: uint32(a.MTU)}
	if a.Statistics != nil {
		li.RxPackets, li.TxPackets = a.Statistics.RxPackets, a.Statistics.TxPackets
	}
	li.Multipoint = multipointOf(l)
	return li, nil
}

func (netlinkReader) Routes() ([]ops.Route, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []ops.Route
	for _, table := range []int{unix.RT_TABLE_MAIN, unix.RT_TABLE_LOCAL} {
		rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			dst, ok := prefixOf(r.Dst.IP, r.Dst.Mask)
			if !ok || dst.Addr().IsLinkLocalUnicast() || dst.Addr().IsMulticast() {
				continue
			}
			or := ops.Route{Destination: dst, Active: true}
			switch {
			case table == unix.RT_TABLE_LOCAL:
				if r.Type != unix.RTN_LOCAL || dst.Addr().IsLoopback() {
					continue
				}
				or.Protocol = "Local"
			case int(r.Protocol) == bpfvpnRouteProtocol:
				or.Protocol, or.Preference = "Static", 5
				m := uint32(r.Priority)
				or.Metric = &m
			case r.Scope == netlink.SCOPE_LINK:
				or.Protocol = "Direct"
			default:
				or.Protocol, or.Preference = "Static", 5
			}
			nh := ops.NextHop{Interface: names[r.LinkIndex], Selected: table == unix.RT_TABLE_MAIN}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				nh.Gateway = gw.Unmap()
			}
			or.NextHops = []ops.NextHop{nh}
			out = append(out, or)
		}
	}
	return out, nil
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones := 0
	for _, b := range mask {
		for ; b != 0; b <<= 1 {
			if b&0x80 != 0 {
				ones++
			}
		}
	}
	if ones > a.BitLen() {
		ones = a.BitLen()
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
