package topology

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// Site is an extra gateway node attached to the two-site lab's Internet
// node, for topologies with more than two gateways (a backup peer, a spoke).
// Its namespace is the lab's Prefix+Name; its WAN link is eth1 (vendor
// ge-0/0/1), left unaddressed for the bpfvpn daemon that applies WAN.
type Site struct {
	Name string
	// WAN is the site's address on its link to Internet (applied by the
	// site's daemon from its configuration).
	WAN netip.Prefix
	// InternetAddr is Internet's address on that link (the site's next hop).
	InternetAddr netip.Prefix
	// InternetLink names the link in Internet's namespace.
	InternetLink string
}

// SiteWANLink is the site's Linux name of its WAN link.
const SiteWANLink = "eth1"

// Namespace returns the site's namespace name in l.
func (s Site) Namespace(l *lab.Lab) string { return l.Namespace(s.Name) }

// AddSite creates the site's namespace (forwarding on, lo up) and its veth to
// the lab's Internet node (which must be up). RemoveSite undoes it.
func AddSite(l *lab.Lab, s Site) error {
	ns, _, err := lab.OpenNamed(s.Namespace(l))
	if err != nil {
		return fmt.Errorf("site %s: %w", s.Name, err)
	}
	defer ns.Close()
	inet, err := netns.GetFromName(l.Namespace(lab.Internet))
	if err != nil {
		return fmt.Errorf("site %s: internet node: %w", s.Name, err)
	}
	defer inet.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	hi, err := netlink.NewHandleAt(inet, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer hi.Close()
	if lo, err := h.LinkByName("lo"); err == nil {
		h.LinkSetUp(lo)
	}
	if err := lab.Do(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0)
	}); err != nil {
		return fmt.Errorf("site %s: forwarding: %w", s.Name, err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: s.InternetLink, Namespace: netlink.NsFd(int(inet))},
		PeerName: SiteWANLink, PeerNamespace: netlink.NsFd(int(ns))}
	if err := hi.LinkAdd(veth); err != nil {
		return fmt.Errorf("site %s: veth: %w", s.Name, err)
	}
	ilink, err := hi.LinkByName(s.InternetLink)
	if err != nil {
		return err
	}
	a := s.InternetAddr
	if err := hi.AddrAdd(ilink, &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), 32)}}); err != nil {
		return fmt.Errorf("site %s: internet address: %w", s.Name, err)
	}
	if err := hi.LinkSetUp(ilink); err != nil {
		return err
	}
	slink, err := h.LinkByName(SiteWANLink)
	if err != nil {
		return err
	}
	return h.LinkSetUp(slink)
}

// RemoveSite deletes the site's namespace (and with it its veth).
func RemoveSite(l *lab.Lab, s Site) error { return lab.DeleteNamed(s.Namespace(l)) }
