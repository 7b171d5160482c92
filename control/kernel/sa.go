package kernel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// saID identifies an SA in the kernel (with the protocol, always ESP).
type saID struct {
	Dst netip.Addr
	SPI uint32
}

// unitSAs is what this Reconciler installed for one unit.
type unitSAs struct {
	current ChildSA // the newest pair; keys are dropped after install
}

// retirement is an old inbound SA waiting for its grace period to end.
type retirement struct {
	timer *time.Timer
	sa    obsSA
}

// InstallChildSA installs the SA pair c into XFRM with the if_id of st0.Unit
// (inbound first, then outbound) and makes sure the tunnel's out, in and fwd
// policies exist. An SA that is already installed is left alone, so
// installing the same pair again, from this or another Reconciler, changes
// nothing. Installing a new pair while an old one is installed is the first
// half of a make-before-break rekey: the kernel sends on the newest outbound
// SA; RetireChildSA removes the old pair. The tunnel is marked up and its
// routes are restored.
func (r *Reconciler) InstallChildSA(ctx context.Context, c ChildSA) ([]Change, error) {
	return r.install(ctx, c, true)
}

// InstallInbound installs only the inbound SA of c (and the tunnel's
// policies). A rekey between two gateways loses nothing when both install
// the new inbound SA before either installs the new outbound one
// (InstallChildSA with the same pair then adds only the outbound SA).
func (r *Reconciler) InstallInbound(ctx context.Context, c ChildSA) ([]Change, error) {
	return r.install(ctx, c, false)
}

func (r *Reconciler) install(ctx context.Context, c ChildSA, outbound bool) ([]Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("install child SA: reconciler closed")
	}
	dirs := []bool{true}
	if outbound {
		dirs = append(dirs, false)
	}
	var changes []Change
	for _, inbound := range dirs {
		ch, err := r.ensureSA(c, inbound)
		if err != nil {
			return changes, fmt.Errorf("install child SA %s: %w", c, err)
		}
		changes = append(changes, ch...)
	}
	ch, err := r.ensurePolicies(c)
	changes = append(changes, ch...)
	if err != nil {
		return changes, fmt.Errorf("install child SA %s: %w", c, err)
	}
	if !outbound {
		return changes, nil
	}
	stored := c
	stored.Inbound, stored.Outbound = Keys{}, Keys{}
	key := upKey(c.Unit, c.Peer)
	r.sas[key] = &unitSAs{current: stored}
	wasUp := r.up[key]
	r.up[key] = true
	if !wasUp {
		ch, err := r.reconcileRoutesOfLocked(ctx, c.Unit)
		changes = append(changes, ch...)
		if err != nil {
			return changes, fmt.Errorf("restore routes of st0.%d: %w", c.Unit, err)
		}
	}
	return changes, nil
}

// ensureSA installs one direction of c unless an SA with its destination and
// SPI exists. An existing SA with that identity that bpfvpn does not own for
// this unit is a conflict.
func (r *Reconciler) ensureSA(c ChildSA, inbound bool) ([]Change, error) {
	dir, src, dst, spi := "outbound", c.Local, c.Remote, c.OutboundSPI
	if inbound {
		dir, src, dst, spi = "inbound", c.Remote, c.Local, c.InboundSPI
	}
	sa := obsSA{Unit: c.Unit, Peer: c.Peer, SPI: spi, Src: src.Unmap(), Dst: dst.Unmap()}
	got, err := r.h.XfrmStateGet(&netlink.XfrmState{
		Src: net.IP(src.Unmap().AsSlice()), Dst: net.IP(dst.Unmap().AsSlice()),
		Proto: netlink.XFRM_PROTO_ESP, Spi: int(spi),
	})
	switch {
	case err == nil:
		if u, p, ok := tunnelOfXfrm(got.Ifid, got.Reqid); !ok || u != c.Unit || p != c.Peer {
			return nil, fmt.Errorf("%s SPI %08x to %s is taken by an SA bpfvpn does not own for st0.%d", dir, spi, dst, c.Unit)
		}
		r.xfrm.addSA(sa)
		return nil, nil
	case !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("look up %s SA %08x: %w", dir, spi, err)
	}
	if err := r.xfrmStateAddRaw(c, inbound); err != nil {
		r.xfrm.invalidate()
		return nil, fmt.Errorf("add %s SA %08x: %w", dir, spi, err)
	}
	r.xfrm.addSA(sa)
	ch := Change{Op: OpAddSA, Unit: c.Unit, SPI: spi, Dir: dir}
	r.log.Info("kernel change", "change", ch.String())
	return []Change{ch}, nil
}

