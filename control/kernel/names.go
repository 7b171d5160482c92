package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

const (
	// RouteProtocol is the rtnetlink protocol number of bpfvpn's routes and
	// addresses (named RouteProtocolName in /etc/iproute2/rt_protos.d).
	RouteProtocol netlink.RouteProtocol = 246
	// RouteProtocolName is RouteProtocol's name for iproute2.
	RouteProtocolName = "bpfvpn"

	// MaxUnit is the highest usable st0 unit (st0.16000 and up are reserved
	// by the vendor for HA control-link encryption).
	MaxUnit = 15999

	// ReqIDBase is the reqid of unit 0's SAs and policies; unit N uses
	// ReqIDBase+N. The range tags XFRM objects as bpfvpn's.
	ReqIDBase uint32 = 0x00bf0000

	// mainTable is the routing table bpfvpn's routes go into.
	mainTable = 254
)

// LinkName is the Linux name of st0 unit n.
func LinkName(unit int) string { return "st0." + strconv.Itoa(unit) }

// IfID is the XFRM interface id of st0 unit n (never 0: if_id 0 would match
// policies that carry no if_id).
func IfID(unit int) uint32 { return uint32(unit) + 1 }

// ReqID is the XFRM reqid of unit n's SAs and policies.
func ReqID(unit int) uint32 { return ReqIDBase + uint32(unit) }

// UnitOfLink parses "st0.N".
func UnitOfLink(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "st0.")
	if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxUnit {
		return 0, false
	}
	return n, true
}

// MaxPeer is the highest peer id of a multipoint unit.
const MaxPeer = 255

// peerIfIDBase tags the if_ids of multipoint peers: PeerIfID(N, K) is
// peerIfIDBase | N<<8 | K, above every unit's if_id.
const peerIfIDBase = 0x01000000

// PeerLinkName is the Linux name of the hidden xfrm interface that carries
// peer k of multipoint unit n.
func PeerLinkName(unit, peer int) string { return fmt.Sprintf("st0.%d.p%d", unit, peer) }

// PeerIfID is the XFRM if_id of peer k of multipoint unit n.
func PeerIfID(unit, peer int) uint32 { return peerIfIDBase | uint32(unit)<<8 | uint32(peer) }

// PeerReqID is the XFRM reqid of peer k of multipoint unit n.
func PeerReqID(unit, peer int) uint32 { return ReqIDBase + PeerIfID(unit, peer) }

// TunnelIfID is the if_id of the SAs of unit's own tunnel (peer 0) or of
// one of its multipoint peers.
func TunnelIfID(unit, peer int) uint32 { return tunnelIfID(unit, peer) }

// TunnelOfIfID returns the unit and multipoint peer (0: the unit's own
// tunnel) an if_id of bpfvpn's scheme names.
func TunnelOfIfID(ifid uint32) (unit, peer int, ok bool) { return tunnelOfIfID(ifid) }

// tunnelIfID and tunnelReqID are the ids of unit's own tunnel (peer 0) or of
// one of its multipoint peers.
func tunnelIfID(unit, peer int) uint32 {
	if peer == 0 {
		return IfID(unit)
	}
	return PeerIfID(unit, peer)
}

func tunnelReqID(unit, peer int) uint32 {
	if peer == 0 {
		return ReqID(unit)
	}
	return PeerReqID(unit, peer)
}

// peerOfLink parses "st0.N.pK".
func peerOfLink(name string) (unit, peer int, ok bool) {
	s, ok := strings.CutPrefix(name, "st0.")
	if !ok {
		return 0, 0, false
	}
	u, k, ok := strings.Cut(s, ".p")
	if !ok {
		return 0, 0, false
	}
	unit, ok = UnitOfLink("st0." + u)
	if !ok || k == "" || (len(k) > 1 && k[0] == '0') {
		return 0, 0, false
	}
	peer, err := strconv.Atoi(k)
	if err != nil || peer < 1 || peer > MaxPeer {
		return 0, 0, false
	}
	return unit, peer, true
}

// unitOfXfrm returns the unit an XFRM object belongs to, if bpfvpn owns it
// (its own tunnel or one of its multipoint peers').
func unitOfXfrm(ifid, reqid int) (int, bool) {
	unit, _, ok := tunnelOfXfrm(ifid, reqid)
	return unit, ok
}

// tunnelOfXfrm returns the unit and peer (0: the unit's own tunnel) of an
// XFRM object bpfvpn owns.
func tunnelOfXfrm(ifid, reqid int) (unit, peer int, ok bool) {
	unit, peer, ok = tunnelOfIfID(uint32(ifid))
	if !ok || uint32(reqid) != tunnelReqID(unit, peer) {
		return 0, 0, false
	}
	return unit, peer, true
}

// tunnelOfIfID returns the unit and peer an if_id of bpfvpn's scheme names.
func tunnelOfIfID(ifid uint32) (unit, peer int, ok bool) {
	switch {
	case ifid >= 1 && ifid <= MaxUnit+1:
		return int(ifid) - 1, 0, true
	case ifid&^0xffffff == peerIfIDBase:
		unit, peer = int(ifid>>8)&0xffff, int(ifid&0xff)
		if unit > MaxUnit || peer < 1 {
			return 0, 0, false
		}
		return unit, peer, true
	}
	return 0, 0, false
}

func checkUnit(unit int) error {
	if unit < 0 || unit > MaxUnit {
		return fmt.Errorf("st0 unit %d out of range 0-%d", unit, MaxUnit)
	}
	return nil
}
