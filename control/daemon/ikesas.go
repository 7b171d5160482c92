package daemon

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// saRecord is the saInstaller the IKE component hands its sinks: it passes
// every change to the kernel and keeps a record of bpfvpn's SAs, so that
// the questions asked on every install and delete (does the unit hold SAs,
// does it hold another inbound SA) cost no dump of the kernel's XFRM
// tables: with n tunnels a dump per install made bringing them up O(n²),
// under the reconciler's lock.
//
// The record starts from one listing of the kernel (SAs an earlier daemon
// left included) and is rebuilt after a failed change and on every Apply.
// A pair given to RetireChildSA leaves the record at once: its inbound SA
// only lingers in the kernel for packets already in flight and carries no
// tunnel.
type saRecord struct {
	kern saInstaller

	mu     sync.Mutex
	listed bool
	sas    map[saID]kernel.InstalledSA
}

type saID struct {
	dst netip.Addr
	spi uint32
}

func newSARecord(kern saInstaller) *saRecord {
	return &saRecord{kern: kern, sas: map[saID]kernel.InstalledSA{}}
}

// listLocked fills the record from the kernel once.
func (r *saRecord) listLocked() bool {
	if r.listed {
		return true
	}
	installed, err := r.kern.InstalledSAs()
	if err != nil {
		return false
	}
	clear(r.sas)
	for _, sa := range installed {
		r.sas[saID{sa.Dst.Unmap(), sa.SPI}] = sa
	}
	r.listed = true
	return true
}

// invalidate makes the next question list the kernel again.
func (r *saRecord) invalidate() {
	r.mu.Lock()
	r.listed = false
	r.mu.Unlock()
}

// changed runs op on the kernel and applies record to the listing when it
// succeeds; a failure may have changed part of the kernel, so the record is
// listed again next time. The record is not locked while op runs: the
// kernel's own lock serialises the changes, and questions about other
// units need not wait for them. (A listing taken while op runs may or may
// not show op's change; record makes it show.)
func (r *saRecord) changed(op func() ([]kernel.Change, error), record func()) ([]kernel.Change, error) {
	r.mu.Lock()
	r.listLocked()
	r.mu.Unlock()
	ch, err := op()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.listed = false
		return ch, err
	}
	if r.listed {
		record()
	}
	return ch, nil
}

func (r *saRecord) addLocked(c kernel.ChildSA, outbound bool) {
	r.sas[saID{c.Local.Unmap(), c.InboundSPI}] = kernel.InstalledSA{Unit: c.Unit, Peer: c.Peer, SPI: c.InboundSPI,
		Src: c.Remote.Unmap(), Dst: c.Local.Unmap(), Direction: "inbound"}
	if outbound {
		r.sas[saID{c.Remote.Unmap(), c.OutboundSPI}] = kernel.InstalledSA{Unit: c.Unit, Peer: c.Peer, SPI: c.OutboundSPI,
			Src: c.Local.Unmap(), Dst: c.Remote.Unmap(), Direction: "outbound"}
	}
}

func (r *saRecord) InstallChildSA(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error) {
	return r.changed(func() ([]kernel.Change, error) { return r.kern.InstallChildSA(ctx, c) },
		func() { r.addLocked(c, true) })
}

func (r *saRecord) InstallInbound(ctx context.Context, c kernel.ChildSA) ([]kernel.Change, error) {
	return r.changed(func() ([]kernel.Change, error) { return r.kern.InstallInbound(ctx, c) },
		func() { r.addLocked(c, false) })
}

func (r *saRecord) RetireChildSA(ctx context.Context, old kernel.ChildSA, grace time.Duration) ([]kernel.Change, error) {
	return r.changed(func() ([]kernel.Change, error) { return r.kern.RetireChildSA(ctx, old, grace) },
		func() {
			delete(r.sas, saID{old.Local.Unmap(), old.InboundSPI})
			delete(r.sas, saID{old.Remote.Unmap(), old.OutboundSPI})
		})
}

func (r *saRecord) RemoveTunnel(ctx context.Context, unit int) ([]kernel.Change, error) {
	return r.changed(func() ([]kernel.Change, error) { return r.kern.RemoveTunnel(ctx, unit) },
		func() {
			for id, sa := range r.sas {
				if sa.Unit == unit {
					delete(r.sas, id)
				}
			}
		})
}

func (r *saRecord) RemovePeerTunnel(ctx context.Context, unit, peer int) ([]kernel.Change, error) {
	return r.changed(func() ([]kernel.Change, error) { return r.kern.RemovePeerTunnel(ctx, unit, peer) },
		func() {
			for id, sa := range r.sas {
				if sa.Unit == unit && sa.Peer == peer {
					delete(r.sas, id)
				}
			}
		})
}

// forget drops an SA the kernel deleted on its own (a hard lifetime).
func (r *saRecord) forget(spi uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.sas {
		if id.spi == spi {
			delete(r.sas, id)
		}
	}
}

// InstalledSAs returns the record (the kernel's listing when it cannot be
// had).
func (r *saRecord) InstalledSAs() ([]kernel.InstalledSA, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.listLocked() {
		return r.kern.InstalledSAs()
	}
	out := make([]kernel.InstalledSA, 0, len(r.sas))
	for _, sa := range r.sas {
		out = append(out, sa)
	}
	return out, nil
}

// unitSAs reports whether unit holds an SA and whether it holds an inbound
// SA to local other than spiIn, from the record.
func (r *saRecord) unitSAs(unit int, local netip.Addr, spiIn uint32) (has, otherIn bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.listLocked() {
		installed, err := r.kern.InstalledSAs()
		if err != nil {
			return false, false, err
		}
		for _, sa := range installed {
			if sa.Unit == unit {
				has = true
				otherIn = otherIn || (sa.SPI != spiIn && sa.Dst == local.Unmap() && sa.Direction != "outbound")
			}
		}
		return has, otherIn, nil
	}
	for _, sa := range r.sas {
		if sa.Unit == unit {
			has = true
			otherIn = otherIn || (sa.SPI != spiIn && sa.Dst == local.Unmap() && sa.Direction != "outbound")
		}
	}
	return has, otherIn, nil
}

var _ saInstaller = (*saRecord)(nil)
