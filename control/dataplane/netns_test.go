package dataplane_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	tp "github.com/bpfvpn/bpfvpn/control/dataplane/testpkt"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// lab is trust host — router — untrust host over veth, each in its own
// named network namespace; the data plane is attached on the router.
type lab struct {
	th, rt, uh netns.NsHandle
	names      [3]string
	instance   string
}

// inNS runs fn on a thread inside ns (sockets created there belong to ns).
func inNS(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	fn()
}

// udpEcho starts a UDP echo server on the untrust host (10.10.2.2:53) and
// returns a socket of the trust host connected to it; both are closed when
// the test ends.
func (l *lab) udpEcho(t *testing.T) net.Conn {
	t.Helper()
	cc, closeBoth := udpEchoPair(t, l.th, l.uh, "10.10.2.2:53")
	t.Cleanup(closeBoth)
	return cc
}

// udpEchoPair starts a UDP echo server at srvAddr in ns server and returns a
// socket of ns client connected to it, and a function that closes both.
func udpEchoPair(t *testing.T, client, server netns.NsHandle, srvAddr string) (net.Conn, func()) {
	t.Helper()
	var sc net.PacketConn
	var err error
	inNS(t, server, func() { sc, err = net.ListenPacket("udp4", srvAddr) })
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 100)
		for {
			n, from, err := sc.ReadFrom(b)
			if err != nil {
				return
			}
			sc.WriteTo(b[:n], from)
		}
	}()
	var cc net.Conn
	inNS(t, client, func() { cc, err = net.Dial("udp4", srvAddr) })
	if err != nil {
		sc.Close()
		t.Fatal(err)
	}
	return cc, func() { cc.Close(); sc.Close() }
}

func newLab(t *testing.T) *lab {
	requireRoot(t)
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool missing (apt-get install ethtool)")
	}
	sfx := randSuffix()
	l := &lab{names: [3]string{"dpth" + sfx, "dprt" + sfx, "dpuh" + sfx}, instance: "dptest-" + sfx}
	runtime.LockOSThread()
	orig, _ := netns.Get()
	var hs [3]netns.NsHandle
	for i, n := range l.names {
		h, err := netns.NewNamed(n)
		if err != nil {
			netns.Set(orig)
			runtime.UnlockOSThread()
			t.Fatalf("netns %s: %v", n, err)
		}
		hs[i] = h
		name := n
		t.Cleanup(func() { h.Close(); netns.DeleteNamed(name) })
	}
	netns.Set(orig)
	orig.Close()
	runtime.UnlockOSThread()
	l.th, l.rt, l.uh = hs[0], hs[1], hs[2]
	t.Cleanup(func() {
		inNS(t, l.rt, func() { dataplane.Detach(l.instance, []string{"rtt", "rtu"}) })
		os.RemoveAll(loader.InstanceDir(l.instance))
	})

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	inNS(t, l.rt, func() {
		must(netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rtt"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(l.th))}))
		must(netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rtu"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(l.uh))}))
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	})
	setup := func(ns netns.NsHandle, dev, cidr, gw, cidr6, gw6 string) {
		inNS(t, ns, func() {
			lo, _ := netlink.LinkByName("lo")
			must(netlink.LinkSetUp(lo))
			lk, err := netlink.LinkByName(dev)
			must(err)
			a, _ := netlink.ParseAddr(cidr)
			must(netlink.AddrAdd(lk, a))
			a6, _ := netlink.ParseAddr(cidr6)
			a6.Flags = unix.IFA_F_NODAD
			must(netlink.AddrAdd(lk, a6))
			must(netlink.LinkSetUp(lk))
			if gw != "" {
				must(netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}))
				must(netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw6), LinkIndex: lk.Attrs().Index}))
			}
		})
	}
	setup(l.th, "eth0", "10.10.1.2/24", "10.10.1.1", "2001:db8:10:1::2/64", "2001:db8:10:1::1")
	setup(l.uh, "eth0", "10.10.2.2/24", "10.10.2.1", "2001:db8:10:2::2/64", "2001:db8:10:2::1")
	setup(l.rt, "rtt", "10.10.1.1/24", "", "2001:db8:10:1::1/64", "")
	setup(l.rt, "rtu", "10.10.2.1/24", "", "2001:db8:10:2::1/64", "")
	inNS(t, l.rt, func() {
		os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0)
	})
	// Hosts send full checksums (XDP sees no CHECKSUM_PARTIAL frames, as
	// from a real NIC) and run an XDP_PASS program so that the router's
	// XDP_REDIRECT can transmit into their veth.
	for _, n := range []string{l.names[0], l.names[2]} {
		if out, err := exec.Command("ip", "netns", "exec", n, "ethtool", "-K", "eth0", "tx", "off").CombinedOutput(); err != nil {
			t.Fatalf("ethtool in %s: %v %s", n, err, out)
		}
	}
	pass, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	must(err)
	t.Cleanup(func() { pass.Close() })
	for _, ns := range []netns.NsHandle{l.th, l.uh} {
		inNS(t, ns, func() {
			lk, _ := netlink.LinkByName("eth0")
			xl, err := link.AttachXDP(link.XDPOptions{Program: pass, Interface: lk.Attrs().Index})
			must(err)
			t.Cleanup(func() { xl.Close() })
		})
	}
	return l
}