// ensurePolicies makes the unit's policies those of c: missing ones added,
// ones with another template updated, ones for other selectors removed.
func (r *Reconciler) ensurePolicies(c ChildSA) ([]Change, error) {
	var changes []Change
	var errs []error
	want := wantPolicies(c)
	wantKeys := map[selectorKey]bool{}
	for _, p := range want {
		wantKeys[p.selKey()] = true
		ch := Change{Op: OpAddPolicy, Unit: c.Unit, Dir: dirName(p.Dir), Detail: " " + p.Src.String() + " -> " + p.Dst.String()}
		// One lookup by selector, direction and if_id: listing every
		// policy per install would make n tunnels cost O(n²).
		got, err := r.h.XfrmPolicyGet(policyID(p))
		switch {
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH):
			err = r.h.XfrmPolicyAdd(policyID(p))
		case err != nil:
		case len(got.Tmpls) != 1 || !samePolicyTmpl(got.Tmpls[0], p):
			if len(got.Tmpls) == 1 && got.Tmpls[0].Reqid != int(tunnelReqID(c.Unit, c.Peer)) {
				err = fmt.Errorf("a policy bpfvpn does not own has this selector and if_id")
				break
			}
			ch.Op = OpUpdatePolicy
			err = r.h.XfrmPolicyUpdate(policyID(p))
		default:
			r.xfrm.addPolicy(p)
			continue
		}
		if err != nil {
			r.xfrm.invalidate()
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("a policy bpfvpn does not own has this selector: %w", err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
			continue
		}
		r.xfrm.addPolicy(p)
		r.log.Info("kernel change", "change", ch.String())
		changes = append(changes, ch)
	}
	// Policies of the unit's previous selectors (known to this process).
	if prev, ok := r.sas[upKey(c.Unit, c.Peer)]; ok {
		for _, p := range wantPolicies(prev.current) {
			if wantKeys[p.selKey()] {
				continue
			}
			ch := Change{Op: OpDeletePolicy, Unit: c.Unit, Dir: dirName(p.Dir), Detail: " " + p.Src.String() + " -> " + p.Dst.String(), pol: p}
			if err := ignoreNotFound(r.h.XfrmPolicyDel(policyID(p))); err != nil {
				r.xfrm.invalidate()
				errs = append(errs, fmt.Errorf("%s: %w", ch, err))
				continue
			}
			r.xfrm.deletePolicy(p)
			changes = append(changes, ch)
		}
	}
	return changes, errors.Join(errs...)
}

// samePolicyTmpl compares an installed template with the wanted one.
func samePolicyTmpl(t netlink.XfrmPolicyTmpl, p obsPolicy) bool {
	src, _ := netip.AddrFromSlice(t.Src)
	dst, _ := netip.AddrFromSlice(t.Dst)
	return src.Unmap() == p.TmplSrc && dst.Unmap() == p.TmplDst && t.Reqid == int(tunnelReqID(p.Unit, p.Peer)) &&
		t.Proto == netlink.XFRM_PROTO_ESP && t.Mode == netlink.XFRM_MODE_TUNNEL
}

