package kernel

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifaProto is IFA_PROTO (linux/if_addr.h, Linux ≥ 6.1): the originator of an
// address, like rtm_protocol for routes. The netlink library neither sends
// nor parses it, so addresses are added and dumped with raw requests.
const ifaProto = 11

// addrDump lists every address of every link with its IFA_PROTO.
func (r *Reconciler) addrDump() ([]obsAddr, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.Sockets = r.routeSock
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return nil, fmt.Errorf("dump addresses: %w", err)
	}
	var out []obsAddr
	for _, m := range msgs {
		if a, ok := parseAddrMsg(m); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// parseAddrMsg decodes one RTM_NEWADDR payload (ifaddrmsg and attributes).
// It never panics on malformed input.
func parseAddrMsg(m []byte) (obsAddr, bool) {
	if len(m) < unix.SizeofIfAddrmsg {
		return obsAddr{}, false
	}
	msg := nl.DeserializeIfAddrmsg(m)
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
	if err != nil {
		return obsAddr{}, false
	}
	var local, address []byte
	var proto uint8
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			local = a.Value
		case unix.IFA_ADDRESS:
			address = a.Value
		case ifaProto:
			if len(a.Value) >= 1 {
				proto = a.Value[0]
			}
		}
	}
	raw := local // IPv4: IFA_LOCAL is the address, IFA_ADDRESS the peer
	if raw == nil {
		raw = address
	}
	ip, ok := netip.AddrFromSlice(raw)
	if !ok {
		return obsAddr{}, false
	}
	ip = ip.Unmap()
	if int(msg.Prefixlen) > ip.BitLen() {
		return obsAddr{}, false
	}
	return obsAddr{
		LinkIndex: int(msg.Index),
		Prefix:    netip.PrefixFrom(ip, int(msg.Prefixlen)),
		Proto:     proto,
	}, true
}

// addrAdd adds p to link index with IFA_PROTO = RouteProtocol.
func (r *Reconciler) addrAdd(index int, p netip.Prefix) error {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = r.routeSock
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(p.Bits())
	req.AddData(msg)
	ip := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	req.AddData(nl.NewRtAttr(ifaProto, []byte{uint8(RouteProtocol)}))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// addrDel removes p from link index.
func (r *Reconciler) addrDel(index int, p netip.Prefix) error {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(unix.RTM_DELADDR, unix.NLM_F_ACK)
	req.Sockets = r.routeSock
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(p.Bits())
	req.AddData(msg)
	ip := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
