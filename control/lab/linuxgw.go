package lab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// TunnelLink is the XFRM interface of a gateway that is not a bpfvpn
// daemon (the strongSwan role): the vendor name st0.0 is a valid Linux name.
const TunnelLink = "st0.0"

// SetupLinuxGateway gives gateway (SRX1 or SRX2) what its reference
// configuration would apply, for a peer that is plain Linux plus an IKE
// daemon: the LAN and WAN addresses, st0.0 as an XFRM interface with if_id
// SwanIfID and the st0 address, the route to the remote LAN through st0.0
// and the default route. It is idempotent.
func (l *Lab) SetupLinuxGateway(gateway string) error {
	s, ok := sites[gateway]
	if !ok {
		return fmt.Errorf("linux gateway: %q is not a gateway", gateway)
	}
	h, err := l.Handle(gateway)
	if err != nil {
		return err
	}
	defer h.Close()
	var wanIndex int
	for _, e := range Endpoints(gateway) {
		link, err := h.LinkByName(e.Link)
		if err != nil {
			return fmt.Errorf("linux gateway %s: find %s: %w", gateway, e.Link, err)
		}
		if err := h.AddrReplace(link, &netlink.Addr{IPNet: prefixToIPNet(e.Address)}); err != nil {
			return fmt.Errorf("linux gateway %s: address %s on %s: %w", gateway, e.Address, e.Link, err)
		}
		if e.Vendor == "ge-0/0/1" {
			wanIndex = link.Attrs().Index
		}
	}
	st0, err := h.LinkByName(TunnelLink)
	if err != nil {
		x := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: TunnelLink, ParentIndex: wanIndex}, Ifid: SwanIfID}
		if err := h.LinkAdd(x); err != nil {
			return fmt.Errorf("linux gateway %s: add xfrm interface %s: %w", gateway, TunnelLink, err)
		}
		if st0, err = h.LinkByName(TunnelLink); err != nil {
			return fmt.Errorf("linux gateway %s: %w", gateway, err)
		}
	}
	if err := h.AddrReplace(st0, &netlink.Addr{IPNet: prefixToIPNet(netip.MustParsePrefix(s.st0))}); err != nil {
		return fmt.Errorf("linux gateway %s: address on %s: %w", gateway, TunnelLink, err)
	}
	if err := h.LinkSetUp(st0); err != nil {
		return fmt.Errorf("linux gateway %s: set %s up: %w", gateway, TunnelLink, err)
	}
	routes := []netlink.Route{
		{Dst: prefixToIPNet(netip.MustParsePrefix(s.remoteLAN)), LinkIndex: st0.Attrs().Index},
		{Dst: prefixToIPNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)), Gw: net.IP(netip.MustParseAddr(s.nextHop).AsSlice())},
	}
	for _, r := range routes {
		if err := h.RouteReplace(&r); err != nil {
			return fmt.Errorf("linux gateway %s: route %s: %w", gateway, r.Dst, err)
		}
	}
	return nil
}
