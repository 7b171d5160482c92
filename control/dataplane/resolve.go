package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Link is what the compiler needs to know about a Linux interface.
type Link struct {
	Name   string
	Index  uint32
	L2     bool   // has an Ethernet header
	Xfrm   bool   // an XFRM interface (st0.N)
	VLAN   uint16 // VLAN id of a VLAN device
	Parent uint32 // ifindex of a VLAN device's parent
	Addrs  []netip.Addr
}

// Resolver looks interfaces up (in the current network namespace).
type Resolver func(name string) (Link, error)

// NetlinkResolver resolves through rtnetlink.
func NetlinkResolver(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("interface %s: %w", name, err)
	}
	a := l.Attrs()
	out := Link{Name: name, Index: uint32(a.Index), L2: a.EncapType == "ether"}
	switch v := l.(type) {
	case *netlink.Vlan:
		out.VLAN = uint16(v.VlanId)
		out.Parent = uint32(a.ParentIndex)
	case *netlink.Xfrmi:
		out.Xfrm = true
		out.L2 = false
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return Link{}, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok {
			out.Addrs = append(out.Addrs, ip.Unmap())
		}
		if ad.Broadcast != nil {
			if ip, ok := netip.AddrFromSlice(ad.Broadcast); ok {
				out.Addrs = append(out.Addrs, ip.Unmap())
			}
		}
	}
	return out, nil
}
