package dataplane_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

func redirected(f *progFixture, ttl uint8) func(t *testing.T, d *tp.Decoded) {
	return func(t *testing.T, d *tp.Decoded) {
		t.Helper()
		if !bytes.Equal(d.DstMAC[:], neighMAC) || !bytes.Equal(d.SrcMAC[:], f.mac["untr0"]) {
			t.Errorf("redirected frame MACs %x → %x, want %x → %x", d.SrcMAC, d.DstMAC, f.mac["untr0"], neighMAC)
		}
		if d.TTL != ttl || !d.ChecksumsOK {
			t.Errorf("TTL %d (want %d), checksums ok %v", d.TTL, ttl, d.ChecksumsOK)
		}
	}
}

func TestProgTransit(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	synack := tcp("10.2.0.2", "10.1.0.2", 80, 1234, tp.SYN|tp.ACK)
	f.runCases(t, []pcase{
		{name: "permit SYN out, redirected", pkt: tcp("10.1.0.2", "10.2.0.2", 1234, 80, tp.SYN), want: xdpRedirect,
			check: redirected(f, 63), cnt: loader.BpfvpnCounterIdCNT_SESSION_NEW},
		{name: "return SYN-ACK hits the session", iface: "untr0", pkt: synack, want: xdpRedirect, cnt: loader.BpfvpnCounterIdCNT_SESSION_HIT},
		{name: "ACK of the session", pkt: tcp("10.1.0.2", "10.2.0.2", 1234, 80, tp.ACK), want: xdpRedirect},
		{name: "untrust→trust default deny", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 999, 22, tp.SYN), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_POLICY},
		{name: "non-SYN without session", pkt: tcp("10.1.0.2", "10.2.0.2", 1235, 80, tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_TCP_NO_SYN},
		{name: "deny by source (first match before permit)", pkt: tcp("10.1.0.66", "10.2.0.2", 1234, 80, tp.SYN), want: xdpDrop},
		{name: "application not permitted", pkt: tcp("10.1.0.2", "10.2.0.2", 1234, 8080, tp.SYN), want: xdpDrop},
		{name: "port range application", pkt: tcp("10.1.0.2", "10.2.0.2", 1234, 8005, tp.SYN), want: xdpRedirect},
		{name: "UDP DNS permitted", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 53), want: xdpRedirect},
		{name: "UDP DNS reply", iface: "untr0", pkt: udp("10.2.0.2", "10.1.0.2", 53, 5353), want: xdpRedirect},
		{name: "UDP other port denied", pkt: udp("10.1.0.2", "10.2.0.2", 5353, 54), want: xdpDrop},
		{name: "ICMP echo permitted", pkt: icmp("10.1.0.2", "10.2.0.2", 8, 77), want: xdpRedirect},
		{name: "ICMP echo reply via session", iface: "untr0", pkt: icmp("10.2.0.2", "10.1.0.2", 0, 77), want: xdpRedirect},
		{name: "ICMP echo reply without session", iface: "untr0", pkt: icmp("10.2.0.2", "10.1.0.2", 0, 78), want: xdpDrop},
		{name: "echo request from the other side with the same id is a new flow", iface: "untr0", pkt: icmp("10.2.0.2", "10.1.0.2", 8, 77), want: xdpDrop},
		{name: "IPv6 TCP permitted", pkt: tcp("2001:db8:1::2", "2001:db8:2::2", 1234, 80, tp.SYN), want: xdpRedirect, check: redirected(f, 63)},
		{name: "IPv6 reply", iface: "untr0", pkt: tcp("2001:db8:2::2", "2001:db8:1::2", 80, 1234, tp.SYN|tp.ACK), want: xdpRedirect},
		{name: "ICMPv6 echo permitted", pkt: icmp("2001:db8:1::2", "2001:db8:2::2", 128, 5), want: xdpRedirect},
		{name: "TTL 1 left to the stack", pkt: func() tp.Packet { p := tcp("10.1.0.2", "10.2.0.2", 1236, 80, tp.SYN); p.TTL = 1; return p }(), want: xdpPass},
		{name: "VLAN 100 (dmz) → untrust permitted, passed to the stack", pkt: func() tp.Packet { p := tcp("10.4.0.2", "10.2.0.2", 1, 80, tp.SYN); p.VLAN = 100; return p }(), want: xdpPass},
		{name: "unknown VLAN dropped", pkt: func() tp.Packet { p := tcp("10.4.0.2", "10.2.0.2", 1, 80, tp.SYN); p.VLAN = 200; return p }(), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_NO_ZONE},
		{name: "egress interface in no zone", pkt: tcp("10.1.0.2", "192.0.2.1", 1, 80, tp.SYN), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_NO_TO_ZONE},
		{name: "no route: dropped", pkt: tcp("10.1.0.2", "198.51.100.1", 1, 80, tp.SYN), want: xdpDrop},
	})
}

