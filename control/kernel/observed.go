package kernel

import "net/netip"

// observed is the part of the kernel's state the planner looks at.
type observed struct {
	links  map[string]obsLink // every link, by name
	addrs  []obsAddr          // every address of every link
	routes []obsRoute         // main-table routes with protocol RouteProtocol
	sas    []obsSA            // XFRM states bpfvpn owns
	pols   []obsPolicy        // XFRM policies bpfvpn owns
}

type obsLink struct {
	Index    int
	Name     string
	Kind     string // rtnetlink kind ("xfrm", "veth", …)
	IfID     uint32 // xfrm only
	Underlay int    // xfrm only: IFLA_XFRM_LINK
	MTU      int
	Up       bool
}

type obsAddr struct {
	LinkIndex int
	Prefix    netip.Prefix
	Proto     uint8 // IFA_PROTO, 0 when unset
}

type obsRoute struct {
	Dst       netip.Prefix
	Gateway   netip.Addr
	LinkIndex int
	Metric    uint32
}

func (r obsRoute) key() routeKey { return routeKey{r.Dst, normMetric(r.Dst, r.Metric)} }

// obsSA is an installed XFRM state owned by bpfvpn.
type obsSA struct {
	Unit     int
	Peer     int
	SPI      uint32
	Src, Dst netip.Addr
}

// obsPolicy is an installed XFRM policy owned by bpfvpn.
type obsPolicy struct {
	Unit     int
	Peer     int
	Dir      uint8
	Src, Dst netip.Prefix
	Proto    uint8
	SrcPort  uint16
	DstPort  uint16
	TmplSrc  netip.Addr
	TmplDst  netip.Addr
}

func (o *observed) linkByIndex(i int) (obsLink, bool) {
	for _, l := range o.links {
		if l.Index == i {
			return l, true
		}
	}
	return obsLink{}, false
}

// unitsWithSAPair returns the tunnels (by upKey) that have SAs in both
// directions installed.
func (o *observed) unitsWithSAPair() map[int]bool {
	type dirs struct{ fwd, rev bool }
	byUnit := map[int][]obsSA{}
	for _, sa := range o.sas {
		k := upKey(sa.Unit, sa.Peer)
		byUnit[k] = append(byUnit[k], sa)
	}
	up := map[int]bool{}
	for unit, sas := range byUnit {
		a := sas[0]
		var d dirs
		for _, sa := range sas {
			switch {
			case sa.Src == a.Src && sa.Dst == a.Dst:
				d.fwd = true
			case sa.Src == a.Dst && sa.Dst == a.Src:
				d.rev = true
			}
		}
		if d.fwd && d.rev {
			up[unit] = true
		}
	}
	return up
}