func labSpec() *dataplane.Spec {
	return &dataplane.Spec{
		Zones: []dataplane.Zone{
			{Name: "trust", HostInbound: dataplane.HostInbound{Services: []string{"ping", "ssh"}}},
			{Name: "untrust", HostInbound: dataplane.HostInbound{Services: []string{"ike"}}},
		},
		Interfaces: []dataplane.Interface{
			{Name: "rtt", Zone: "trust", Redirect: true},
			{Name: "rtu", Zone: "untrust", Redirect: true},
		},
		Policies: []dataplane.Policy{
			{Name: "reject-81", FromZone: "trust", ToZone: "untrust", Apps: []dataplane.AppTerm{{Proto: tp.TCP, PortLow: 81}, {Proto: tp.UDP, PortLow: 81}}, Action: dataplane.Reject},
			{Name: "web", FromZone: "trust", ToZone: "untrust", Apps: []dataplane.AppTerm{appHTTP, appDNS, appPing}, Action: dataplane.Permit},
		},
	}
}

func (l *lab) attach(t *testing.T, spec *dataplane.Spec) *dataplane.AttachResult {
	t.Helper()
	var res *dataplane.AttachResult
	var err error
	inNS(t, l.rt, func() {
		res, err = dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt", "rtu"}, Spec: spec})
	})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return res
}

func (l *lab) counter(t *testing.T, id maps.CounterID) uint64 {
	t.Helper()
	m, err := maps.OpenPinned(loader.InstanceDir(l.instance))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.ReadCounters()
	if err != nil {
		t.Fatal(err)
	}
	return c[id]
}

// listenTCP starts a TCP echo server in ns; it returns the port's listener
// and a channel of accepted connections.
func listenTCP(t *testing.T, ns netns.NsHandle, addr string) (net.Listener, chan *net.TCPConn) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, ns, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *net.TCPConn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c.(*net.TCPConn)
			go io.Copy(c, c)
		}
	}()
	return ln, ch
}

const netTimeout = 2 * time.Second

func dialTCP(t *testing.T, ns netns.NsHandle, addr string) (*net.TCPConn, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout("tcp", addr, netTimeout) })
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func echoOK(c net.Conn) error {
	c.SetDeadline(time.Now().Add(netTimeout))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "hello" {
		return fmt.Errorf("echo %q", b)
	}
	return nil
}