func TestProgReject(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	syn := tcp("10.1.0.2", "10.2.0.77", 4321, 80, tp.SYN)
	syn.Payload = []byte("xyz")
	f.runCases(t, []pcase{
		{name: "reject TCP → RST", pkt: syn, want: xdpTX, cnt: loader.BpfvpnCounterIdCNT_REJECT_TCP,
			check: func(t *testing.T, d *tp.Decoded) {
				if d.Proto != tp.TCP || d.Src != addr("10.2.0.77") || d.Dst != addr("10.1.0.2") || d.SPort != 80 || d.DPort != 4321 {
					t.Errorf("RST addressing %+v", d)
				}
				if d.TCPFlags != tp.RST|tp.ACK || d.Ack != 1000+3+1 || !d.ChecksumsOK {
					t.Errorf("RST flags %#x ack %d checksums %v", d.TCPFlags, d.Ack, d.ChecksumsOK)
				}
				if !bytes.Equal(d.DstMAC[:], neighMAC1) {
					t.Errorf("RST to MAC %x", d.DstMAC)
				}
			}},
		{name: "reject ACK → RST with its ack as seq", pkt: tcp("10.1.0.2", "10.2.0.77", 4321, 80, tp.SYN|tp.ACK), want: xdpDrop},
		{name: "reject UDP → ICMP unreachable", pkt: udp("10.1.0.2", "10.2.0.77", 5000, 53), want: xdpTX, cnt: loader.BpfvpnCounterIdCNT_REJECT_ICMP,
			check: func(t *testing.T, d *tp.Decoded) {
				if d.Proto != tp.ICMP || d.ICMPType != 3 || d.ICMPCode != 13 || !d.ChecksumsOK {
					t.Errorf("ICMP answer type %d code %d checksums %v", d.ICMPType, d.ICMPCode, d.ChecksumsOK)
				}
				if d.Src != addr("10.2.0.77") || d.Dst != addr("10.1.0.2") {
					t.Errorf("ICMP addressing %v → %v", d.Src, d.Dst)
				}
				q := d.L4[8:]
				if len(q) < 28 || q[0] != 0x45 || binary.BigEndian.Uint16(q[20+2:]) != 53 {
					t.Errorf("quoted packet %x", q)
				}
			}},
		{name: "reject IPv6 UDP → ICMPv6 unreachable", pkt: udp("2001:db8:1::2", "2001:db8:2::77", 5000, 53), want: xdpTX,
			check: func(t *testing.T, d *tp.Decoded) {
				if d.Proto != tp.ICMPv6 || d.ICMPType != 1 || d.ICMPCode != 1 || !d.ChecksumsOK {
					t.Errorf("ICMPv6 answer type %d code %d checksums %v", d.ICMPType, d.ICMPCode, d.ChecksumsOK)
				}
			}},
		{name: "reject IPv6 TCP → RST", pkt: tcp("2001:db8:1::2", "2001:db8:2::77", 4321, 80, tp.SYN), want: xdpTX,
			check: func(t *testing.T, d *tp.Decoded) {
				if d.TCPFlags != tp.RST|tp.ACK || !d.ChecksumsOK || d.Src != addr("2001:db8:2::77") {
					t.Errorf("v6 RST %+v", d)
				}
			}},
		{name: "reject VLAN-tagged keeps the tag", pkt: func() tp.Packet {
			p := udp("10.4.0.2", "10.2.0.77", 5000, 53)
			p.VLAN = 100
			return p
		}(), want: xdpPass},
	})
}

