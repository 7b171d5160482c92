package kernel

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

func compileConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, diags := config.ParseBytes("test.conf", []byte(text))
	if cfg == nil {
		t.Fatalf("config does not compile: %v", diags)
	}
	return cfg
}

// TestFromConfigLabSRX1 compiles the lab's SRX1 configuration (reference
// §3 with the interface map) into the kernel state of reference §2.
func TestFromConfigLabSRX1(t *testing.T) {
	text, err := lab.Config(lab.SRX1, lab.ConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, notes := FromConfig(compileConfig(t, text))
	want := State{
		Tunnels: []Tunnel{{Unit: 0, Underlay: "eth1", IPv4: pfx("10.100.200.1/24")}},
		Addresses: []Address{
			{Link: "eth0", Prefix: pfx("10.100.11.1/24")},
			{Link: "eth1", Prefix: pfx("172.16.13.1/24")},
		},
		Routes: []Route{
			{Dst: pfx("10.100.22.0/24"), Dev: "st0.0", Metric: 5},
			{Dst: pfx("0.0.0.0/0"), Gateway: ip("172.16.13.2"), Metric: 5},
		},
	}
	if !reflect.DeepEqual(s, want) || len(notes) != 0 {
		t.Errorf("FromConfig =\n%+v\nnotes %q\nwant\n%+v", s, notes, want)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}

func TestFromConfigPrimaryBackup(t *testing.T) {
	text := strings.Join([]string{
		"set interfaces eth1 unit 0 family inet address 192.0.2.1/24",
		"set interfaces st0 unit 0 family inet address 10.0.0.1/30",
		"set interfaces st0 unit 1 family inet address 10.0.1.1/30",
		"set interfaces st0 unit 1 family inet6 address fd00:1::1/64",
		"set interfaces st0 unit 1 family inet mtu 1400",
		"set routing-options static route 10.9.0.0/16 qualified-next-hop st0.0 preference 5",
		"set routing-options static route 10.9.0.0/16 qualified-next-hop st0.1 preference 10",
		"set routing-options static route 10.8.0.0/16 next-hop [ 192.0.2.2 192.0.2.3 ]",
		"set security ike gateway GW1 address 198.51.100.1",
		"set security ike gateway GW1 external-interface eth1",
		"set security ike gateway GW1 ike-policy P",
		"set security ike policy P pre-shared-key ascii-text x",
		"set security ike policy P proposal-set prime-128",
		"set security ipsec policy IP proposal-set prime-128",
		"set security ipsec vpn V1 bind-interface st0.0",
		"set security ipsec vpn V1 ike gateway GW1",
		"set security ipsec vpn V1 ike ipsec-policy IP",
		"set security ipsec vpn V1 establish-tunnels immediately",
	}, "\n")
	s, notes := FromConfig(compileConfig(t, text))
	wantTunnels := []Tunnel{
		{Unit: 0, Underlay: "eth1", IPv4: pfx("10.0.0.1/30")},
		{Unit: 1, MTU: 1400, IPv4: pfx("10.0.1.1/30"), IPv6: pfx("fd00:1::1/64"), RoutesWhenDown: true},
	}
	if !reflect.DeepEqual(s.Tunnels, wantTunnels) {
		t.Errorf("tunnels %+v, want %+v", s.Tunnels, wantTunnels)
	}
	wantRoutes := []Route{
		{Dst: pfx("10.9.0.0/16"), Dev: "st0.0", Metric: 5},
		{Dst: pfx("10.9.0.0/16"), Dev: "st0.1", Metric: 10},
		{Dst: pfx("10.8.0.0/16"), Gateway: ip("192.0.2.2"), Metric: 5},
	}
	if !reflect.DeepEqual(s.Routes, wantRoutes) {
		t.Errorf("routes %+v, want %+v", s.Routes, wantRoutes)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "192.0.2.3") {
		t.Errorf("notes %q, want one about the second equal-preference next hop", notes)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}

func TestFromConfigMultipointHub(t *testing.T) {
	text := strings.Join([]string{
		"set interfaces eth1 unit 0 family inet address 192.0.2.1/24",
		"set interfaces st0 unit 0 multipoint",
		"set interfaces st0 unit 0 family inet address 10.200.0.1/24",
		"set interfaces st0 unit 0 family inet next-hop-tunnel 10.200.0.2 ipsec-vpn SPOKE1",
		"set interfaces st0 unit 0 family inet next-hop-tunnel 10.200.0.3 ipsec-vpn SPOKE2",
		"set routing-options static route 10.21.0.0/24 next-hop 10.200.0.2",
		"set security ike policy P pre-shared-key ascii-text x",
		"set security ike policy P proposal-set prime-128",
		"set security ipsec policy IP proposal-set prime-128",
		"set security ike gateway G1 address 198.51.100.1",
		"set security ike gateway G1 external-interface eth1",
		"set security ike gateway G1 ike-policy P",
		"set security ike gateway G2 address 198.51.100.2",
		"set security ike gateway G2 external-interface eth1",
		"set security ike gateway G2 ike-policy P",
		"set security ipsec vpn SPOKE1 bind-interface st0.0",
		"set security ipsec vpn SPOKE1 ike gateway G1",
		"set security ipsec vpn SPOKE1 ike ipsec-policy IP",
		"set security ipsec vpn SPOKE1 establish-tunnels immediately",
		"set security ipsec vpn SPOKE2 bind-interface st0.0",
		"set security ipsec vpn SPOKE2 ike gateway G2",
		"set security ipsec vpn SPOKE2 ike ipsec-policy IP",
		"set security ipsec vpn SPOKE2 establish-tunnels immediately",
	}, "\n")
	cfg := compileConfig(t, text)
	s, notes := FromConfig(cfg)
	if len(notes) != 0 || len(s.Tunnels) != 1 {
		t.Fatalf("notes %q, tunnels %+v", notes, s.Tunnels)
	}
	tu := s.Tunnels[0]
	if tu.Underlay != "eth1" || tu.RoutesWhenDown || len(tu.Peers) != 2 {
		t.Fatalf("tunnel %+v", tu)
	}
	byHop := map[netip.Addr]int{}
	for _, p := range tu.Peers {
		byHop[p.NextHop] = p.ID
	}
	id1, id2 := byHop[ip("10.200.0.2")], byHop[ip("10.200.0.3")]
	if id1 == 0 || id2 == 0 || id1 == id2 {
		t.Errorf("peer ids %v", byHop)
	}
	if VPNIfID(cfg, "SPOKE1") != PeerIfID(0, id1) || VPNIfID(cfg, "SPOKE2") != PeerIfID(0, id2) || VPNIfID(cfg, "NONE") != 0 {
		t.Errorf("VPNIfID: %d %d", VPNIfID(cfg, "SPOKE1"), VPNIfID(cfg, "SPOKE2"))
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	// The route to spoke 1's LAN goes into spoke 1's peer interface.
	rs := strs(plan(s, map[int]bool{upKey(0, id1): true}, hubObserved()))
	want := "add route 10.21.0.0/24 via 10.200.0.2 dev " + PeerLinkName(0, id1) + " metric 5"
	if !slices.Contains(rs, want) {
		t.Errorf("plan %q lacks %q", rs, want)
	}
}