// RetireChildSA is the second half of a make-before-break rekey: old's
// outbound SA goes after a short linger (min(grace/2, OutboundLinger)) and
// its inbound SA after grace, so packets the peer sent on the old SA still
// arrive. grace 0 deletes both now.
//
// The outbound SA lingers because a packet that resolved its bundle to it
// just before the newer SA was installed may still be on its way to
// xfrm_output: deleting the SA under it drops it (XfrmOutStateInvalid; one
// lost ping in a few dozen rekeys on 6.1). New packets take the newest
// outbound SA meanwhile; on kernels that cache used SAs at the policy
// (6.13+) they take the old one until it goes, which the peer's inbound
// grace covers.
func (r *Reconciler) RetireChildSA(ctx context.Context, old ChildSA, grace time.Duration) ([]Change, error) {
	if err := checkUnit(old.Unit); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("retire child SA: reconciler closed")
	}
	out := obsSA{Unit: old.Unit, Peer: old.Peer, SPI: old.OutboundSPI, Src: old.Local.Unmap(), Dst: old.Remote.Unmap()}
	in := obsSA{Unit: old.Unit, Peer: old.Peer, SPI: old.InboundSPI, Src: old.Remote.Unmap(), Dst: old.Local.Unmap()}
	if grace <= 0 {
		var changes []Change
		for _, x := range []struct {
			sa  obsSA
			dir string
		}{{out, "outbound"}, {in, "inbound"}} {
			ch, err := r.deleteSA(x.sa, x.dir)
			if err != nil {
				return changes, fmt.Errorf("retire child SA %s: %w", old, err)
			}
			changes = append(changes, ch...)
		}
		return changes, nil
	}
	if old.OutboundSPI != 0 {
		r.deleteLater(out, "outbound", min(grace/2, OutboundLinger))
	}
	if old.InboundSPI != 0 {
		r.deleteLater(in, "inbound", grace)
	}
	return nil, nil
}

// OutboundLinger is the longest a replaced outbound SA stays
// (RetireChildSA).
const OutboundLinger = time.Second

// deleteLater deletes sa after d unless RemoveTunnel or Close comes first.
// Caller holds mu.
func (r *Reconciler) deleteLater(sa obsSA, dir string, d time.Duration) {
	id := saID{sa.Dst, sa.SPI}
	if rt, ok := r.retire[id]; ok {
		rt.timer.Stop()
	}
	r.retire[id] = &retirement{sa: sa, timer: time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if rt, ok := r.retire[id]; !ok || rt.sa != sa || r.closed {
			return
		}
		delete(r.retire, id)
		if _, err := r.deleteSA(sa, dir); err != nil {
			r.log.Warn("retire "+dir+" SA", "unit", sa.Unit, "spi", fmt.Sprintf("%08x", sa.SPI), "err", err)
		}
	})}
}

// RekeyChildSA installs next and retires old (make-before-break).
func (r *Reconciler) RekeyChildSA(ctx context.Context, old, next ChildSA, grace time.Duration) ([]Change, error) {
	if old.Unit != next.Unit {
		return nil, fmt.Errorf("rekey: old SA is on st0.%d, new one on st0.%d", old.Unit, next.Unit)
	}
	changes, err := r.InstallChildSA(ctx, next)
	if err != nil {
		return changes, err
	}
	ch, err := r.RetireChildSA(ctx, old, grace)
	return append(changes, ch...), err
}

// PendingRetirements returns how many replaced SAs wait for their linger
// or grace period to end.
func (r *Reconciler) PendingRetirements() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.retire)
}

func (r *Reconciler) deleteSA(sa obsSA, dir string) ([]Change, error) {
	err := r.h.XfrmStateDel(&netlink.XfrmState{
		Src: net.IP(sa.Src.AsSlice()), Dst: net.IP(sa.Dst.AsSlice()),
		Proto: netlink.XFRM_PROTO_ESP, Spi: int(sa.SPI), Ifid: int(tunnelIfID(sa.Unit, sa.Peer)),
	})
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		r.xfrm.deleteSA(sa)
		return nil, nil
	}
	if err != nil {
		r.xfrm.invalidate()
		return nil, fmt.Errorf("delete %s SA %08x: %w", dir, sa.SPI, err)
	}
	r.xfrm.deleteSA(sa)
	ch := Change{Op: OpDeleteSA, Unit: sa.Unit, SPI: sa.SPI, Dir: dir}
	r.log.Info("kernel change", "change", ch.String())
	return []Change{ch}, nil
}

// RemoveTunnel takes unit's tunnel down (all its peers' too, if it is
// multipoint): it withdraws the routes into it first (so traffic moves to a
// backup route at once), then deletes every SA and policy of the unit.
func (r *Reconciler) RemoveTunnel(ctx context.Context, unit int) ([]Change, error) {
	return r.removeTunnel(ctx, unit, 0, true)
}

// RemovePeerTunnel is RemoveTunnel for one peer of a multipoint unit.
func (r *Reconciler) RemovePeerTunnel(ctx context.Context, unit, peer int) ([]Change, error) {
	if peer < 1 || peer > MaxPeer {
		return nil, fmt.Errorf("peer %d out of range 1-%d", peer, MaxPeer)
	}
	return r.removeTunnel(ctx, unit, peer, false)
}