func TestProgMSS(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	wantMSS := func(v uint16) func(t *testing.T, d *tp.Decoded) {
		return func(t *testing.T, d *tp.Decoded) {
			t.Helper()
			if d.MSS != v || !d.ChecksumsOK {
				t.Errorf("MSS %d (want %d), checksums ok %v", d.MSS, v, d.ChecksumsOK)
			}
		}
	}
	ts := []byte{8, 10, 1, 2, 3, 4, 0, 0, 0, 0}
	zeroLen := tcp("10.1.0.2", "10.3.0.5", 2006, 443, tp.SYN, append([]byte{5, 0}, mss(1460)...)...)
	copy(zeroLen.SrcMAC[:], neighMAC1)
	copy(zeroLen.DstMAC[:], f.mac["trust0"])
	zeroLenBytes := zeroLen.Bytes()
	f.runCases(t, []pcase{
		{name: "SYN into tunnel clamped", pkt: tcp("10.1.0.2", "10.3.0.5", 2000, 443, tp.SYN, mss(1460)...), want: xdpPass,
			check: wantMSS(1350), cnt: loader.BpfvpnCounterIdCNT_MSS_CLAMPED},
		{name: "smaller MSS never raised", pkt: tcp("10.1.0.2", "10.3.0.5", 2001, 443, tp.SYN, mss(1200)...), want: xdpPass, check: wantMSS(1200)},
		{name: "NOP NOP TS then MSS", pkt: tcp("10.1.0.2", "10.3.0.5", 2002, 443, tp.SYN, append(append([]byte{1, 1}, ts...), mss(1460)...)...), want: xdpPass, check: wantMSS(1350)},
		{name: "MSS at odd offset after window scale", pkt: tcp("10.1.0.2", "10.3.0.5", 2003, 443, tp.SYN, append([]byte{3, 3, 7}, mss(1460)...)...), want: xdpPass, check: wantMSS(1350)},
		{name: "SACK-perm, TS, WS, MSS last", pkt: tcp("10.1.0.2", "10.3.0.5", 2004, 443, tp.SYN, append(append([]byte{4, 2}, ts...), append([]byte{1, 3, 3, 7}, mss(9000)...)...)...), want: xdpPass, check: wantMSS(1350)},
		{name: "no MSS option", pkt: tcp("10.1.0.2", "10.3.0.5", 2005, 443, tp.SYN, 1, 1, 1, 1), want: xdpPass, check: wantMSS(0)},
		{name: "option length 0 is not followed", pkt: zeroLen, want: xdpPass, check: func(t *testing.T, d *tp.Decoded) {
			if !bytes.HasPrefix(d.L3, zeroLenBytes[14:]) {
				t.Errorf("segment changed: %x", d.L3)
			}
		}},
		{name: "plain zone pair without all-tcp unchanged", pkt: tcp("10.1.0.2", "10.2.0.2", 2007, 80, tp.SYN, mss(1460)...), want: xdpRedirect, check: wantMSS(1460)},
		{name: "IPv6 SYN into tunnel", pkt: func() tp.Packet {
			return tcp("2001:db8:1::2", "2001:db8:3::5", 2008, 443, tp.SYN, mss(1440)...)
		}(), want: xdpDrop}, // no trust→vpn IPv6 policy
	})
	// SYN-ACK answering through the tunnel path (tc ingress on st0) is clamped too.
	synack := tcp("10.3.0.5", "10.1.0.2", 443, 2000, tp.SYN|tp.ACK, mss(1460)...)
	copy(synack.DstMAC[:], f.mac["st0x"])
	ret, out := f.runTC(t, f.objs.TcSt0Ingress, "st0x", synack.Bytes())
	if ret != tcOK {
		t.Fatalf("tc ingress SYN-ACK: %d", ret)
	}
	if d, err := tp.Decode(out, false); err != nil || d.MSS != 1350 || !d.ChecksumsOK {
		t.Errorf("tc SYN-ACK: %+v %v", d, err)
	}
	// all-tcp clamps every SYN.
	s := baseSpec()
	s.TCPMSS.AllTCP = 1300
	f.apply(t, s)
	f.runCases(t, []pcase{
		{name: "all-tcp clamps plain SYN", pkt: tcp("10.1.0.2", "10.2.0.2", 2100, 80, tp.SYN, mss(1460)...), want: xdpRedirect, check: wantMSS(1300)},
		{name: "all-tcp lower than ipsec wins in tunnel", pkt: tcp("10.1.0.2", "10.3.0.5", 2101, 443, tp.SYN, mss(1460)...), want: xdpPass, check: wantMSS(1300)},
	})
}

