package lab

import (
	"time"

	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultPrefix names the namespaces of `bpfvpn lab` (bpfvpn-host1, …).
const DefaultPrefix = "bpfvpn-"

// Lab is one instance of the reference topology. Its namespaces are named
// Prefix+node, so labs with different prefixes coexist on one machine.
type Lab struct {
	Prefix string
	// UnaddressedGateways leaves the SRX1 and SRX2 interfaces without
	// addresses, for a bpfvpn daemon that applies them from its config.
	UnaddressedGateways bool
}

// New returns a lab whose namespaces are named prefix+node ("" means
// DefaultPrefix).
func New(prefix string) *Lab {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Lab{Prefix: prefix}
}

// Namespace returns the namespace name of node.
func (l *Lab) Namespace(node string) string { return l.Prefix + node }

// Up builds the topology. It is idempotent: what exists and is right is
// kept, what is missing is added. After a failure, Down removes whatever
// part was built.
func (l *Lab) Up() error {
	if err := l.check(); err != nil {
		return err
	}
	for _, node := range Nodes {
		ns, _, err := OpenNamed(l.Namespace(node))
		if err != nil {
			return fmt.Errorf("lab up: %w", err)
		}
		err = l.setupNode(node, ns)
		ns.Close()
		if err != nil {
			return fmt.Errorf("lab up: node %s: %w", node, err)
		}
	}
	for _, w := range Wires {
		if err := l.wire(w); err != nil {
			return fmt.Errorf("lab up: wire %s:%s - %s:%s: %w", w.A.Node, w.A.Link, w.B.Node, w.B.Link, err)
		}
	}
	for node, gw := range DefaultRoutes {
		if err := l.defaultRoute(node, gw); err != nil {
			return fmt.Errorf("lab up: default route of %s: %w", node, err)
		}
	}
	return l.waitLinksUp(linkUpTimeout)
}

// linkUpTimeout bounds the wait for veth carriers after Up: the kernel
// reports a new veth's operational state asynchronously (linkwatch).
const linkUpTimeout = 10 * time.Second

// waitLinksUp returns once every wire of the topology is operationally up,
// or an error naming the state when timeout passes first.
func (l *Lab) waitLinksUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, err := l.Status()
		if err != nil {
			return fmt.Errorf("lab up: read status: %w", err)
		}
		if Complete(status) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab up: links not up after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Down deletes every namespace of the lab (and with them their links). A
// missing namespace is not an error, so Down also cleans up after a partial
// Up. Processes still running inside a namespace keep it alive but detached.
func (l *Lab) Down() error {
	if err := l.check(); err != nil {
		return err
	}
	var errs []error
	for _, node := range Nodes {
		if err := DeleteNamed(l.Namespace(node)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// Exec runs fn inside the namespace of node (see Do).
func (l *Lab) Exec(node string, fn func() error) error {
	ns, err := netns.GetFromName(l.Namespace(node))
	if err != nil {
		return fmt.Errorf("open namespace of %s: %w", node, err)
	}
	defer ns.Close()
	return Do(ns, fn)
}

// Handle returns a netlink handle that works inside the namespace of node;
// the caller closes it.
func (l *Lab) Handle(node string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(l.Namespace(node))
	if err != nil {
		return nil, fmt.Errorf("open namespace of %s: %w", node, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", node, err)
	}
	return h, nil
}

func (l *Lab) check() error {
	if l.Prefix == "" {
		return errors.New("lab: empty namespace prefix")
	}
	for _, node := range Nodes {
		if n := l.Namespace(node); filepath.Base(n) != n || len(n) > 64 {
			return fmt.Errorf("lab: namespace name %q is not a plain file name", n)
		}
	}
	return nil
}

// setupNode brings loopback up and turns on forwarding where the node routes.
func (l *Lab) setupNode(node string, ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	forward := false
	for _, f := range Forwarders {
		forward = forward || f == node
	}
	if !forward {
		return nil
	}
	return Do(ns, func() error {
		for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(p, []byte("1\n"), 0); err != nil {
				return fmt.Errorf("enable forwarding: %w", err)
			}
		}
		return nil
	})
}

// wire creates (or completes) the veth pair of w and addresses both ends.
func (l *Lab) wire(w Wire) error {
	nsA, err := netns.GetFromName(l.Namespace(w.A.Node))
	if err != nil {
		return err
	}
	defer nsA.Close()
	nsB, err := netns.GetFromName(l.Namespace(w.B.Node))
	if err != nil {
		return err
	}
	defer nsB.Close()
	hA, err := netlink.NewHandleAt(nsA, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer hA.Close()
	hB, err := netlink.NewHandleAt(nsB, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer hB.Close()

	_, errA := hA.LinkByName(w.A.Link)
	_, errB := hB.LinkByName(w.B.Link)
	if errA != nil || errB != nil {
		// A half pair cannot be completed: remove the leftover and start over.
		for _, x := range []struct {
			h    *netlink.Handle
			name string
			err  error
		}{{hA, w.A.Link, errA}, {hB, w.B.Link, errB}} {
			if x.err == nil {
				if link, err := x.h.LinkByName(x.name); err == nil {
					_ = x.h.LinkDel(link)
				}
			}
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: w.A.Link},
			PeerName:      w.B.Link,
			PeerNamespace: netlink.NsFd(nsB),
		}
		if err := hA.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
	}
	for _, side := range []struct {
		h *netlink.Handle
		e Endpoint
	}{{hA, w.A}, {hB, w.B}} {
		link, err := side.h.LinkByName(side.e.Link)
		if err != nil {
			return fmt.Errorf("find %s: %w", side.e.Link, err)
		}
		if !(l.UnaddressedGateways && IsGateway(side.e.Node)) {
			addr := &netlink.Addr{IPNet: prefixToIPNet(side.e.Address)}
			if err := side.h.AddrReplace(link, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", side.e.Address, side.e.Link, err)
			}
		}
		if err := side.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", side.e.Link, err)
		}
	}
	return nil
}

func (l *Lab) defaultRoute(node string, gw netip.Addr) error {
	h, err := l.Handle(node)
	if err != nil {
		return err
	}
	defer h.Close()
	r := &netlink.Route{
		Dst: prefixToIPNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)),
		Gw:  net.IP(gw.AsSlice()),
	}
	return h.RouteReplace(r)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