func (r *Reconciler) removeTunnel(ctx context.Context, unit, peer int, all bool) ([]Change, error) {
	if err := checkUnit(unit); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("remove tunnel: reconciler closed")
	}
	var changes []Change
	var errs []error
	mine := func(u, p int) bool { return u == unit && (all || p == peer) }
	for k := range r.up {
		if k == unit || (all && k < 0 && (-k-1)>>8 == unit) {
			r.up[k] = false
		}
	}
	r.up[upKey(unit, peer)] = false
	ch, err := r.reconcileRoutesOfLocked(ctx, unit)
	changes = append(changes, ch...)
	errs = append(errs, err)

	if !r.xfrm.valid {
		if _, _, err := r.observeXfrm(); err != nil {
			return changes, fmt.Errorf("remove tunnel st0.%d: %w", unit, err)
		}
	}
	sas, pols := r.xfrm.tunnel(unit, peer, all)
	for id, rt := range r.retire {
		if mine(rt.sa.Unit, rt.sa.Peer) {
			rt.timer.Stop()
			delete(r.retire, id)
		}
	}
	for _, p := range pols {
		if !mine(p.Unit, p.Peer) {
			continue
		}
		ch := Change{Op: OpDeletePolicy, Unit: unit, Dir: dirName(p.Dir), Detail: " " + p.Src.String() + " -> " + p.Dst.String(), pol: p}
		err := r.h.XfrmPolicyDel(policyID(p))
		if err != nil && ignoreNotFound(err) == nil {
			r.xfrm.deletePolicy(p) // gone already (the model was stale)
			continue
		}
		if err != nil {
			r.xfrm.invalidate()
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
			continue
		}
		r.xfrm.deletePolicy(p)
		r.log.Info("kernel change", "change", ch.String())
		changes = append(changes, ch)
	}
	for _, sa := range sas {
		if !mine(sa.Unit, sa.Peer) {
			continue
		}
		ch, err := r.deleteSA(sa, "")
		if err != nil {
			errs = append(errs, err)
		}
		changes = append(changes, ch...)
	}
	for k := range r.sas {
		if k == upKey(unit, peer) || (all && (k == unit || (k < 0 && (-k-1)>>8 == unit))) {
			delete(r.sas, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return changes, fmt.Errorf("remove tunnel st0.%d: %w", unit, err)
	}
	return changes, nil
}

// InstalledSA is an SA bpfvpn owns, as found in the kernel.
type InstalledSA struct {
	Unit      int
	Peer      int // multipoint peer, 0 for the unit's own tunnel
	SPI       uint32
	Src, Dst  netip.Addr
	Direction string // "inbound", "outbound" or "" when it cannot be told
}

// InstalledSAs lists the SAs bpfvpn owns (including ones an earlier process
// installed), so that a restarted daemon can adopt them.
func (r *Reconciler) InstalledSAs() ([]InstalledSA, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sas, pols, err := r.observeXfrm()
	if err != nil {
		return nil, err
	}
	out := make([]InstalledSA, 0, len(sas))
	for _, sa := range sas {
		out = append(out, InstalledSA{Unit: sa.Unit, Peer: sa.Peer, SPI: sa.SPI, Src: sa.Src, Dst: sa.Dst, Direction: r.direction(sa, pols)})
	}
	return out, nil
}

// direction tells inbound from outbound: by the pair this Reconciler
// installed, else by the unit's out policy template.
func (r *Reconciler) direction(sa obsSA, pols []obsPolicy) string {
	if u, ok := r.sas[upKey(sa.Unit, sa.Peer)]; ok {
		if sa.Dst == u.current.Remote.Unmap() {
			return "outbound"
		}
		if sa.Dst == u.current.Local.Unmap() {
			return "inbound"
		}
	}
	for _, p := range pols {
		if p.Unit == sa.Unit && p.Peer == sa.Peer && p.Dir == uint8(netlink.XFRM_DIR_OUT) {
			if p.TmplDst == sa.Dst {
				return "outbound"
			}
			if p.TmplSrc == sa.Dst {
				return "inbound"
			}
		}
	}
	return ""
}
