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

// unitOfXfrm returns the unit an XFRM object belongs to, if bpfvpn owns it.
func unitOfXfrm(ifid, reqid int) (int, bool) {
	if ifid < 1 || ifid > MaxUnit+1 {
		return 0, false
	}
	unit := ifid - 1
	if uint32(reqid) != ReqID(unit) {
		return 0, false
	}
	return unit, true
}

func checkUnit(unit int) error {
	if unit < 0 || unit > MaxUnit {
		return fmt.Errorf("st0 unit %d out of range 0-%d", unit, MaxUnit)
	}
	return nil
}
