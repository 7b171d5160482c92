package kernel

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// refState is SRX1 of the reference: st0.0 on eth1, the LAN/WAN addresses
// and the two static routes.
func refState() State {
	return State{
		Tunnels: []Tunnel{{Unit: 0, Underlay: "eth1", MTU: 1436, IPv4: pfx("10.100.200.1/24")}},
		Addresses: []Address{
			{Link: "eth0", Prefix: pfx("10.100.11.1/24")},
			{Link: "eth1", Prefix: pfx("172.16.13.1/24")},
		},
		Routes: []Route{
			{Dst: pfx("10.100.22.0/24"), Dev: "st0.0", Metric: 5},
			{Dst: pfx("0.0.0.0/0"), Gateway: ip("172.16.13.2"), Metric: 5},
		},
	}
}

// refObserved is the kernel after refState was applied with the tunnel up.
func refObserved() *observed {
	return &observed{
		links: map[string]obsLink{
			"lo":    {Index: 1, Name: "lo", Kind: "", MTU: 65536, Up: true},
			"eth0":  {Index: 2, Name: "eth0", Kind: "veth", MTU: 1500, Up: true},
			"eth1":  {Index: 3, Name: "eth1", Kind: "veth", MTU: 1500, Up: true},
			"st0.0": {Index: 4, Name: "st0.0", Kind: "xfrm", IfID: 1, Underlay: 3, MTU: 1436, Up: true},
		},
		addrs: []obsAddr{
			{LinkIndex: 1, Prefix: pfx("127.0.0.1/8")},
			{LinkIndex: 2, Prefix: pfx("10.100.11.1/24"), Proto: 246},
			{LinkIndex: 3, Prefix: pfx("172.16.13.1/24"), Proto: 246},
			{LinkIndex: 4, Prefix: pfx("10.100.200.1/24"), Proto: 246},
		},
		routes: []obsRoute{
			{Dst: pfx("10.100.22.0/24"), LinkIndex: 4, Metric: 5},
			{Dst: pfx("0.0.0.0/0"), Gateway: ip("172.16.13.2"), LinkIndex: 3, Metric: 5},
		},
	}
}

