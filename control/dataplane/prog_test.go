package dataplane_test

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

var (
	appHTTP  = dataplane.AppTerm{Proto: tp.TCP, PortLow: 80}
	appSSH   = dataplane.AppTerm{Proto: tp.TCP, PortLow: 22}
	appDNS   = dataplane.AppTerm{Proto: tp.UDP, PortLow: 53}
	appRange = dataplane.AppTerm{Proto: tp.TCP, PortLow: 8000, PortHigh: 8010}
	appPing  = dataplane.AppTerm{Proto: tp.ICMP, HasICMPType: true, ICMPType: 8}
	appPing6 = dataplane.AppTerm{Proto: tp.ICMPv6, HasICMPType: true, ICMPType: 128}
)

// baseSpec: trust (ping, ssh), untrust (ike), vpn (st0x), dmz (VLAN 100).
func baseSpec() *dataplane.Spec {
	return &dataplane.Spec{
		Zones: []dataplane.Zone{
			{Name: "trust", HostInbound: dataplane.HostInbound{Services: []string{"ping", "ssh"}}},
			{Name: "untrust", HostInbound: dataplane.HostInbound{Services: []string{"ike"}}},
			{Name: "vpn"},
			{Name: "dmz", HostInbound: dataplane.HostInbound{Services: []string{"all"}, ServicesExcept: []string{"ssh"}}},
		},
		Interfaces: []dataplane.Interface{
			{Name: "trust0", Zone: "trust", Redirect: true},
			{Name: "untr0", Zone: "untrust", Redirect: true},
			{Name: "st0x", Zone: "vpn", Tunnel: true},
			{Name: "trust0", VLAN: 100, Zone: "dmz"},
		},
		Policies: []dataplane.Policy{
			{Name: "deny-66", FromZone: "trust", ToZone: "untrust", Source: []netip.Prefix{pfx("10.1.0.66/32")}, Action: dataplane.Deny},
			{Name: "reject-77", FromZone: "trust", ToZone: "untrust", Destination: []netip.Prefix{pfx("10.2.0.77/32"), pfx("2001:db8:2::77/128")}, Action: dataplane.Reject},
			{Name: "web-out", FromZone: "trust", ToZone: "untrust", Apps: []dataplane.AppTerm{appHTTP, appSSH, appDNS, appRange, appPing, appPing6}, Action: dataplane.Permit},
			{Name: "VPN-OUT", FromZone: "trust", ToZone: "vpn", Source: []netip.Prefix{pfx("10.1.0.0/24")}, Destination: []netip.Prefix{pfx("10.3.0.0/24")}, Action: dataplane.Permit},
			{Name: "VPN-IN", FromZone: "vpn", ToZone: "trust", Source: []netip.Prefix{pfx("10.3.0.0/24")}, Destination: []netip.Prefix{pfx("10.1.0.0/24")}, Action: dataplane.Permit},
			{Name: "dmz-out", FromZone: "dmz", ToZone: "untrust", Action: dataplane.Permit},
		},
		TCPMSS: dataplane.TCPMSS{IPsecVPN: 1350},
	}
}

type pcase struct {
	name  string
	iface string
	pkt   tp.Packet
	raw   []byte // used instead of pkt when set
	want  uint32
	check func(t *testing.T, out *tp.Decoded)
	cnt   maps.CounterID // counter that must grow (0 = none)
}

func (f *progFixture) runCases(t *testing.T, cases []pcase) {
	t.Helper()
	for _, c := range cases {
		if c.iface == "" {
			c.iface = "trust0"
		}
		if c.pkt.SrcMAC == [6]byte{} {
			copy(c.pkt.SrcMAC[:], neighMAC1)
			copy(c.pkt.DstMAC[:], f.mac[c.iface])
		}
		var before uint64
		if c.cnt != 0 {
			before = f.counter(t, c.cnt)
		}
		b := c.raw
		if b == nil {
			b = c.pkt.Bytes()
		}
		ret, out := f.runXDP(t, c.iface, b)
		if ret != c.want {
			t.Errorf("%s: xdp_zone returned %d, want %d", c.name, ret, c.want)
			continue
		}
		if c.cnt != 0 {
			if after := f.counter(t, c.cnt); after <= before {
				t.Errorf("%s: counter %s did not grow (%d)", c.name, maps.CounterNames[c.cnt], after)
			}
		}
		if c.check != nil {
			d, err := tp.Decode(out, false)
			if err != nil {
				t.Errorf("%s: decode output: %v", c.name, err)
				continue
			}
			c.check(t, d)
		}
	}
}

func tcp(src, dst string, sp, dp uint16, flags uint8, opts ...byte) tp.Packet {
	return tp.Packet{Src: addr(src), Dst: addr(dst), Proto: tp.TCP, SPort: sp, DPort: dp, TCPFlags: flags, Seq: 1000, Ack: 2000, TCPOptions: opts}
}

