package daemon

import (
	"context"
	"fmt"

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

// expired hands an expire event to the engine that negotiated the SA. The
// event carries no if_id (only the SA's fixed part), so the SA is found by
// its SPI among the engines' CHILD SAs.
func (c *ikeComponent) expired(st *netlink.XfrmState, hard bool) {
	spi := uint32(st.Spi)
	if hard {
		c.sas.forget(spi) // the kernel deleted it
	}
	now := c.now()
	for _, tu := range c.snapshotTunnels() {
		for _, cs := range tu.eng.ChildSAs(now) {
			if cs.SA.SPIIn != spi && cs.SA.SPIOut != spi {
				continue
			}
			c.log.Info("kernel lifetime expired", "vpn", tu.t.VPN, "spi", fmt.Sprintf("%08x", spi), "hard", hard)
			tu.eng.Expired(now, cs.SA.SPIIn, hard)
			return
		}
	}
}
