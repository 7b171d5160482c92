// Package vethns makes the network namespace the kernel benchmarks
// reconcile in.
package vethns

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// New returns a new anonymous network namespace holding the veth pair
// veth0/veth1, both up, with 10.0.0.1/24 on veth0. The caller closes it.
func New() (netns.NsHandle, error) {
	ns, err := lab.NewAnonymous()
	if err != nil {
		return ns, err
	}
	if err := setUp(ns); err != nil {
		ns.Close()
		return ns, err
	}
	return ns, nil
}

func setUp(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
		return fmt.Errorf("add veth0: %w", err)
	}
	for _, name := range []string{"veth0", "veth1"} {
		l, err := h.LinkByName(name)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	l, err := h.LinkByName("veth0")
	if err != nil {
		return err
	}
	a, _ := netlink.ParseAddr("10.0.0.1/24")
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to veth0: %w", a, err)
	}
	return nil
}
