package daemon

import (
	"context"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// watchExpires forwards the kernel's XFRM expire events of bpfvpn's SAs to
// their engines: a soft byte limit (lifetime-kilobytes) starts a rekey, a
// hard one deletes the pair. Time limits are the engines' own timers. It
// runs until ctx ends.
func (c *ikeComponent) watchExpires(ctx context.Context) {
	ch := make(chan netlink.XfrmMsg, 64)
	errc := make(chan error, 1)
	if err := netlink.XfrmMonitor(ch, ctx.Done(), errc, nl.XFRM_MSG_EXPIRE); err != nil {
		c.log.Warn("XFRM expire events unavailable: byte lifetimes are not rekeyed", "err", err)
		return
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return
			}
			if e, ok := m.(*netlink.XfrmMsgExpire); ok && e.XfrmState != nil {
				c.expired(e.XfrmState, e.Hard)
			}
		case err := <-errc:
			if ctx.Err() == nil {
				c.log.Warn("XFRM expire events stopped", "err", err)
			}
			// Drain so that the monitor's goroutine can end.
			go func() {
				for range ch {
				}
			}()
			return
		case <-ctx.Done():
			go func() {
				for range ch {
				}
			}()
			return
		}
	}
}

// expired hands an expire event to the engine of the SA's st0 unit.
func (c *ikeComponent) expired(st *netlink.XfrmState, hard bool) {
	if st.Ifid < 1 {
		return
	}
	unit := st.Ifid - 1
	spi := uint32(st.Spi)
	dst, _ := netip.AddrFromSlice(st.Dst)
	now := c.now()
	for _, tu := range c.snapshotTunnels() {
		if tu.t.Unit != unit {
			continue
		}
		in := spi
		if dst.Unmap() != tu.t.Local {
			// An outbound SA: the engines know the pair by its inbound SPI.
			in = 0
			for _, cs := range tu.eng.ChildSAs(now) {
				if cs.SA.SPIOut == spi {
					in = cs.SA.SPIIn
				}
			}
			if in == 0 {
				return
			}
		}
		c.log.Info("kernel lifetime expired", "vpn", tu.t.VPN, "spi", spi, "hard", hard)
		tu.eng.Expired(now, in, hard)
	}
}
