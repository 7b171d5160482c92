package dataplane_test

import (
	"crypto/rand"
	"errors"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/vm"
)

// addCollectMDXfrm creates an external (collect_md) XFRM interface; the
// netlink library has no attribute for it.
func addCollectMDXfrm(name string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	li := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	li.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("xfrm"))
	data := li.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(3, []byte{}) // IFLA_XFRM_COLLECT_METADATA
	req.AddData(li)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// TestVMXfrmCollectMD: a hub with one shared collect_md XFRM interface;
// tc_xfrm_md_egress gives each packet the if_id of its next hop's SAs.
// Without a map entry for the next hop nothing leaves; with it, the spoke
// answers through ESP. Skips where the kernel lacks bpf_skb_set_xfrm_info
// (6.1: the fallback is one XFRM interface per tunnel).
func TestVMXfrmCollectMD(t *testing.T) {
	vm.RequireKernelIPsec(t)
	l := newLab(t)
	const hubIfID = 7
	kA, kB := make([]byte, 20), make([]byte, 20)
	rand.Read(kA)
	rand.Read(kB)
	rtIP, uhIP := net.ParseIP("10.10.2.1").To4(), net.ParseIP("10.10.2.2").To4()
	addTunnel(t, l.uh, "10.200.0.2/24", uhIP, rtIP, 0x6001, 0x5001, kB, kA)

	var ifindex int
	inNS(t, l.rt, func() {
		if err := addCollectMDXfrm("ipsec0"); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				t.Skipf("no collect_md XFRM interfaces on this kernel: %v", err)
			}
			t.Fatalf("add collect_md xfrm interface: %v", err)
		}
		ifindex = linkUp(t, "ipsec0", "10.200.0.1/24")
		sa := func(src, dst net.IP, spi int, k []byte) *netlink.XfrmState {
			return &netlink.XfrmState{Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
				Spi: spi, Reqid: 1, Ifid: hubIfID, ReplayWindow: 32,
				Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: k, ICVLen: 128}}
		}
		for _, s := range []*netlink.XfrmState{sa(rtIP, uhIP, 0x5001, kA), sa(uhIP, rtIP, 0x6001, kB)} {
			if err := netlink.XfrmStateAdd(s); err != nil {
				t.Fatal(err)
			}
		}
		any4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		pols := []*netlink.XfrmPolicy{{Src: any4, Dst: any4, Dir: netlink.XFRM_DIR_OUT, Ifid: hubIfID,
			Tmpls: []netlink.XfrmPolicyTmpl{{Src: rtIP, Dst: uhIP, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1}}}}
		for _, dir := range []netlink.Dir{netlink.XFRM_DIR_IN, netlink.XFRM_DIR_FWD} {
			pols = append(pols, &netlink.XfrmPolicy{Src: any4, Dst: any4, Dir: dir, Ifid: hubIfID,
				Tmpls: []netlink.XfrmPolicyTmpl{{Src: uhIP, Dst: rtIP, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1}}})
		}
		for _, p := range pols {
			if err := netlink.XfrmPolicyAdd(p); err != nil {
				t.Fatal(err)
			}
		}
	})

	objs, err := loader.LoadXfrmMultipoint("")
	if errors.Is(err, loader.ErrXfrmMDUnsupported) {
		t.Skipf("fallback to one XFRM interface per tunnel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	inNS(t, l.rt, func() {
		lk, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: objs.TcXfrmMdEgress, Attach: ebpf.AttachTCXEgress})
		if err != nil {
			t.Fatalf("attach tc egress on ipsec0: %v", err)
		}
		t.Cleanup(func() { lk.Close() })
	})

	if err := ping(t, l.rt, "10.200.0.2"); err == nil {
		t.Fatal("ping left ipsec0 without a next-hop entry")
	}
	if err := dataplane.SetNextHopIfID(objs, addr("10.200.0.2"), hubIfID); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, l.rt, "10.200.0.2"); err != nil {
		l.dump(t)
		t.Fatalf("ping the spoke through the collect_md interface (if_id %d by next hop): %v", hubIfID, err)
	}
	if err := dataplane.RemoveNextHop(objs, addr("10.200.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, l.rt, "10.200.0.2"); err == nil {
		t.Error("ping left ipsec0 after its next hop was removed")
	}
}
