package dataplane_test

import (
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
	"github.com/bpfvpn/bpfvpn/vm"
)

const vmIfID = 1

// dump logs the data-plane counters and the kernel's view for a failure.
func (l *lab) dump(t *testing.T) {
	t.Helper()
	if m, err := maps.OpenPinned(loader.InstanceDir(l.instance)); err == nil {
		cs, _ := m.ReadCounters()
		for id, v := range cs {
			if v != 0 {
				t.Logf("counter %s = %d", maps.CounterNames[id], v)
			}
		}
		m.Close()
	}
	for _, n := range l.names {
		for _, args := range [][]string{{"-s", "xfrm", "state"}, {"-s", "link"}, {"route"}, {"xfrm", "policy"}} {
			out, _ := exec.Command("ip", append([]string{"-n", n}, args...)...).CombinedOutput()
			t.Logf("%s ip %v:\n%s", n, args, out)
		}
	}
	out, _ := exec.Command("sh", "-c", "cat /proc/net/xfrm_stat; tc -s filter show dev st0.0 ingress 2>&1").CombinedOutput()
	t.Logf("%s", out)
}

// linkUp gives the link name of the calling thread's namespace the address
// addr, sets it up and routes the given prefixes into it; it returns the
// link's index.
func linkUp(t *testing.T, name, addr string, routes ...string) int {
	t.Helper()
	lk, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(addr)
	if err := netlink.AddrAdd(lk, a); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lk); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		_, dst, _ := net.ParseCIDR(r)
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: lk.Attrs().Index, Dst: dst}); err != nil {
			t.Fatal(err)
		}
	}
	return lk.Attrs().Index
}

// addTunnel gives ns an st0.0 XFRM interface (if_id 1) with addr, ESP SAs
// (rfc4106(gcm(aes))) between local and peer and 0/0 policies.
func addTunnel(t *testing.T, ns netns.NsHandle, addr string, local, peer net.IP, outSPI, inSPI int, outK, inK []byte, routes ...string) {
	t.Helper()
	inNS(t, ns, func() {
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(netlink.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "st0.0"}, Ifid: vmIfID}))
		linkUp(t, "st0.0", addr, routes...)
		sa := func(src, dst net.IP, spi int, k []byte) *netlink.XfrmState {
			return &netlink.XfrmState{Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
				Spi: spi, Reqid: 1, Ifid: vmIfID, ReplayWindow: 32,
				Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: k, ICVLen: 128}}
		}
		must(netlink.XfrmStateAdd(sa(local, peer, outSPI, outK)))
		must(netlink.XfrmStateAdd(sa(peer, local, inSPI, inK)))
		any4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		must(netlink.XfrmPolicyAdd(&netlink.XfrmPolicy{Src: any4, Dst: any4, Dir: netlink.XFRM_DIR_OUT, Ifid: vmIfID,
			Tmpls: []netlink.XfrmPolicyTmpl{{Src: local, Dst: peer, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1}}}))
		for _, dir := range []netlink.Dir{netlink.XFRM_DIR_IN, netlink.XFRM_DIR_FWD} {
			// forwarded decrypted traffic needs the fwd policy too
			must(netlink.XfrmPolicyAdd(&netlink.XfrmPolicy{Src: any4, Dst: any4, Dir: dir, Ifid: vmIfID,
				Tmpls: []netlink.XfrmPolicyTmpl{{Src: peer, Dst: local, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1}}}))
		}
	})
}

// TestVMTunnelPath: the untrust host is the IPsec peer of the router. ESP
// to the router passes XDP only with a known SPI; decrypted traffic enters
// through tc ingress on st0.0 (zone vpn) and is judged by vpn→trust
// policies; the reply hits the session at XDP on the trust side and leaves
// through st0.0.
func TestVMTunnelPath(t *testing.T) {
	vm.RequireKernelIPsec(t)
	l := newLab(t)
	kA, kB := make([]byte, 20), make([]byte, 20)
	rand.Read(kA)
	rand.Read(kB)
	rtIP, uhIP := net.ParseIP("10.10.2.1").To4(), net.ParseIP("10.10.2.2").To4()
	addTunnel(t, l.rt, "10.200.0.1/24", rtIP, uhIP, 0x5001, 0x6001, kA, kB)
	addTunnel(t, l.uh, "10.200.0.2/24", uhIP, rtIP, 0x6001, 0x5001, kB, kA, "10.10.1.0/24")

	spec := labSpec()
	spec.Zones = append(spec.Zones, dataplane.Zone{Name: "vpn", HostInbound: dataplane.HostInbound{Services: []string{"ping"}}})
	spec.Interfaces = append(spec.Interfaces, dataplane.Interface{Name: "st0.0", Zone: "vpn"})
	spec.Policies = append(spec.Policies,
		dataplane.Policy{Name: "reject-81", FromZone: "vpn", ToZone: "trust", Apps: []dataplane.AppTerm{{Proto: 6, PortLow: 81}}, Action: dataplane.Reject},
		dataplane.Policy{Name: "VPN-IN", FromZone: "vpn", ToZone: "trust", Source: []netip.Prefix{pfx("10.200.0.0/24")}, Destination: []netip.Prefix{pfx("10.10.1.0/24")}, Action: dataplane.Permit},
		dataplane.Policy{Name: "VPN-OUT", FromZone: "trust", ToZone: "vpn", Action: dataplane.Permit})
	var res *dataplane.AttachResult
	var err error
	inNS(t, l.rt, func() {
		res, err = dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt", "rtu", "st0.0"}, Spec: spec})
	})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() { inNS(t, l.rt, func() { dataplane.Detach(l.instance, []string{"st0.0"}) }) })
	for _, a := range res.Attachments {
		t.Logf("attached %s %s as %s", a.Ifname, a.Hook, a.Mode)
	}

	before := l.counter(t, loader.BpfvpnCounterIdCNT_DROP_ESP_SPI)
	if err := ping(t, l.uh, "10.10.1.2"); err == nil {
		t.Fatal("ping through the tunnel passed before the SPI was published")
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_DROP_ESP_SPI) <= before {
		t.Error("drop-esp-unknown-spi did not count")
	}
	m, err := maps.OpenPinned(loader.InstanceDir(l.instance))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.AddSPI(0x6001, vmIfID); err != nil { // the router's inbound SA
		t.Fatal(err)
	}
	newBefore := l.counter(t, loader.BpfvpnCounterIdCNT_SESSION_NEW)
	outBefore := l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT)
	if err := ping(t, l.uh, "10.10.1.2"); err != nil {
		l.dump(t)
		t.Fatalf("ping vpn→trust through ESP: %v", err)
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_SESSION_NEW) <= newBefore {
		t.Error("no session was created by tc ingress on st0.0")
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_TUNNEL_OUT) <= outBefore {
		t.Error("tc egress on st0.0 counted nothing")
	}
	if err := ping(t, l.uh, "10.200.0.1"); err != nil {
		t.Errorf("ping the router's st0.0 (host-inbound ping in zone vpn): %v", err)
	}
	// reject from the tunnel side: the RST goes back through st0.0
	_, _ = listenTCP(t, l.th, "10.10.1.2:81")
	if _, err := dialTCP(t, l.uh, "10.10.1.2:81"); !errors.Is(err, syscall.ECONNREFUSED) {
		l.dump(t)
		t.Errorf("TCP 81 from the tunnel (reject): %v, want connection refused", err)
	}
	// a vpn source outside VPN-IN is dropped at tc ingress
	if err := ping(t, l.th, "10.200.0.2"); err != nil {
		t.Errorf("ping trust→vpn (VPN-OUT): %v", err)
	}
}
