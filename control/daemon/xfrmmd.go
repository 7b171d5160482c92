package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/loader"
)

// Multipoint st0 units on kernels with collect_md xfrm interfaces (6.2+):
// the unit is one external xfrm interface, and tc_xfrm_md_egress, attached
// first on its egress, gives each packet the if_id of the peer that owns
// its next hop (the xfrm_nexthops map, fed from next-hop-tunnel). Older
// kernels, and a daemon without the data plane, use one hidden xfrm
// interface per VPN instead (kernel.Tunnel.Peers).

var (
	collectMDOnce sync.Once
	collectMDErr  error
)

// collectMDSupport returns nil when tc_xfrm_md_egress loads here (the
// kernel has bpf_skb_set_xfrm_info: collect_md xfrm interfaces can be
// steered from BPF).
func collectMDSupport() error {
	collectMDOnce.Do(func() {
		objs, err := loader.LoadXfrmMultipoint("")
		if err != nil {
			collectMDErr = err
			return
		}
		objs.Close()
	})
	return collectMDErr
}

// multipointMode carries the first multipoint unit of st (lowest unit
// number) on a collect_md xfrm interface when on is set; a network namespace
// holds only one, so any other multipoint unit keeps its hidden per-peer
// interfaces.
func multipointMode(st *kernel.State, on bool) {
	if !on {
		return
	}
	for i := range st.Tunnels {
		if len(st.Tunnels[i].Peers) > 0 {
			st.Tunnels[i].CollectMD = true
			st.Tunnels[i].Underlay = ""
			return
		}
	}
}

// xfrmMD keeps tc_xfrm_md_egress attached to the collect_md unit and its
// next-hop map in step with the configuration. The map and the tcx link are
// pinned under dir, so a restarted daemon adopts them without a gap.
type xfrmMD struct {
	log     *slog.Logger
	dir     string
	objs    *loader.XfrmMDObjects
	ifindex int // of the device the program is attached to
}

func (x *xfrmMD) linkPin(name string) string {
	return filepath.Join(x.dir, "link@"+strings.ReplaceAll(name, ".", ":"))
}

// sync attaches the program to the collect_md unit of st (if any) and makes
// the map hold exactly its peers' next hops.
func (x *xfrmMD) sync(st kernel.State) error {
	var t *kernel.Tunnel
	for i := range st.Tunnels {
		if st.Tunnels[i].CollectMD {
			t = &st.Tunnels[i]
		}
	}
	if t == nil {
		// No collect_md unit (any more): its device went with the
		// configuration, so its links are dead.
		pins, _ := filepath.Glob(filepath.Join(x.dir, "link@*"))
		for _, p := range pins {
			os.Remove(p)
		}
		x.ifindex = 0
		if x.objs == nil {
			return nil
		}
		return x.clearMap(nil)
	}
	if x.objs == nil {
		objs, err := loader.LoadXfrmMultipoint(x.dir)
		if err != nil {
			return fmt.Errorf("multipoint st0.%d: %w", t.Unit, err)
		}
		x.objs = objs
	}
	name := kernel.LinkName(t.Unit)
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("multipoint %s: %w", name, err)
	}
	if idx := l.Attrs().Index; idx != x.ifindex {
		if err := x.attach(name, idx); err != nil {
			return err
		}
		x.ifindex = idx
	}
	want := map[loader.XfrmMDNexthopKey]bool{}
	for _, p := range t.Peers {
		if err := dataplane.SetNextHopIfID(x.objs, p.NextHop, kernel.PeerIfID(t.Unit, p.ID)); err != nil {
			return fmt.Errorf("multipoint %s: %w", name, err)
		}
		want[dataplane.NextHopKey(p.NextHop)] = true
	}
	return x.clearMap(want)
}

// attach puts the program first on name's egress (an earlier daemon's
// pinned link on the same device is updated in place).
func (x *xfrmMD) attach(name string, ifindex int) error {
	pin := x.linkPin(name)
	if pl, err := link.LoadPinnedLink(pin, nil); err == nil {
		info, ierr := pl.Info()
		if ierr == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
			defer pl.Close()
			if err := pl.Update(x.objs.TcXfrmMdEgress); err != nil {
				return fmt.Errorf("update tc_xfrm_md_egress on %s: %w", name, err)
			}
			return nil
		}
		// The device was recreated: that link is dead.
		pl.Unpin()
		pl.Close()
	}
	os.Remove(pin)
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: x.objs.TcXfrmMdEgress,
		Attach: ebpf.AttachTCXEgress, Anchor: link.Head()})
	if err != nil {
		return fmt.Errorf("attach tc_xfrm_md_egress to %s: %w", name, err)
	}
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return fmt.Errorf("pin tc_xfrm_md_egress link of %s: %w", name, err)
	}
	x.log.Info("multipoint unit on a collect_md xfrm interface: tunnel chosen by next hop in BPF", "interface", name)
	return nil
}

// clearMap removes every next hop not in keep.
func (x *xfrmMD) clearMap(keep map[loader.XfrmMDNexthopKey]bool) error {
	var k loader.XfrmMDNexthopKey
	var v uint32
	var stale []loader.XfrmMDNexthopKey
	it := x.objs.XfrmNexthops.Iterate()
	for it.Next(&k, &v) {
		if !keep[k] {
			stale = append(stale, k)
		}
	}
	var errs []error
	if err := it.Err(); err != nil {
		errs = append(errs, fmt.Errorf("list next hops: %w", err))
	}
	for _, k := range stale {
		if err := x.objs.XfrmNexthops.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("remove next hop: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (x *xfrmMD) close() {
	if x.objs != nil {
		x.objs.Close()
		x.objs = nil
	}
}