func TestProgTunnelIngress(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	run := func(name string, p tp.Packet, want uint32) {
		t.Helper()
		copy(p.DstMAC[:], f.mac["st0x"])
		if ret, _ := f.runTC(t, f.objs.TcSt0Ingress, "st0x", p.Bytes()); ret != want {
			t.Errorf("%s: tc_st0_ingress returned %d, want %d", name, ret, want)
		}
	}
	run("vpn→trust permitted by VPN-IN", tcp("10.3.0.5", "10.1.0.2", 5000, 22, tp.SYN), tcOK)
	run("vpn→trust from outside Host2-Net denied", tcp("10.3.1.5", "10.1.0.2", 5000, 22, tp.SYN), tcShot)
	run("vpn→untrust has no policy", tcp("10.3.0.5", "10.2.0.2", 5000, 80, tp.SYN), tcShot)
	run("host-inbound in zone vpn (none enabled)", icmp("10.3.0.5", "10.9.0.1", 8, 1), tcShot)
	// a session made at XDP (trust→vpn) carries the reply from the tunnel
	if ret, _ := f.runXDP(t, "trust0", func() []byte {
		p := tcp("10.1.0.2", "10.3.0.9", 7000, 80, tp.SYN)
		copy(p.DstMAC[:], f.mac["trust0"])
		return p.Bytes()
	}()); ret != xdpPass {
		t.Fatalf("trust→vpn SYN: %d", ret)
	}
	run("reply from the tunnel hits the session", tcp("10.3.0.9", "10.1.0.2", 80, 7000, tp.SYN|tp.ACK), tcOK)
	// egress counts and passes
	before := f.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT)
	if ret, _ := f.runTC(t, f.objs.TcSt0Egress, "st0x", tcp("10.1.0.2", "10.3.0.9", 7000, 80, tp.ACK).Bytes()); ret != tcOK {
		t.Errorf("egress: %d", ret)
	}
	if f.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT) <= before {
		t.Error("tunnel-out counter did not grow")
	}
	// a SYN the router itself sends into the tunnel is clamped at tc egress
	syn := tcp("10.9.0.1", "10.3.0.9", 7001, 179, tp.SYN, mss(1460)...)
	ret, out := f.runTC(t, f.objs.TcSt0Egress, "st0x", syn.Bytes())
	if d, err := tp.Decode(out, false); ret != tcOK || err != nil || d.MSS != 1350 || !d.ChecksumsOK {
		t.Errorf("egress SYN: verdict %d, %+v, %v", ret, d, err)
	}
}

func TestProgFragments(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	first := udp("10.1.0.2", "10.2.0.2", 5353, 53)
	first.MoreFrags, first.FragID = true, 4242
	later := tp.Packet{Src: addr("10.1.0.2"), Dst: addr("10.2.0.2"), Proto: tp.UDP, FragOffset: 2, FragID: 4242, L4Raw: make([]byte, 16)}
	orphan := later
	orphan.FragID = 4343
	denied := udp("10.1.0.2", "10.2.0.2", 5353, 54)
	denied.MoreFrags, denied.FragID = true, 4444
	deniedLater := later
	deniedLater.FragID = 4444
	short := tp.Packet{Src: addr("10.1.0.2"), Dst: addr("10.2.0.2"), Proto: tp.TCP, MoreFrags: true, FragID: 4545, L4Raw: make([]byte, 8)}
	first6 := udp("2001:db8:1::2", "2001:db8:2::2", 5353, 53)
	first6.MoreFrags, first6.FragID = true, 99
	later6 := tp.Packet{Src: addr("2001:db8:1::2"), Dst: addr("2001:db8:2::2"), Proto: tp.UDP, FragOffset: 2, FragID: 99, L4Raw: make([]byte, 16)}
	f.runCases(t, []pcase{
		{name: "first fragment judged by policy", pkt: first, want: xdpRedirect},
		{name: "later fragment follows it", pkt: later, want: xdpPass, cnt: loader.BpfvpnCounterIdCNT_FRAG_FOLLOWED},
		{name: "later fragment without first", pkt: orphan, want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_FRAG_UNKNOWN},
		{name: "first fragment denied", pkt: denied, want: xdpDrop},
		{name: "its later fragment dropped", pkt: deniedLater, want: xdpDrop},
		{name: "first fragment too short for TCP header", pkt: short, want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_FRAG_SHORT},
		{name: "IPv6 first fragment", pkt: first6, want: xdpRedirect},
		{name: "IPv6 later fragment follows", pkt: later6, want: xdpPass},
	})
}

