package kernel

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// xfrmStateAddRaw installs one direction of c. It is a raw request because
// the netlink library sends the replay-ESN attribute only with ESN, which
// caps anti-replay windows without ESN at 32 packets.
func (r *Reconciler) xfrmStateAddRaw(c ChildSA, inbound bool) error {
	src, dst, spi, keys := c.Local, c.Remote, c.OutboundSPI, c.Outbound
	if inbound {
		src, dst, spi, keys = c.Remote, c.Local, c.InboundSPI, c.Inbound
	}
	msg := &nl.XfrmUsersaInfo{}
	msg.Family = unix.AF_INET
	if dst.Unmap().Is6() {
		msg.Family = unix.AF_INET6
	}
	msg.Id.Daddr.FromIP(net.IP(dst.Unmap().AsSlice()))
	msg.Saddr.FromIP(net.IP(src.Unmap().AsSlice()))
	msg.Id.Proto = unix.IPPROTO_ESP
	msg.Id.Spi = nl.Swap32(spi)
	msg.Mode = uint8(netlink.XFRM_MODE_TUNNEL)
	msg.Reqid = tunnelReqID(c.Unit, c.Peer)
	// No selector (family AF_UNSPEC): the policies select, and the SA
	// carries both inner families.
	msg.Flags = nl.XFRM_STATE_AF_UNSPEC
	replayESN := c.ESN || c.ReplayWindow > 32
	if c.ESN {
		msg.Flags |= nl.XFRM_STATE_ESN
	}
	if !replayESN {
		msg.ReplayWindow = uint8(c.ReplayWindow)
	}
	lft := &msg.Lft
	lft.SoftByteLimit, lft.HardByteLimit = infIfZero(c.Lifetime.SoftBytes), infIfZero(c.Lifetime.HardBytes)
	lft.SoftPacketLimit, lft.HardPacketLimit = infIfZero(c.Lifetime.SoftPackets), infIfZero(c.Lifetime.HardPackets)
	lft.SoftAddExpiresSeconds, lft.HardAddExpiresSeconds = c.Lifetime.SoftSeconds, c.Lifetime.HardSeconds

	req := nl.NewNetlinkRequest(nl.XFRM_MSG_NEWSA, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = r.xfrmSock
	req.AddData(msg)
	if c.aead() {
		a := nl.XfrmAlgoAEAD{AlgKeyLen: uint32(len(keys.Encryption) * 8), AlgICVLen: uint32(c.icvBits()), AlgKey: keys.Encryption}
		copy(a.AlgName[:63], c.Encryption)
		req.AddData(nl.NewRtAttr(nl.XFRMA_ALG_AEAD, a.Serialize()))
	} else {
		e := nl.XfrmAlgo{AlgKeyLen: uint32(len(keys.Encryption) * 8), AlgKey: keys.Encryption}
		copy(e.AlgName[:63], c.Encryption)
		req.AddData(nl.NewRtAttr(nl.XFRMA_ALG_CRYPT, e.Serialize()))
		a := nl.XfrmAlgoAuth{AlgKeyLen: uint32(len(keys.Integrity) * 8), AlgTruncLen: uint32(c.truncBits()), AlgKey: keys.Integrity}
		copy(a.AlgName[:63], c.Integrity)
		req.AddData(nl.NewRtAttr(nl.XFRMA_ALG_AUTH_TRUNC, a.Serialize()))
	}
	if c.Encap != nil {
		e := nl.XfrmEncapTmpl{EncapType: uint16(netlink.XFRM_ENCAP_ESPINUDP)}
		sport, dport := c.Encap.LocalPort, c.Encap.RemotePort
		if inbound {
			sport, dport = dport, sport
		}
		e.EncapSport, e.EncapDport = nl.Swap16(sport), nl.Swap16(dport)
		req.AddData(nl.NewRtAttr(nl.XFRMA_ENCAP, e.Serialize()))
	}
	if replayESN {
		rs := nl.XfrmReplayStateEsn{ReplayWindow: c.ReplayWindow, BmpLen: (c.ReplayWindow + 31) / 32}
		req.AddData(nl.NewRtAttr(nl.XFRMA_REPLAY_ESN_VAL, rs.Serialize()))
	}
	req.AddData(nl.NewRtAttr(nl.XFRMA_IF_ID, nl.Uint32Attr(tunnelIfID(c.Unit, c.Peer))))
	_, err := req.Execute(unix.NETLINK_XFRM, 0)
	return err
}

func infIfZero(v uint64) uint64 {
	if v == 0 {
		return nl.XFRM_INF
	}
	return v
}

// wantPolicies returns the out, in and fwd policies of c's tunnel.
func wantPolicies(c ChildSA) []obsPolicy {
	local, remote := c.Local.Unmap(), c.Remote.Unmap()
	var out []obsPolicy
	for _, s := range c.selectors() {
		l, rm := unmapPrefix(s.Local).Masked(), unmapPrefix(s.Remote).Masked()
		out = append(out,
			obsPolicy{Unit: c.Unit, Peer: c.Peer, Dir: uint8(netlink.XFRM_DIR_OUT), Src: l, Dst: rm, Proto: s.Protocol,
				SrcPort: s.LocalPort, DstPort: s.RemotePort, TmplSrc: local, TmplDst: remote},
			obsPolicy{Unit: c.Unit, Peer: c.Peer, Dir: uint8(netlink.XFRM_DIR_IN), Src: rm, Dst: l, Proto: s.Protocol,
				SrcPort: s.RemotePort, DstPort: s.LocalPort, TmplSrc: remote, TmplDst: local},
			obsPolicy{Unit: c.Unit, Peer: c.Peer, Dir: uint8(netlink.XFRM_DIR_FWD), Src: rm, Dst: l, Proto: s.Protocol,
				SrcPort: s.RemotePort, DstPort: s.LocalPort, TmplSrc: remote, TmplDst: local},
		)
	}
	return out
}

// selectorKey identifies a policy within a unit (the kernel's key is the
// selector, direction and if_id).
type selectorKey struct {
	dir              uint8
	src, dst         netip.Prefix
	proto            uint8
	srcPort, dstPort uint16
}

func (p obsPolicy) selKey() selectorKey {
	return selectorKey{p.Dir, p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort}
}

// policyID is the netlink form of p with its selector, if_id and template.
func policyID(p obsPolicy) *netlink.XfrmPolicy {
	return &netlink.XfrmPolicy{
		Src: prefixToIPNet(p.Src), Dst: prefixToIPNet(p.Dst), Proto: netlink.Proto(p.Proto),
		SrcPort: int(p.SrcPort), DstPort: int(p.DstPort), Dir: netlink.Dir(p.Dir), Ifid: int(tunnelIfID(p.Unit, p.Peer)),
		Tmpls: []netlink.XfrmPolicyTmpl{{
			Src: net.IP(p.TmplSrc.AsSlice()), Dst: net.IP(p.TmplDst.AsSlice()),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: int(tunnelReqID(p.Unit, p.Peer)),
		}},
	}
}
