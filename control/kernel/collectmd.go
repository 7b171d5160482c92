package kernel

import (
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// iflaXfrmCollectMetadata is IFLA_XFRM_COLLECT_METADATA (linux/if_link.h,
// Linux ≥ 6.2); the netlink library neither sends nor parses it.
const iflaXfrmCollectMetadata = 3

// addCollectMDLink creates a collect_md (external) xfrm interface: no if_id
// and no underlay of its own; the if_id of each packet comes from BPF
// (bpf_skb_set_xfrm_info) on the way out and from the SA on the way in.
func (r *Reconciler) addCollectMDLink(name string, mtu int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = r.routeSock
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	if mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	li := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	li.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("xfrm"))
	data := li.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(iflaXfrmCollectMetadata, []byte{})
	req.AddData(li)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("add collect_md xfrm interface %s (needs Linux 6.2+, one per network namespace): %w", name, err)
	}
	return nil
}
