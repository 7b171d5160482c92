package kernel

import (
	"fmt"
	"net/netip"
)

// Op is the kind of one kernel change.
type Op int

// The order of the constants is the order in which Reconcile applies
// changes: everything is built before anything is torn down, so that a
// replaced route or address never leaves a gap.
const (
	OpConflict Op = iota // not a change: a desired object is blocked by a foreign one
	OpAddLink
	OpSetMTU
	OpSetUp
	OpAddAddress
	OpAddRoute
	OpReplaceRoute
	OpDeleteRoute
	OpDeleteAddress
	OpSetDown
	OpDeletePolicy
	OpDeleteSA
	OpDeleteLink
	// SA operations (InstallChildSA, RetireChildSA, RemoveTunnel).
	OpAddSA
	OpAddPolicy
	OpUpdatePolicy
)

var opNames = [...]string{
	OpConflict: "conflict", OpAddLink: "add link", OpSetMTU: "set mtu", OpSetUp: "set up", OpSetDown: "set down",
	OpAddAddress: "add address", OpAddRoute: "add route", OpReplaceRoute: "replace route",
	OpDeleteRoute: "delete route", OpDeleteAddress: "delete address", OpDeletePolicy: "delete policy",
	OpDeleteSA: "delete sa", OpDeleteLink: "delete link", OpAddSA: "add sa", OpAddPolicy: "add policy",
	OpUpdatePolicy: "update policy",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op %d", int(o))
}

// Change is one modification of the kernel that bpfvpn made (or, from Plan,
// would make).
type Change struct {
	Op   Op
	Link string // link name (links, addresses, device of routes)

	// links
	Unit     int
	Peer     int // multipoint peer (0: the unit itself)
	Underlay string
	MTU      int
	// CollectMD: the link is a collect_md (external) xfrm interface.
	CollectMD bool

	// addresses
	Prefix netip.Prefix

	// routes
	Route Route

	// XFRM
	SPI    uint32
	Dir    string // "in", "out", "fwd" (policies); "inbound", "outbound" (SAs)
	Detail string

	early     bool      // applied before everything else (a link in the way)
	promote   bool      // address deletion: keep the subnet's other addresses
	linkIndex int       // observed index, for deletes
	obsRoute  obsRoute  // observed route, for deletes
	sa        obsSA     // observed SA, for deletes
	pol       obsPolicy // observed policy, for deletes
}

func (c Change) String() string {
	switch c.Op {
	case OpAddLink:
		s := fmt.Sprintf("add link %s (xfrm if_id %d", c.Link, tunnelIfID(c.Unit, c.Peer))
		if c.CollectMD {
			s = fmt.Sprintf("add link %s (xfrm collect_md", c.Link)
		}
		if c.Underlay != "" {
			s += ", dev " + c.Underlay
		}
		if c.MTU != 0 {
			s += fmt.Sprintf(", mtu %d", c.MTU)
		}
		return s + ")"
	case OpConflict:
		return fmt.Sprintf("conflict: %s exists and is not bpfvpn's (%s)", c.Link, c.Detail)
	case OpSetMTU:
		return fmt.Sprintf("set mtu %d on %s", c.MTU, c.Link)
	case OpSetUp:
		return fmt.Sprintf("set %s up", c.Link)
	case OpSetDown:
		return fmt.Sprintf("set %s down", c.Link)
	case OpDeleteLink:
		return fmt.Sprintf("delete link %s", c.Link)
	case OpAddAddress, OpDeleteAddress:
		return fmt.Sprintf("%s %s on %s", c.Op, c.Prefix, c.Link)
	case OpAddRoute, OpReplaceRoute, OpDeleteRoute:
		return fmt.Sprintf("%s %s", c.Op, c.Route)
	case OpAddSA, OpDeleteSA:
		return fmt.Sprintf("%s st0.%d %s spi %08x%s", c.Op, c.Unit, c.Dir, c.SPI, c.Detail)
	default:
		return fmt.Sprintf("%s st0.%d %s%s", c.Op, c.Unit, c.Dir, c.Detail)
	}
}