func strs(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestPlanConvergedIsEmpty(t *testing.T) {
	if got := plan(refState(), map[int]bool{0: true}, refObserved()); len(got) != 0 {
		t.Errorf("plan on a converged kernel = %q, want nothing", strs(got))
	}
}

func TestPlanFromScratch(t *testing.T) {
	obs := refObserved()
	delete(obs.links, "st0.0")
	obs.addrs = obs.addrs[:1]
	obs.routes = nil
	got := strs(plan(refState(), map[int]bool{0: true}, obs))
	want := []string{
		"add link st0.0 (xfrm if_id 1, dev eth1, mtu 1436)",
		"set st0.0 up",
		"add address 10.100.11.1/24 on eth0",
		"add address 10.100.200.1/24 on st0.0",
		"add address 172.16.13.1/24 on eth1",
		"add route 0.0.0.0/0 via 172.16.13.2 metric 5",
		"add route 10.100.22.0/24 dev st0.0 metric 5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanTunnelDownWithdrawsItsRoutes(t *testing.T) {
	got := strs(plan(refState(), map[int]bool{0: false}, refObserved()))
	// The unit follows its tunnel down (routing daemons see it).
	want := []string{"delete route 10.100.22.0/24 dev st0.0 metric 5", "set st0.0 down"}
	if !slices.Equal(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	s := refState()
	s.Tunnels[0].RoutesWhenDown = true
	if got := plan(s, map[int]bool{}, refObserved()); len(got) != 0 {
		t.Errorf("on-traffic tunnel down: plan = %q, want nothing", strs(got))
	}
}

// A next hop inside st0's subnet belongs to the tunnel too (primary/backup
// with qualified next hops).
func TestPlanPrimaryBackupByGatewayInTunnel(t *testing.T) {
	s := refState()
	s.Tunnels = append(s.Tunnels, Tunnel{Unit: 1, IPv4: pfx("10.100.201.1/24")})
	s.Routes = []Route{
		{Dst: pfx("10.100.22.0/24"), Gateway: ip("10.100.200.2"), Metric: 5},
		{Dst: pfx("10.100.22.0/24"), Gateway: ip("10.100.201.2"), Metric: 10},
	}
	obs := refObserved()
	obs.links["st0.1"] = obsLink{Index: 5, Name: "st0.1", Kind: "xfrm", IfID: 2, Up: true, MTU: 1500}
	obs.addrs = append(obs.addrs, obsAddr{LinkIndex: 5, Prefix: pfx("10.100.201.1/24"), Proto: 246})
	obs.routes = []obsRoute{
		{Dst: pfx("10.100.22.0/24"), Gateway: ip("10.100.200.2"), LinkIndex: 4, Metric: 5},
		{Dst: pfx("10.100.22.0/24"), Gateway: ip("10.100.201.2"), LinkIndex: 5, Metric: 10},
	}
	got := strs(plan(s, map[int]bool{0: false, 1: true}, obs))
	want := []string{"delete route 10.100.22.0/24 via 10.100.200.2 dev st0.0 metric 5", "set st0.0 down"}
	if !slices.Equal(got, want) {
		t.Errorf("primary down: plan = %q, want %q", got, want)
	}
	obs.routes = obs.routes[1:]
	got = strs(plan(s, map[int]bool{0: true, 1: true}, obs))
	want = []string{"add route 10.100.22.0/24 via 10.100.200.2 metric 5"}
	if !slices.Equal(got, want) {
		t.Errorf("primary back: plan = %q, want %q", got, want)
	}
}

func TestPlanUpdatesInPlace(t *testing.T) {
	s := refState()
	s.Tunnels[0].MTU = 1400
	s.Tunnels[0].IPv4 = pfx("10.100.200.9/24")
	s.Tunnels[0].IPv6 = pfx("fd00::1/64")
	s.Routes[1].Gateway = ip("172.16.13.3")
	got := strs(plan(s, map[int]bool{0: true}, refObserved()))
	want := []string{
		"set mtu 1400 on st0.0",
		"add address 10.100.200.9/24 on st0.0",
		"add address fd00::1/64 on st0.0",
		"replace route 0.0.0.0/0 via 172.16.13.3 metric 5",
		"delete address 10.100.200.1/24 on st0.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The kernel cannot move an xfrm interface to another underlay: the unit is
// recreated with its addresses and routes.
func TestPlanUnderlayChangeRecreates(t *testing.T) {
	s := refState()
	s.Tunnels[0].Underlay = ""
	got := strs(plan(s, map[int]bool{0: true}, refObserved()))
	want := []string{
		"delete link st0.0",
		"add link st0.0 (xfrm if_id 1, mtu 1436)",
		"set st0.0 up",
		"add address 10.100.200.1/24 on st0.0",
		"add route 10.100.22.0/24 dev st0.0 metric 5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Deleting bpfvpn's primary IPv4 address must not take a foreign secondary
// of the same subnet with it.
func TestPlanDeletePrimaryKeepsSecondaries(t *testing.T) {
	obs := refObserved()
	obs.addrs = append(obs.addrs, obsAddr{LinkIndex: 3, Prefix: pfx("172.16.13.77/24")})
	s := refState()
	s.Addresses = s.Addresses[:1]
	got := plan(s, map[int]bool{0: true}, obs)
	if len(got) != 1 || got[0].Op != OpDeleteAddress || !got[0].promote {
		t.Errorf("plan = %q (promote %v), want one deletion with promote_secondaries", strs(got), len(got) == 1 && got[0].promote)
	}
	obs.addrs = obs.addrs[:len(obs.addrs)-1]
	if got := plan(s, map[int]bool{0: true}, obs); len(got) != 1 || got[0].promote {
		t.Errorf("without secondaries: promote set")
	}
}

func TestPlanOwnership(t *testing.T) {
	obs := refObserved()
	// Foreign: an address without bpfvpn's protocol, a non-xfrm link named
	// like a unit, an xfrm link with another name.
	obs.addrs = append(obs.addrs, obsAddr{LinkIndex: 2, Prefix: pfx("192.0.2.1/24")})
	obs.links["st0.7"] = obsLink{Index: 9, Name: "st0.7", Kind: "dummy"}
	obs.links["ipsec0"] = obsLink{Index: 10, Name: "ipsec0", Kind: "xfrm", IfID: 42}
	// Ours but no longer configured.
	obs.addrs = append(obs.addrs, obsAddr{LinkIndex: 3, Prefix: pfx("172.16.99.1/24"), Proto: 246})
	obs.links["st0.3"] = obsLink{Index: 11, Name: "st0.3", Kind: "xfrm", IfID: 4}
	obs.routes = append(obs.routes, obsRoute{Dst: pfx("10.9.0.0/16"), LinkIndex: 11, Metric: 5})
	obs.sas = []obsSA{{Unit: 3, SPI: 0x1000, Src: ip("1.1.1.1"), Dst: ip("2.2.2.2")}}
	obs.pols = []obsPolicy{{Unit: 3, Dir: 1, Src: pfx("0.0.0.0/0"), Dst: pfx("0.0.0.0/0")}}
	got := strs(plan(refState(), map[int]bool{0: true}, obs))
	want := []string{
		"delete address 172.16.99.1/24 on eth1",
		"delete policy st0.3 out 0.0.0.0/0 -> 0.0.0.0/0",
		"delete sa st0.3 2.2.2.2 spi 00001000",
		"delete link st0.3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A link named like a desired unit that bpfvpn did not create (another
// kind, or an xfrm interface with another if_id) is reported, never deleted,
// and gets none of the unit's addresses or routes.
func TestPlanRefusesForeignLinkInTheWay(t *testing.T) {
	for _, l := range []obsLink{
		{Index: 4, Name: "st0.0", Kind: "xfrm", IfID: 77, Underlay: 3, MTU: 1436, Up: true},
		{Index: 4, Name: "st0.0", Kind: "veth", MTU: 1500, Up: true},
	} {
		obs := refObserved()
		obs.links["st0.0"] = l
		obs.addrs = obs.addrs[:3] // the foreign link has no address
		obs.routes = obs.routes[1:]
		got := strs(plan(refState(), map[int]bool{0: true}, obs))
		want := []string{fmt.Sprintf("conflict: st0.0 exists and is not bpfvpn's (kind %q, if_id %d)", l.Kind, l.IfID)}
		if !slices.Equal(got, want) {
			t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestPlanIPv6MetricZeroIsKernelDefault(t *testing.T) {
	s := refState()
	s.Routes = append(s.Routes, Route{Dst: pfx("2001:db8::/32"), Gateway: ip("fe80::1"), Dev: "eth1"})
	obs := refObserved()
	obs.routes = append(obs.routes, obsRoute{Dst: pfx("2001:db8::/32"), Gateway: ip("fe80::1"), LinkIndex: 3, Metric: 1024})
	if got := plan(s, map[int]bool{0: true}, obs); len(got) != 0 {
		t.Errorf("plan = %q, want nothing", strs(got))
	}
}

func TestStateValidate(t *testing.T) {
	bad := []State{
		{Tunnels: []Tunnel{{Unit: 16000}}},
		{Tunnels: []Tunnel{{Unit: 1}, {Unit: 1}}},
		{Tunnels: []Tunnel{{Unit: 1, IPv4: pfx("fd00::1/64")}}},
		{Tunnels: []Tunnel{{Unit: 1, MTU: 20}}},
		{Addresses: []Address{{Link: "st0.1", Prefix: pfx("10.0.0.1/24")}}},
		{Routes: []Route{{Dst: pfx("10.0.0.1/24"), Dev: "eth0"}}},
		{Routes: []Route{{Dst: pfx("10.0.0.0/24")}}},
		{Routes: []Route{{Dst: pfx("10.0.0.0/24"), Gateway: ip("fd00::1")}}},
		{Routes: []Route{{Dst: pfx("10.0.0.0/24"), Dev: "a", Metric: 5}, {Dst: pfx("10.0.0.0/24"), Dev: "b", Metric: 5}}},
	}
	for i, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, s)
		}
	}
	if err := refState().Validate(); err != nil {
		t.Errorf("reference state: %v", err)
	}
}

func TestUnitOfLink(t *testing.T) {
	for name, want := range map[string]int{"st0.0": 0, "st0.15999": 15999} {
		if u, ok := UnitOfLink(name); !ok || u != want {
			t.Errorf("UnitOfLink(%q) = %d, %v", name, u, ok)
		}
	}
	for _, name := range []string{"st0.16000", "st0.", "st0.01", "st0.-1", "st1.0", "st0.0x"} {
		if _, ok := UnitOfLink(name); ok {
			t.Errorf("UnitOfLink(%q) accepted", name)
		}
	}
	if _, ok := unitOfXfrm(int(IfID(5)), int(ReqID(5))); !ok {
		t.Error("own xfrm object not recognised")
	}
	for _, c := range [][2]int{{0, int(ReqID(0))}, {int(IfID(5)), int(ReqID(6))}, {6, 1}} {
		if _, ok := unitOfXfrm(c[0], c[1]); ok {
			t.Errorf("if_id %d reqid %d taken as bpfvpn's", c[0], c[1])
		}
	}
}

// hubState is a hub with multipoint st0.0 and two spokes.
func hubState() State {
	return State{
		Tunnels: []Tunnel{{Unit: 0, IPv4: pfx("10.200.0.1/24"), Peers: []Peer{
			{ID: 1, NextHop: ip("10.200.0.2")}, {ID: 2, NextHop: ip("10.200.0.3")}}}},
		Routes: []Route{
			{Dst: pfx("10.21.0.0/24"), Gateway: ip("10.200.0.2"), Metric: 5},
			{Dst: pfx("10.23.0.0/24"), Gateway: ip("10.200.0.3"), Dev: "st0.0", Metric: 5},
		},
	}
}

func hubObserved() *observed {
	return &observed{links: map[string]obsLink{"lo": {Index: 1, Name: "lo", Up: true}}}
}

func TestPlanMultipointFromScratch(t *testing.T) {
	got := strs(plan(hubState(), map[int]bool{upKey(0, 1): true}, hubObserved()))
	want := []string{
		"add link st0.0 (xfrm if_id 1)",
		"add link st0.0.p1 (xfrm if_id 16777217)",
		"add link st0.0.p2 (xfrm if_id 16777218)",
		"set st0.0 up", "set st0.0.p1 up", // st0.0.p2 stays down with its tunnel
		"add address 10.200.0.1/24 on st0.0",
		// peer 1 is up: its LAN and its own address go into its tunnel;
		// peer 2 is down: nothing of it is routed.
		"add route 10.200.0.2/32 dev st0.0.p1 metric 0",
		"add route 10.21.0.0/24 via 10.200.0.2 dev st0.0.p1 metric 5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanMultipointPeerRemoved(t *testing.T) {
	obs := hubObserved()
	obs.links["st0.0"] = obsLink{Index: 2, Name: "st0.0", Kind: "xfrm", IfID: 1, MTU: 1500, Up: true}
	obs.links["st0.0.p1"] = obsLink{Index: 3, Name: "st0.0.p1", Kind: "xfrm", IfID: PeerIfID(0, 1), MTU: 1500, Up: true}
	obs.links["st0.0.p2"] = obsLink{Index: 4, Name: "st0.0.p2", Kind: "xfrm", IfID: PeerIfID(0, 2), MTU: 1500, Up: true}
	obs.addrs = []obsAddr{{LinkIndex: 2, Prefix: pfx("10.200.0.1/24"), Proto: 246}}
	obs.routes = []obsRoute{
		{Dst: pfx("10.200.0.2/32"), LinkIndex: 3},
		{Dst: pfx("10.21.0.0/24"), Gateway: ip("10.200.0.2"), LinkIndex: 3, Metric: 5},
		{Dst: pfx("10.200.0.3/32"), LinkIndex: 4},
		{Dst: pfx("10.23.0.0/24"), Gateway: ip("10.200.0.3"), LinkIndex: 4, Metric: 5},
	}
	obs.sas = []obsSA{{Unit: 0, Peer: 2, SPI: 0x2222, Src: ip("1.1.1.1"), Dst: ip("2.2.2.2")},
		{Unit: 0, Peer: 1, SPI: 0x1111, Src: ip("1.1.1.1"), Dst: ip("3.3.3.3")}}
	up := map[int]bool{upKey(0, 1): true, upKey(0, 2): true}
	if got := plan(hubState(), up, obs); len(got) != 0 {
		t.Fatalf("converged hub: plan %q", strs(got))
	}
	s := hubState()
	s.Tunnels[0].Peers = s.Tunnels[0].Peers[:1]
	s.Routes = s.Routes[:1]
	got := strs(plan(s, up, obs))
	want := []string{
		"delete sa st0.0 2.2.2.2 spi 00002222",
		"delete link st0.0.p2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPeerNames(t *testing.T) {
	if u, p, ok := peerOfLink(PeerLinkName(15999, 255)); !ok || u != 15999 || p != 255 || len(PeerLinkName(15999, 255)) > 15 {
		t.Errorf("peerOfLink(%s) = %d %d %v", PeerLinkName(15999, 255), u, p, ok)
	}
	for _, n := range []string{"st0.1", "st0.1.p0", "st0.1.p256", "st0.1.p01", "st0.x.p1", "st0.1.q1"} {
		if _, _, ok := peerOfLink(n); ok {
			t.Errorf("peerOfLink(%q) accepted", n)
		}
	}
	if u, p, ok := tunnelOfXfrm(int(PeerIfID(7, 3)), int(PeerReqID(7, 3))); !ok || u != 7 || p != 3 {
		t.Errorf("peer xfrm ids not recognised: %d %d %v", u, p, ok)
	}
	if _, _, ok := tunnelOfXfrm(int(PeerIfID(7, 3)), int(ReqID(7))); ok {
		t.Error("peer if_id with the unit's reqid taken as bpfvpn's")
	}
}

// On a collect_md unit the peers have no links: their routes stay on st0.0
// (BPF picks the tunnel by next hop), withdrawn while the peer is down.
func TestPlanMultipointCollectMD(t *testing.T) {
	s := hubState()
	s.Tunnels[0].CollectMD = true
	got := strs(plan(s, map[int]bool{upKey(0, 1): true}, hubObserved()))
	want := []string{
		"add link st0.0 (xfrm collect_md)",
		"set st0.0 up",
		"add address 10.200.0.1/24 on st0.0",
		"add route 10.21.0.0/24 via 10.200.0.2 metric 5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A per-unit st0.0 with hidden peers becomes a collect_md one, and
	// back: the device is recreated, the peer links go.
	obs := hubObserved()
	obs.links["st0.0"] = obsLink{Index: 2, Name: "st0.0", Kind: "xfrm", IfID: 1, MTU: 1500, Up: true}
	obs.links["st0.0.p1"] = obsLink{Index: 3, Name: "st0.0.p1", Kind: "xfrm", IfID: PeerIfID(0, 1), MTU: 1500, Up: true}
	got = strs(plan(s, map[int]bool{upKey(0, 1): true}, obs))
	if !slices.Contains(got, "add link st0.0 (xfrm collect_md)") || !slices.Contains(got, "delete link st0.0") ||
		!slices.Contains(got, "delete link st0.0.p1") {
		t.Errorf("per-unit -> collect_md: plan %q", got)
	}
	obs.links["st0.0"] = obsLink{Index: 2, Name: "st0.0", Kind: "xfrm", IfID: 0, MTU: 1500, Up: true}
	delete(obs.links, "st0.0.p1")
	got = strs(plan(hubState(), map[int]bool{upKey(0, 1): true}, obs))
	if !slices.Contains(got, "add link st0.0 (xfrm if_id 1)") || !slices.Contains(got, "delete link st0.0") {
		t.Errorf("collect_md -> per-unit: plan %q", got)
	}
	if err := (State{Tunnels: []Tunnel{{Unit: 0, CollectMD: true}, {Unit: 1, CollectMD: true}}}).Validate(); err == nil {
		t.Error("two collect_md units validate")
	}
}
