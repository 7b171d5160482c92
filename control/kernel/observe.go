package kernel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// observe reads the parts of the kernel state that the planner compares.
func (r *Reconciler) observe() (*observed, error) {
	obs, err := r.observeRoutes()
	if err != nil {
		return nil, err
	}
	if obs.addrs, err = r.addrDump(); err != nil {
		return nil, err
	}
	if obs.sas, obs.pols, err = r.observeXfrm(); err != nil {
		return nil, err
	}
	return obs, nil
}

// observeRoutes reads links and bpfvpn's routes only.
func (r *Reconciler) observeRoutes() (*observed, error) {
	obs := &observed{links: map[string]obsLink{}}
	links, err := r.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		ol := obsLink{Index: a.Index, Name: a.Name, Kind: l.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		if x, ok := l.(*netlink.Xfrmi); ok {
			ol.IfID, ol.Underlay = x.Ifid, x.ParentIndex
		}
		obs.links[a.Name] = ol
	}
	routes, err := r.h.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Protocol: RouteProtocol, Table: mainTable},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range routes {
		if o, ok := toObsRoute(rt); ok {
			obs.routes = append(obs.routes, o)
		}
	}
	return obs, nil
}

func toObsRoute(rt netlink.Route) (obsRoute, bool) {
	var dst netip.Prefix
	if rt.Dst == nil {
		if rt.Family == unix.AF_INET6 {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
	} else {
		p, ok := ipNetToPrefix(rt.Dst)
		if !ok {
			return obsRoute{}, false
		}
		dst = p
	}
	o := obsRoute{Dst: dst, LinkIndex: rt.LinkIndex, Metric: uint32(rt.Priority)}
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok {
		o.Gateway = gw.Unmap()
	}
	return o, true
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	if bits == 128 && ip.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones), true
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ownedSA returns the ESP state s as bpfvpn's observed SA, or false when s
// is not ESP or its if_id and reqid are not of a bpfvpn tunnel.
func ownedSA(s netlink.XfrmState) (obsSA, bool) {
	unit, peer, ok := tunnelOfXfrm(s.Ifid, s.Reqid)
	if !ok || s.Proto != netlink.XFRM_PROTO_ESP {
		return obsSA{}, false
	}
	src, _ := netip.AddrFromSlice(s.Src)
	dst, _ := netip.AddrFromSlice(s.Dst)
	return obsSA{Unit: unit, Peer: peer, SPI: uint32(s.Spi), Src: src.Unmap(), Dst: dst.Unmap()}, true
}

// observeXfrm lists the XFRM states and policies bpfvpn owns and makes
// them the Reconciler's model (xfrmModel). Caller holds mu.
func (r *Reconciler) observeXfrm() ([]obsSA, []obsPolicy, error) {
	r.xfrmDumps++
	r.xfrm.invalidate()
	states, err := r.h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, fmt.Errorf("list xfrm states: %w", err)
	}
	var sas []obsSA
	for _, s := range states {
		if o, ok := ownedSA(s); ok {
			sas = append(sas, o)
		}
	}
	// Per family: the library renders a zero selector of an unfiltered dump
	// as 0.0.0.0/0 even for ::/0.
	var policies []netlink.XfrmPolicy
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ps, err := r.h.XfrmPolicyList(fam)
		if err != nil {
			return nil, nil, fmt.Errorf("list xfrm policies: %w", err)
		}
		policies = append(policies, ps...)
	}
	var pols []obsPolicy
	for _, p := range policies {
		if len(p.Tmpls) != 1 || p.Dir > netlink.XFRM_DIR_FWD {
			continue
		}
		unit, peer, ok := tunnelOfXfrm(p.Ifid, p.Tmpls[0].Reqid)
		if !ok {
			continue
		}
		op := obsPolicy{Unit: unit, Peer: peer, Dir: uint8(p.Dir), Proto: uint8(p.Proto),
			SrcPort: uint16(p.SrcPort), DstPort: uint16(p.DstPort)}
		if p.Src != nil {
			op.Src, _ = ipNetToPrefix(p.Src)
		}
		if p.Dst != nil {
			op.Dst, _ = ipNetToPrefix(p.Dst)
		}
		ts, _ := netip.AddrFromSlice(p.Tmpls[0].Src)
		td, _ := netip.AddrFromSlice(p.Tmpls[0].Dst)
		op.TmplSrc, op.TmplDst = ts.Unmap(), td.Unmap()
		pols = append(pols, op)
	}
	r.xfrm.reset(sas, pols)
	return sas, pols, nil
}