func TestProgICMPErrors(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	out := udp("10.1.0.2", "10.2.0.2", 5353, 53)
	f.runCases(t, []pcase{{name: "flow out", pkt: out, want: xdpRedirect}})
	quote := func(p tp.Packet) []byte {
		b := p.Bytes()
		return b[14 : 14+28]
	}
	errFor := func(p tp.Packet) tp.Packet {
		return tp.Packet{Src: addr("10.2.0.2"), Dst: addr("10.1.0.2"), Proto: tp.ICMP, ICMPType: 3, ICMPCode: 3, Payload: quote(p)}
	}
	f.runCases(t, []pcase{
		{name: "port unreachable for a session passes", iface: "untr0", pkt: errFor(out), want: xdpPass},
		{name: "unreachable without session dropped", iface: "untr0", pkt: errFor(udp("10.1.0.2", "10.2.0.2", 1, 53)), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_ICMP_ERROR},
		{name: "ICMP error to the router passes (PMTU)", iface: "untr0", pkt: tp.Packet{Src: addr("10.2.0.2"), Dst: addr("10.2.0.1"), Proto: tp.ICMP, ICMPType: 3, ICMPCode: 4, Payload: quote(out)}, want: xdpPass},
	})
}

func TestProgGenerations(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	syn := tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.SYN)
	ssh := tcp("10.1.0.2", "10.2.0.2", 3001, 22, tp.SYN)
	f.runCases(t, []pcase{{name: "http session", pkt: syn, want: xdpRedirect}, {name: "ssh session", pkt: ssh, want: xdpRedirect}})
	// New generation: http no longer permitted, ssh still is.
	s := baseSpec()
	s.Policies[2].Apps = []dataplane.AppTerm{appSSH}
	c := f.apply(t, s)
	cfg, _ := f.m.ReadConfig()
	if cfg.Gen != c.Gen {
		t.Fatalf("active generation %d, applied %d", cfg.Gen, c.Gen)
	}
	f.runCases(t, []pcase{
		{name: "http session closed by new generation", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 80, 3000, tp.SYN|tp.ACK), want: xdpDrop, cnt: loader.BpfvpnCounterIdCNT_DROP_SESSION_CLOSED},
		{name: "closed session stays closed", pkt: tcp("10.1.0.2", "10.2.0.2", 3000, 80, tp.ACK), want: xdpDrop},
		{name: "ssh session survives the re-check", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 22, 3001, tp.SYN|tp.ACK), want: xdpRedirect, cnt: loader.BpfvpnCounterIdCNT_SESSION_RECHECK},
		{name: "new http flow denied at once", pkt: tcp("10.1.0.2", "10.2.0.2", 3002, 80, tp.SYN), want: xdpDrop},
	})
	// default-policy permit-all
	s.DefaultPermit = true
	f.apply(t, s)
	f.runCases(t, []pcase{
		{name: "default permit-all", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 999, 8080, tp.SYN), want: xdpRedirect},
	})
}

