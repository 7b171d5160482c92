package main

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/namespace"
)

// benchNS is a private network namespace for route lookups:
//
//	trust0 10.1.0.1/24 (neighbour 10.1.0.2), untr0 10.2.0.1/24 (neighbour
//	10.2.0.2), st0x 10.9.0.1/30 with 10.3.0.0/16 routed into it.
type benchNS struct {
	ns  netns.NsHandle
	idx map[string]uint32
	mac map[string]net.HardwareAddr
}

func newBenchNS() (*benchNS, error) {
	b := &benchNS{idx: map[string]uint32{}, mac: map[string]net.HardwareAddr{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer func() { netns.Set(orig); orig.Close() }()
	if b.ns, err = netns.New(); err != nil {
		return nil, fmt.Errorf("new netns: %w", err)
	}
	lo, _ := netlink.LinkByName("lo")
	netlink.LinkSetUp(lo)
	for _, p := range [][2]string{{"trust0", "trustp"}, {"untr0", "untrp"}, {"st0x", "st0p"}} {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p[0]}, PeerName: p[1]}); err != nil {
			return nil, fmt.Errorf("add veth %s: %w", p[0], err)
		}
	}
	addrs := map[string]string{"trust0": "10.1.0.1/24", "untr0": "10.2.0.1/24", "st0x": "10.9.0.1/30"}
	for _, n := range []string{"trust0", "trustp", "untr0", "untrp", "st0x", "st0p"} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return nil, err
		}
		if a, ok := addrs[n]; ok {
			ad, _ := netlink.ParseAddr(a)
			if err := netlink.AddrAdd(l, ad); err != nil {
				return nil, err
			}
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, err
		}
		b.idx[n] = uint32(l.Attrs().Index)
		b.mac[n] = l.Attrs().HardwareAddr
	}
	_, dst, _ := net.ParseCIDR("10.3.0.0/16")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: int(b.idx["st0x"]), Dst: dst}); err != nil {
		return nil, err
	}
	for _, n := range []struct{ link, ip string }{{"untr0", "10.2.0.2"}, {"trust0", "10.1.0.2"}} {
		if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: int(b.idx[n.link]), Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: net.ParseIP(n.ip), HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2}}); err != nil {
			return nil, err
		}
	}
	os.WriteFile("/proc/sys/net/ipv4/conf/all/forwarding", []byte("1"), 0)
	return b, nil
}

// in runs fn on a thread inside the namespace.
func (b *benchNS) in(fn func() error) error { return namespace.Do(b.ns, fn) }
