package kernel

import (
	"encoding/binary"
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
	var local, address []byte
	var proto uint8
	ok := walkAttrs(m[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.IFA_LOCAL:
			local = v
		case unix.IFA_ADDRESS:
			address = v
		case ifaProto:
			if len(v) >= 1 {
				proto = v[0]
			}
		}
	})
	if !ok {
		return obsAddr{}, false
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
	req := r.addrRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, index, p)
	req.AddData(nl.NewRtAttr(ifaProto, []byte{uint8(RouteProtocol)}))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// addrDel removes p from link index.
func (r *Reconciler) addrDel(index int, p netip.Prefix) error {
	_, err := r.addrRequest(unix.RTM_DELADDR, unix.NLM_F_ACK, index, p).Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// addrRequest is a proto netlink request of type typ for p (IFA_LOCAL and
// IFA_ADDRESS) on link index, sent on the reconciler's route socket.
func (r *Reconciler) addrRequest(typ, flags int, index int, p netip.Prefix) *nl.NetlinkRequest {
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = r.routeSock
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(p.Bits())
	req.AddData(msg)
	ip := p.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	return req
}

// walkAttrs calls fn for each netlink attribute in b (type without the
// nested/byte-order flags) and reports whether b was well formed. Unlike
// nl.ParseRouteAttr it does not panic on a truncated attribute.
func walkAttrs(b []byte, fn func(typ uint16, v []byte)) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return false
		}
		fn(typ, b[4:l])
		next := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if next >= len(b) {
			return true
		}
		b = b[next:]
	}
	return true
}