func TestProgIKERateLimit(t *testing.T) {
	f := newProgFixture(t)
	s := baseSpec()
	s.IKELimit = dataplane.IKELimit{PerSecond: 1, Burst: 3}
	f.apply(t, s)
	ike := udp("10.2.0.2", "10.2.0.1", 500, 500)
	var pass, drop int
	for i := 0; i < 10; i++ {
		copy(ike.SrcMAC[:], neighMAC)
		copy(ike.DstMAC[:], f.mac["untr0"])
		ret, _ := f.runXDP(t, "untr0", ike.Bytes())
		switch ret {
		case xdpPass:
			pass++
		case xdpDrop:
			drop++
		}
	}
	if pass < 1 || pass > 4 || drop < 6 {
		t.Errorf("10 IKE packets at 1/s burst 3: %d passed, %d dropped", pass, drop)
	}
	other := udp("10.2.0.3", "10.2.0.1", 500, 500)
	f.runCases(t, []pcase{{name: "another source has its own bucket", iface: "untr0", pkt: other, want: xdpPass}})
}

// TestProgTunnelRebuiltMAC: on an XFRM interface tc ingress may see the
// outer MAC header that tunnel-mode decapsulation rebuilt in front of the
// inner packet; the program finds the IP header by its length.
func TestProgTunnelRebuiltMAC(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	k := maps.IfaceKey{Ifindex: f.idx["st0x"]}
	var info maps.IfaceInfo
	if err := f.m.Ifaces.Lookup(k, &info); err != nil {
		t.Fatal(err)
	}
	info.Flags &^= maps.IfL2
	if err := f.m.Ifaces.Put(k, info); err != nil {
		t.Fatal(err)
	}
	p := tcp("10.3.0.5", "10.1.0.2", 5000, 22, tp.SYN)
	if ret, _ := f.runTC(t, f.objs.TcSt0Ingress, "st0x", p.Bytes()); ret != tcOK {
		t.Errorf("vpn→trust SYN behind a rebuilt MAC header: %d", ret)
	}
	p = tcp("10.3.0.5", "10.2.0.2", 5000, 80, tp.SYN)
	if ret, _ := f.runTC(t, f.objs.TcSt0Ingress, "st0x", p.Bytes()); ret != tcShot {
		t.Errorf("vpn→untrust (no policy): %d", ret)
	}
}

// TestProgSelfSessions: tc egress on a zone interface opens a session for
// the router's own flows (their replies pass host-inbound), but never for
// ESP or IKE, which keep the SPI filter and the ike service.
func TestProgSelfSessions(t *testing.T) {
	f := newProgFixture(t)
	f.apply(t, baseSpec())
	out := func(p tp.Packet) {
		t.Helper()
		if ret, _ := f.runTC(t, f.objs.TcZoneEgress, "untr0", p.Bytes()); ret != tcOK {
			t.Fatalf("tc_zone_egress returned %d", ret)
		}
	}
	out(tcp("10.2.0.1", "10.2.0.2", 40000, 443, tp.SYN))
	out(tp.Packet{Src: addr("10.2.0.1"), Dst: addr("10.2.0.2"), Proto: tp.ESP, SPI: 0x999})
	out(udp("10.2.0.1", "10.2.0.2", 500, 500))
	out(icmp("10.2.0.1", "10.2.0.2", 0, 4242)) // the router's echo reply
	f.runCases(t, []pcase{
		{name: "echo request matching the router's earlier echo reply", iface: "untr0", pkt: icmp("10.2.0.2", "10.2.0.1", 8, 4242), want: xdpDrop},
		{name: "reply to the router's own TCP connection", iface: "untr0", pkt: tcp("10.2.0.2", "10.2.0.1", 443, 40000, tp.SYN|tp.ACK), want: xdpPass},
		{name: "unsolicited TCP to the router", iface: "untr0", pkt: tcp("10.2.0.2", "10.2.0.1", 443, 40001, tp.SYN|tp.ACK), want: xdpDrop},
		{name: "ESP with an unknown SPI after the router sent ESP", iface: "untr0", pkt: tp.Packet{Src: addr("10.2.0.2"), Dst: addr("10.2.0.1"), Proto: tp.ESP, SPI: 0x998}, want: xdpDrop},
	})
	// a forwarded packet (source not local) opens nothing
	out(tcp("10.1.0.2", "10.2.0.2", 40002, 8080, tp.SYN))
	f.runCases(t, []pcase{
		{name: "forwarded flow got no session at egress", iface: "untr0", pkt: tcp("10.2.0.2", "10.1.0.2", 8080, 40002, tp.SYN|tp.ACK), want: xdpDrop},
	})
}