// tcpEcho opens an echo listener at addr in ns to, connects to it from ns
// from and exchanges one echo through it: a failed connect ends the test, a
// failed echo is reported. what names the flow in the messages.
func tcpEcho(t *testing.T, from, to netns.NsHandle, addr, what string) {
	t.Helper()
	_, _ = listenTCP(t, to, addr)
	c, err := dialTCP(t, from, addr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer c.Close()
	if err := echoOK(c); err != nil {
		t.Errorf("%s: echo: %v", what, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ping sends one ICMP echo from ns to dst and waits for the reply.
func ping(t *testing.T, ns netns.NsHandle, dst string) error {
	t.Helper()
	var c net.PacketConn
	var err error
	inNS(t, ns, func() { c, err = net.ListenPacket("ip4:icmp", "0.0.0.0") })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := uint16(os.Getpid() & 0xffff)
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'b', 'p', 'f'}
	cs := tp.Checksum(msg)
	msg[2], msg[3] = byte(cs>>8), byte(cs)
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(netTimeout))
	b := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(b)
		if err != nil {
			return err
		}
		if from.String() == dst && n >= 8 && b[0] == 0 && b[4] == byte(id>>8) && b[5] == byte(id) {
			return nil
		}
	}
}

// udpExchange sends one datagram from ns client to an echo server at
// srvAddr in ns server and waits for the echo.
func udpExchange(t *testing.T, client, server netns.NsHandle, srvAddr string) error {
	t.Helper()
	cc, closeBoth := udpEchoPair(t, client, server, srvAddr)
	defer closeBoth()
	return echoOK(cc)
}

func TestNetnsForwarding(t *testing.T) {
	l := newLab(t)
	res := l.attach(t, labSpec())
	for _, a := range res.Attachments {
		if a.Hook == loader.HookXDP && a.Mode != "xdp-native" {
			t.Errorf("%s attached as %s, want xdp-native on veth", a.Ifname, a.Mode)
		}
	}
	tcpEcho(t, l.th, l.uh, "10.10.2.2:80", "trust→untrust TCP 80 (permitted)")
	if l.counter(t, loader.BpfvpnCounterIdCNT_REDIRECT) == 0 {
		t.Error("no packet was XDP_REDIRECTed")
	}

	_, _ = listenTCP(t, l.th, "10.10.1.2:80")
	before := l.counter(t, loader.BpfvpnCounterIdCNT_DROP_POLICY)
	if _, err := dialTCP(t, l.uh, "10.10.1.2:80"); !isTimeout(err) {
		t.Errorf("untrust→trust TCP (default deny): %v, want a timeout", err)
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_DROP_POLICY) <= before {
		t.Error("drop-policy did not count the denied SYN")
	}

	if err := udpExchange(t, l.th, l.uh, "10.10.2.2:53"); err != nil {
		t.Errorf("UDP 53 with reply: %v", err)
	}
	if err := udpExchange(t, l.th, l.uh, "10.10.2.2:54"); !isTimeout(err) {
		t.Errorf("UDP 54 (no policy): %v, want a timeout", err)
	}
	if err := ping(t, l.th, "10.10.2.2"); err != nil {
		t.Errorf("ping trust→untrust: %v", err)
	}
	if err := ping(t, l.uh, "10.10.1.2"); !isTimeout(err) {
		t.Errorf("ping untrust→trust: %v, want a timeout", err)
	}

	// reject: RST for TCP, ICMP unreachable for UDP
	_, _ = listenTCP(t, l.uh, "10.10.2.2:81")
	if _, err := dialTCP(t, l.th, "10.10.2.2:81"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("TCP 81 (reject): %v, want connection refused", err)
	}
	if err := udpExchange(t, l.th, l.uh, "10.10.2.2:81"); err == nil || isTimeout(err) {
		t.Errorf("UDP 81 (reject): %v, want an ICMP-unreachable error", err)
	}
}

func TestNetnsHostInbound(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	if err := ping(t, l.th, "10.10.1.1"); err != nil {
		t.Errorf("ping router from trust (ping enabled): %v", err)
	}
	before := l.counter(t, loader.BpfvpnCounterIdCNT_DROP_HOST_INBOUND)
	if err := ping(t, l.uh, "10.10.2.1"); !isTimeout(err) {
		t.Errorf("ping router from untrust: %v, want a timeout", err)
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_DROP_HOST_INBOUND) <= before {
		t.Error("drop-host-inbound did not count")
	}
	listenTCP(t, l.rt, "0.0.0.0:22")
	if c, err := dialTCP(t, l.th, "10.10.1.1:22"); err != nil {
		t.Errorf("ssh to router from trust: %v", err)
	} else {
		c.Close()
	}
	if _, err := dialTCP(t, l.uh, "10.10.2.1:22"); !isTimeout(err) {
		t.Errorf("ssh to router from untrust: %v, want a timeout", err)
	}
}

func maxseg(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestNetnsMSSAllTCP(t *testing.T) {
	l := newLab(t)
	spec := labSpec()
	l.attach(t, spec)
	_, acc := listenTCP(t, l.uh, "10.10.2.2:80")
	c, err := dialTCP(t, l.th, "10.10.2.2:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := <-acc
	plain := maxseg(t, srv)
	c.Close()
	if plain <= 1200 {
		t.Fatalf("MSS without clamping is already %d", plain)
	}
	// the same attach with all-tcp: maps updated in place
	spec.TCPMSS.AllTCP = 1200
	l.attach(t, spec)
	c, err = dialTCP(t, l.th, "10.10.2.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv = <-acc
	if got := maxseg(t, srv); got > 1200 {
		t.Errorf("receiver's TCP_MAXSEG %d with all-tcp 1200 (was %d)", got, plain)
	}
	if got := maxseg(t, c); got > 1200 {
		t.Errorf("initiator's TCP_MAXSEG %d: the SYN-ACK was not clamped", got)
	}
	if err := echoOK(c); err != nil {
		t.Errorf("echo over the clamped connection: %v", err)
	}
}

func TestNetnsAttachLifecycle(t *testing.T) {
	l := newLab(t)
	dir := loader.InstanceDir(l.instance)
	// invalid input attaches nothing
	bad := labSpec()
	bad.Interfaces = append(bad.Interfaces, dataplane.Interface{Name: "nosuch0", Zone: "trust"})
	inNS(t, l.rt, func() {
		if _, err := dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt"}, Spec: bad}); err == nil {
			t.Error("attach with a missing interface succeeded")
		}
		bad2 := labSpec()
		bad2.Policies[0].FromZone = "nozone"
		if _, err := dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt"}, Spec: bad2}); err == nil {
			t.Error("attach with an unknown zone succeeded")
		}
		if _, err := dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"lo"}, Spec: labSpec()}); !errors.Is(err, dataplane.ErrNotInSpec) {
			t.Errorf("attach of an interface outside the zones: %v", err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid attaches left %s behind (%v)", dir, err)
	}

	r1 := l.attach(t, labSpec())
	st, err := dataplane.ReadStatus(l.instance)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Attachments) != 4 {
		t.Errorf("status lists %d attachments, want XDP and tc egress on both: %+v", len(st.Attachments), st.Attachments)
	}
	for _, a := range st.Attachments {
		if a.ProgID == 0 {
			t.Errorf("%s: no program id", a.Ifname)
		}
	}
	found := false
	for _, m := range st.Maps {
		if m.Name == "ifaces" && m.Entries == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("status maps %+v lack ifaces with 2 entries", st.Maps)
	}
	if len(st.Policies) != 2 || st.Policies[1].Name != "web" || st.Policies[1].From != "trust" || st.Policies[1].Action != "permit" {
		t.Errorf("status policies %+v", st.Policies)
	}
	// a second attach updates in place: same pins, other generation
	r2 := l.attach(t, labSpec())
	if r1.Compiled.Gen == r2.Compiled.Gen {
		t.Errorf("generation stayed %d", r2.Compiled.Gen)
	}
	_, _ = listenTCP(t, l.uh, "10.10.2.2:80")
	if c, err := dialTCP(t, l.th, "10.10.2.2:80"); err != nil {
		t.Errorf("traffic after the re-attach: %v", err)
	} else {
		c.Close()
	}
	if st, err = dataplane.ReadStatus(l.instance); err != nil {
		t.Fatal(err)
	}
	if len(st.Policies) != 2 || st.Policies[1].Hits == 0 {
		t.Errorf("policy web has no hit after a permitted connection: %+v", st.Policies)
	}
	var n int
	inNS(t, l.rt, func() { n, err = dataplane.Detach(l.instance, []string{"rtt", "rtu"}) })
	if err != nil || n != 4 {
		t.Errorf("detach: %d hooks, %v", n, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("detach of the last interface left %s (%v)", dir, err)
	}
	inNS(t, l.rt, func() {
		lk, _ := netlink.LinkByName("rtt")
		if lk.Attrs().Xdp != nil && lk.Attrs().Xdp.Attached {
			t.Error("XDP still attached to rtt after detach")
		}
	})
}

// TestNetnsSelfSessions: the router's own connections get a session at tc
// egress, so their replies pass although the zone enables no service.
func TestNetnsSelfSessions(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	tcpEcho(t, l.rt, l.uh, "10.10.2.2:8080", "router → untrust host TCP (untrust allows only ike)")
	if err := ping(t, l.rt, "10.10.2.2"); err != nil {
		t.Errorf("router pings untrust host: %v", err)
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_SESSION_SELF) == 0 {
		t.Error("no self session counted")
	}
	// unsolicited traffic to the router from untrust still drops
	if _, err := dialTCP(t, l.uh, "10.10.2.1:8080"); !isTimeout(err) {
		t.Errorf("untrust → router TCP 8080: %v, want a timeout", err)
	}
}

// TestNetnsIPv6: IPv6 forwarding through the sessions (neighbour discovery
// passes XDP on its own), default deny the other way.
func TestNetnsIPv6(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	tcpEcho(t, l.th, l.uh, "[2001:db8:10:2::2]:80", "trust→untrust TCP over IPv6")
	_, _ = listenTCP(t, l.th, "[2001:db8:10:1::2]:80")
	if _, err := dialTCP(t, l.uh, "[2001:db8:10:1::2]:80"); !isTimeout(err) {
		t.Errorf("untrust→trust over IPv6: %v, want a timeout", err)
	}
	if l.counter(t, loader.BpfvpnCounterIdCNT_PASS_ND) == 0 {
		t.Error("no neighbour-discovery packet was counted")
	}
}

// TestNetnsReattachNoLoss: while attach runs again with a changed
// configuration (maps updated in place, links kept), an established UDP
// exchange loses no packet.
func TestNetnsReattachNoLoss(t *testing.T) {
	l := newLab(t)
	l.attach(t, labSpec())
	cc := l.udpEcho(t)
	if err := echoOK(cc); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		spec := labSpec()
		spec.TCPMSS.AllTCP = 1300
		spec.Policies = append([]dataplane.Policy{{Name: "extra", FromZone: "trust", ToZone: "untrust",
			Destination: []netip.Prefix{pfx("192.0.2.0/24")}, Action: dataplane.Deny}}, spec.Policies...)
		var err error
		inNS(t, l.rt, func() {
			_, err = dataplane.Attach(dataplane.AttachOptions{Instance: l.instance, Interfaces: []string{"rtt", "rtu"}, Spec: spec})
		})
		done <- err
	}()
	exchanges := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("re-attach: %v", err)
			}
			finished = true
		default:
		}
		if err := echoOK(cc); err != nil {
			t.Fatalf("exchange %d during the re-attach: %v", exchanges, err)
		}
		exchanges++
	}
	t.Logf("%d UDP exchanges during the re-attach, none lost", exchanges)
}