func udp(src, dst string, sp, dp uint16) tp.Packet {
	return tp.Packet{Src: addr(src), Dst: addr(dst), Proto: tp.UDP, SPort: sp, DPort: dp, Payload: []byte("payload!")}
}

func icmp(src, dst string, typ uint8, id uint16) tp.Packet {
	p := tp.Packet{Src: addr(src), Dst: addr(dst), Proto: tp.ICMP, ICMPType: typ, ICMPID: id, Payload: []byte("0123456789abcdef")}
	if !p.Src.Is4() {
		p.Proto = tp.ICMPv6
	}
	return p
}

func mss(v uint16) []byte { return tp.MSSOption(v) }

func TestProgHostInbound(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	esp := tp.Packet{Src: addr("10.2.0.2"), Dst: addr("10.2.0.1"), Proto: tp.ESP, SPI: 0x1234}
	natt := udp("10.2.0.2", "10.2.0.1", 4500, 4500)
	natt.Payload = []byte{0, 0, 0x12, 0x35, 0, 0, 0, 1, 1, 2, 3, 4}
	ikeNatt := udp("10.2.0.2", "10.2.0.1", 4500, 4500)
	ikeNatt.Payload = []byte{0, 0, 0, 0, 1, 2, 3, 4}
	f.runCases(t, []pcase{
		{name: "ping trust address from trust", pkt: icmp("10.1.0.2", "10.1.0.1", 8, 1), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_PASS_HOST},
		{name: "ssh from trust", pkt: tcp("10.1.0.2", "10.1.0.1", 40000, 22, tp.SYN), want: xdpPass},
		{name: "https from trust not enabled", pkt: tcp("10.1.0.2", "10.1.0.1", 40000, 443, tp.SYN), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_HOST_INBOUND},
		{name: "ping v6 from trust", pkt: icmp("2001:db8:1::2", "2001:db8:1::1", 128, 1), want: xdpPass},
		{name: "ping from untrust dropped", iface: "untr0", pkt: icmp("10.2.0.2", "10.2.0.1", 8, 1), want: xdpDrop},
		{name: "ssh from untrust dropped", iface: "untr0", pkt: tcp("10.2.0.2", "10.2.0.1", 40000, 22, tp.SYN), want: xdpDrop},
		{name: "ike 500 from untrust", iface: "untr0", pkt: udp("10.2.0.2", "10.2.0.1", 500, 500), want: xdpPass},
		{name: "ike 4500 non-ESP marker", iface: "untr0", pkt: ikeNatt, want: xdpPass},
		{name: "ike from trust dropped", pkt: udp("10.1.0.2", "10.1.0.1", 500, 500), want: xdpDrop},
		{name: "ESP unknown SPI", iface: "untr0", pkt: esp, want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_ESP_SPI},
		{name: "ESP-in-UDP unknown SPI", iface: "untr0", pkt: natt, want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_ESP_SPI},
		{name: "IPv6 ND always", iface: "untr0", pkt: tp.Packet{Src: addr("fe80::2"), Dst: addr("ff02::1:ff00:1"), Proto: tp.ICMPv6, ICMPType: 135, TTL: 255}, want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_PASS_ND},
		{name: "multicast OSPF not enabled", iface: "untr0", pkt: tp.Packet{Src: addr("10.2.0.2"), Dst: addr("224.0.0.5"), Proto: 89, Payload: make([]byte, 20)}, want: xdpDrop},
		{name: "dmz all except ssh: https passes", pkt: func() tp.Packet { p := tcp("10.4.0.2", "10.4.0.1", 1, 443, tp.SYN); p.VLAN = 100; return p }(), want: xdpPass},
		{name: "dmz all except ssh: ssh dropped", pkt: func() tp.Packet { p := tcp("10.4.0.2", "10.4.0.1", 1, 22, tp.SYN); p.VLAN = 100; return p }(), want: xdpDrop},
		{name: "ARP passes", raw: append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x11, 0x08, 0x06}, make([]byte, 28)...), want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_PASS_NON_IP},
	})
	// ESP with a known SPI passes; so does ESP-in-UDP.
	if err := f.m.AddSPI(0x1234, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.m.AddSPI(0x1235, 1); err != nil {
		t.Fatal(err)
	}
	f.runCases(t, []pcase{
		{name: "ESP known SPI", iface: "untr0", pkt: esp, want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_PASS_ESP},
		{name: "ESP-in-UDP known SPI", iface: "untr0", pkt: natt, want: xdpPass},
	})
	// Interface override: untr0 gets ping only.
	s := baseSpec()
	s.Interfaces[1].HostInbound = &dataplane.HostInbound{Services: []string{"ping"}}
	f.apply(t, s)
	f.runCases(t, []pcase{
		{name: "override: ping on untr0", iface: "untr0", pkt: icmp("10.2.0.2", "10.2.0.1", 8, 1), want: xdpPass},
		{name: "override: ike on untr0 now dropped", iface: "untr0", pkt: udp("10.2.0.2", "10.2.0.1", 500, 500), want: xdpDrop},
	})
}
