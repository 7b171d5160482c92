package kernel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// apply makes the changes in order and returns those that succeeded. A
// failed change is reported and the others are still attempted.
func (r *Reconciler) apply(ctx context.Context, changes []Change) ([]Change, error) {
	var done []Change
	var errs []error
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := r.applyOne(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			r.log.Warn("kernel change failed", "change", c.String(), "err", err)
			continue
		}
		r.log.Info("kernel change", "change", c.String())
		done = append(done, c)
	}
	return done, errors.Join(errs...)
}

func (r *Reconciler) linkIndex(name string) (int, error) {
	l, err := r.h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("link %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

func (r *Reconciler) applyOne(c Change) error {
	switch c.Op {
	case OpConflict:
		return fmt.Errorf("remove or rename it: bpfvpn does not touch links it did not create")
	case OpAddLink:
		if c.CollectMD {
			if err := r.addCollectMDLink(c.Link, c.MTU); err != nil {
				return err
			}
			return r.linkSysctls(c.Link)
		}
		x := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: c.Link, MTU: c.MTU}, Ifid: tunnelIfID(c.Unit, c.Peer)}
		if c.Underlay != "" {
			i, err := r.linkIndex(c.Underlay)
			if err != nil {
				return fmt.Errorf("underlay: %w", err)
			}
			x.ParentIndex = i
		}
		if err := r.h.LinkAdd(x); err != nil {
			return err
		}
		return r.linkSysctls(c.Link)
	case OpSetMTU:
		l, err := r.h.LinkByName(c.Link)
		if err != nil {
			return err
		}
		return r.h.LinkSetMTU(l, c.MTU)
	case OpSetUp:
		l, err := r.h.LinkByName(c.Link)
		if err != nil {
			return err
		}
		return r.h.LinkSetUp(l)
	case OpSetDown:
		l, err := r.h.LinkByName(c.Link)
		if err != nil {
			return err
		}
		return r.h.LinkSetDown(l)
	case OpDeleteLink:
		return ignoreNotFound(r.h.LinkDel(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Index: c.linkIndex, Name: c.Link}}))
	case OpAddAddress:
		i, err := r.linkIndex(c.Link)
		if err != nil {
			return err
		}
		return r.addrAdd(i, c.Prefix)
	case OpDeleteAddress:
		if c.promote {
			// Without it the kernel deletes the subnet's other (maybe
			// foreign) addresses along with a primary address.
			p := "/proc/sys/net/ipv4/conf/" + c.Link + "/promote_secondaries"
			if err := inNetns(r.ns, func() error { return os.WriteFile(p, []byte("1\n"), 0) }); err != nil {
				return fmt.Errorf("enable promote_secondaries: %w", err)
			}
		}
		return ignoreNotFound(r.addrDel(c.linkIndex, c.Prefix))
	case OpAddRoute, OpReplaceRoute:
		rt, err := r.kernelRoute(c.Route)
		if err != nil {
			return err
		}
		if c.Op == OpReplaceRoute {
			return r.h.RouteReplace(rt)
		}
		err = r.h.RouteAdd(rt)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("a route bpfvpn does not own has the same destination and metric: %w", err)
		}
		return err
	case OpDeleteRoute:
		// Scope "nowhere" matches any scope: a delete with the default
		// (universe) misses device routes, which have scope link.
		rt := &netlink.Route{Dst: prefixToIPNet(c.obsRoute.Dst), Priority: int(c.obsRoute.Metric),
			Table: mainTable, Protocol: RouteProtocol, LinkIndex: c.obsRoute.LinkIndex, Scope: netlink.SCOPE_NOWHERE}
		if c.obsRoute.Gateway.IsValid() {
			rt.Gw = net.IP(c.obsRoute.Gateway.AsSlice())
		}
		return ignoreNotFound(r.h.RouteDel(rt))
	case OpDeletePolicy:
		if err := ignoreNotFound(r.h.XfrmPolicyDel(policyID(c.pol))); err != nil {
			r.xfrm.invalidate()
			return err
		}
		r.xfrm.deletePolicy(c.pol)
		return nil
	case OpDeleteSA:
		if err := ignoreNotFound(r.h.XfrmStateDel(&netlink.XfrmState{
			Src: net.IP(c.sa.Src.AsSlice()), Dst: net.IP(c.sa.Dst.AsSlice()),
			Proto: netlink.XFRM_PROTO_ESP, Spi: int(c.sa.SPI), Ifid: int(tunnelIfID(c.sa.Unit, c.sa.Peer)),
		})); err != nil {
			r.xfrm.invalidate()
			return err
		}
		r.xfrm.deleteSA(c.sa)
		return nil
	}
	return fmt.Errorf("unknown change %d", c.Op)
}

// kernelRoute turns a desired route into a netlink route with bpfvpn's
// protocol.
func (r *Reconciler) kernelRoute(d Route) (*netlink.Route, error) {
	rt := &netlink.Route{
		Dst:      prefixToIPNet(d.Dst),
		Priority: int(d.Metric),
		Protocol: RouteProtocol,
		Table:    mainTable,
		Family:   unix.AF_INET,
	}
	if d.Dst.Addr().Is6() {
		rt.Family = unix.AF_INET6
	}
	if d.Gateway.IsValid() {
		rt.Gw = net.IP(d.Gateway.AsSlice())
	} else {
		rt.Scope = netlink.SCOPE_LINK
	}
	if d.onlink {
		rt.Flags |= int(netlink.FLAG_ONLINK)
	}
	if d.src.IsValid() {
		rt.Src = net.IP(d.src.AsSlice())
	}
	if d.Dev != "" {
		i, err := r.linkIndex(d.Dev)
		if err != nil {
			return nil, err
		}
		rt.LinkIndex = i
	}
	return rt, nil
}

// ignoreNotFound treats "already gone" as success for deletions.
func ignoreNotFound(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// linkSysctls sets the IPv6 settings of a new st0 link.
func (r *Reconciler) linkSysctls(name string) error {
	// The unit goes down with its tunnel: keep its IPv6 address then.
	// No link-local address either: it would only send router
	// solicitations and MLD reports into the tunnel. (A namespace
	// without IPv6 has neither file, which is fine.)
	for _, sc := range [][2]string{{"keep_addr_on_down", "1"}, {"addr_gen_mode", "1"}} {
		p := "/proc/sys/net/ipv6/conf/" + name + "/" + sc[0]
		err := inNetns(r.ns, func() error { return os.WriteFile(p, []byte(sc[1]+"\n"), 0) })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", sc[0], err)
		}
	}
	return nil
}
