package kernel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
	"github.com/bpfvpn/bpfvpn/vm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// vmSite is one gateway of the VM tests: a namespace with an underlay veth
// "wan0", a reconciler and its desired state.
type vmSite struct {
	name  string
	ns    netns.NsHandle
	h     *netlink.Handle
	r     *Reconciler
	wan   netip.Addr
	st0   netip.Addr // st0.0 IPv4 address
	st06  netip.Addr // st0.0 IPv6 address
	lan   netip.Addr // an address behind the gateway (on lo), reached by a route into st0.0
	state State
}

// newVMPair builds two gateway namespaces joined by veth. Each has a
// reconciler whose desired state is st0.0 on wan0 with IPv4 and IPv6
// addresses, the wan0 address, a "LAN" address on lo and a route to the
// peer's LAN into st0.0. Nothing is reconciled yet.
func newVMPair(t *testing.T) (a, b *vmSite) {
	t.Helper()
	vm.RequireKernelIPsec(t)
	startVMTest(t)
	a = &vmSite{name: "A", wan: ip("10.99.0.1"), st0: ip("10.200.0.1"), st06: ip("fd00:200::1"), lan: ip("10.11.0.1")}
	b = &vmSite{name: "B", wan: ip("10.99.0.2"), st0: ip("10.200.0.2"), st06: ip("fd00:200::2"), lan: ip("10.22.0.1")}
	for _, s := range []*vmSite{a, b} {
		ns, h := newAnonNetns(t)
		s.ns, s.h = ns, h
		s.r = newReconcilerIn(t, ns)
	}
	if err := a.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wan0"}, PeerName: "wan0",
		PeerNamespace: netlink.NsFd(int(b.ns))}); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*vmSite{{a, b}, {b, a}} {
		s, peer := pair[0], pair[1]
		for _, n := range []string{"lo", "wan0"} {
			l, err := s.h.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		s.state = State{
			Tunnels: []Tunnel{{Unit: 0, Underlay: "wan0", MTU: 1400,
				IPv4: netip.PrefixFrom(s.st0, 24), IPv6: netip.PrefixFrom(s.st06, 64)}},
			Addresses: []Address{
				{Link: "wan0", Prefix: netip.PrefixFrom(s.wan, 24)},
				{Link: "lo", Prefix: netip.PrefixFrom(s.lan, 32)},
			},
			Routes: []Route{{Dst: netip.PrefixFrom(peer.lan, 24).Masked(), Dev: "st0.0", Metric: 5}},
		}
	}
	return a, b
}

func (s *vmSite) reconcile(t *testing.T) []Change {
	t.Helper()
	return mustReconcile(t, s.r, s.state)
}

// startVMTest follows vm.RequireKernelIPsec in a VM test: it skips the test
// unless it runs as root and bounds it with a 4-minute watchdog.
func startVMTest(t *testing.T) {
	t.Helper()
	if unix.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	watchdog(t, 4*time.Minute)
}

// watchdog dumps every goroutine and ends the test binary if the test runs
// longer than d, so that a hang in the VM shows where it is instead of
// running into the guest's timeout.
func watchdog(t *testing.T, d time.Duration) {
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "watchdog: %s still running after %s\n%s\n", name, d, buf[:n])
		os.Exit(3)
	})
	t.Cleanup(func() { timer.Stop() })
}

// saVariant is a set of negotiated parameters.
type saVariant struct {
	name             string
	enc, integ       string
	encLen, integLen int
	esn              bool
	window           uint32
	encap            bool
}

var gcm256 = saVariant{name: "aes-gcm-256", enc: "rfc4106(gcm(aes))", encLen: 36, window: 64}

func randSPI(t *testing.T) uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(b[:]) | 0x1000_0000
}

func randKey(t *testing.T, n int) Key {
	if n == 0 {
		return nil
	}
	k := make(Key, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// saPair returns the two gateways' views of one fresh CHILD SA pair.
func saPair(t *testing.T, a, b *vmSite, v saVariant) (forA, forB ChildSA) {
	t.Helper()
	return saPairOn(t, a, b, v, 0)
}

// saPairOn is saPair for st0 unit.
func saPairOn(t *testing.T, a, b *vmSite, v saVariant, unit int) (forA, forB ChildSA) {
	t.Helper()
	ab, ba := randSPI(t), randSPI(t)
	kab := Keys{Encryption: randKey(t, v.encLen), Integrity: randKey(t, v.integLen)}
	kba := Keys{Encryption: randKey(t, v.encLen), Integrity: randKey(t, v.integLen)}
	base := ChildSA{Unit: unit, Encryption: v.enc, Integrity: v.integ, ReplayWindow: v.window, ESN: v.esn}
	forA, forB = base, base
	forA.Local, forA.Remote, forA.OutboundSPI, forA.InboundSPI, forA.Outbound, forA.Inbound = a.wan, b.wan, ab, ba, kab, kba
	forB.Local, forB.Remote, forB.OutboundSPI, forB.InboundSPI, forB.Outbound, forB.Inbound = b.wan, a.wan, ba, ab, kba, kab
	if v.encap {
		forA.Encap = &UDPEncap{LocalPort: 4500, RemotePort: 4500}
		forB.Encap = &UDPEncap{LocalPort: 4500, RemotePort: 4500}
	}
	return forA, forB
}

func install(t *testing.T, s *vmSite, c ChildSA) []Change {
	t.Helper()
	ch, err := s.r.InstallChildSA(context.Background(), c)
	if err != nil {
		t.Fatalf("site %s: %v", s.name, err)
	}
	return ch
}

func pingOK(t *testing.T, from *vmSite, dst netip.Addr) {
	t.Helper()
	st, err := lab.Ping(from.ns, dst, 3, 50*time.Millisecond, 5*time.Second)
	if err != nil || len(st.Lost) != 0 {
		t.Fatalf("ping %s -> %s: %v (%s)", from.name, dst, err, st)
	}
}

// saPackets returns the packet counter of the SA with spi at site s.
func saPackets(t *testing.T, s *vmSite, spi uint32) uint64 {
	t.Helper()
	st, err := s.r.SAStatistics()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range st {
		if x.SPI == spi {
			return x.Packets
		}
	}
	t.Fatalf("site %s: no SA %08x", s.name, spi)
	return 0
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasRoute(t *testing.T, s *vmSite, dst string) bool {
	t.Helper()
	return len(kernelRoutes(t, s.h, dst)) > 0
}

func TestVMTunnelLifecycle(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	a.reconcile(t)
	b.reconcile(t)

	l, err := a.h.LinkByName("st0.0")
	if err != nil {
		t.Fatal(err)
	}
	x, ok := l.(*netlink.Xfrmi)
	wan, _ := a.h.LinkByName("wan0")
	if !ok || x.Ifid != 1 || x.ParentIndex != wan.Attrs().Index || x.MTU != 1400 {
		t.Fatalf("st0.0 = %#v, want xfrm if_id 1 on wan0 with mtu 1400", l)
	}
	if hasRoute(t, a, "10.22.0.0/24") {
		t.Error("route into st0.0 installed while the tunnel is down")
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		t.Error("st0.0 is up without an SA pair")
	}

	forA, forB := saPair(t, a, b, gcm256)
	install(t, b, forB)
	ch := install(t, a, forA)
	if !slices.Contains(strs(ch), "add route 10.22.0.0/24 dev st0.0 metric 5") {
		t.Errorf("installing the SA pair did not restore the route: %q", strs(ch))
	}
	pingOK(t, a, b.st0)
	pingOK(t, a, b.lan) // through bpfvpn's route
	pingOK(t, a, b.st06)
	if n := saPackets(t, a, forA.OutboundSPI); n < 9 {
		t.Errorf("outbound SA counted %d packets, want ≥ 9", n)
	}
	if n := saPackets(t, a, forA.InboundSPI); n < 9 {
		t.Errorf("inbound SA counted %d packets, want ≥ 9", n)
	}
	us, err := a.r.Units()
	if err != nil || len(us) != 1 {
		t.Fatalf("units %+v, %v", us, err)
	}
	if u := us[0]; u.Name != "st0.0" || u.IfID != 1 || u.Underlay != "wan0" || !u.AdminUp || !u.LinkUp || !u.TunnelUp ||
		u.MTU != 1400 || len(u.Addresses) != 2 || u.TxPackets < 9 {
		t.Errorf("unit view %+v", u)
	}

	t.Run("Adoption", func(t *testing.T) {
		p, err := lab.StartPinger(a.ns, b.lan, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		r2 := newReconcilerIn(t, a.ns)
		if ch, err := r2.Plan(a.state); err != nil || len(ch) != 0 {
			t.Errorf("second reconciler plans %q, %v", strs(ch), err)
		}
		if ch := mustReconcile(t, r2, a.state); len(ch) != 0 {
			t.Errorf("second reconciler changed %q", strs(ch))
		}
		if ch, err := r2.InstallChildSA(ctx, forA); err != nil || len(ch) != 0 {
			t.Errorf("second reconciler re-installing the pair: %q, %v", strs(ch), err)
		}
		sas, err := r2.InstalledSAs()
		if err != nil {
			t.Fatal(err)
		}
		dirs := map[uint32]string{}
		for _, s := range sas {
			dirs[s.SPI] = s.Direction
		}
		if len(sas) != 2 || dirs[forA.InboundSPI] != "inbound" || dirs[forA.OutboundSPI] != "outbound" {
			t.Errorf("adopted SAs %+v", sas)
		}
		waitFor(time.Second, func() bool { return p.Sent() >= 20 })
		if st := p.Stop(2 * time.Second); len(st.Lost) != 0 || st.Sent == 0 {
			t.Errorf("ping during adoption: %s", st)
		}
	})

	t.Run("UpdateInPlace", func(t *testing.T) {
		s := a.state
		s.Tunnels = slices.Clone(s.Tunnels)
		s.Tunnels[0].MTU = 1380
		ch := mustReconcile(t, a.r, s)
		if got := strs(ch); !slices.Equal(got, []string{"set mtu 1380 on st0.0"}) {
			t.Errorf("MTU change: %q", got)
		}
		l2, err := a.h.LinkByName("st0.0")
		if err != nil {
			t.Fatal(err)
		}
		if l2.Attrs().Index != l.Attrs().Index {
			t.Errorf("st0.0 recreated by an MTU change: index %d, was %d", l2.Attrs().Index, l.Attrs().Index)
		}
		// Another underlay: the kernel cannot change it in place, so the
		// unit is recreated with its address and route; the SAs stay.
		s.Tunnels[0].Underlay = ""
		got := strs(mustReconcile(t, a.r, s))
		for _, w := range []string{"delete link st0.0", "add link st0.0 (xfrm if_id 1, mtu 1380)",
			"add address 10.200.0.1/24 on st0.0", "add route 10.22.0.0/24 dev st0.0 metric 5"} {
			if !slices.Contains(got, w) {
				t.Errorf("underlay change: %q lacks %q", got, w)
			}
		}
		if l3, err := a.h.LinkByName("st0.0"); err != nil || l3.(*netlink.Xfrmi).ParentIndex != 0 {
			t.Errorf("st0.0 after the underlay change: %v, %v", l3, err)
		}
		pingOK(t, a, b.lan)
		mustReconcile(t, a.r, a.state)
		pingOK(t, a, b.lan)
	})

	t.Run("Statistics", func(t *testing.T) {
		if err := a.r.ClearStatistics(-1); err != nil {
			t.Fatal(err)
		}
		if n := saPackets(t, a, forA.OutboundSPI); n != 0 {
			t.Errorf("after clear: %d packets", n)
		}
		pingOK(t, a, b.st0)
		if n := saPackets(t, a, forA.OutboundSPI); n < 3 {
			t.Errorf("after clear and ping: %d packets, want ≥ 3", n)
		}
		if _, err := a.r.ReadXfrmStat(); err != nil {
			t.Error(err)
		}
		sas, err := a.r.SAStatistics()
		if err != nil {
			t.Fatal(err)
		}
		for _, sa := range sas {
			if sa.Direction == "" || sa.Packets < 3 || sa.IntegrityFailures != 0 || sa.ReplayErrors != 0 {
				t.Errorf("SA statistics after clear and ping: %+v", sa)
			}
		}
	})

	t.Run("TunnelDown", func(t *testing.T) {
		ch, err := a.r.RemoveTunnel(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strs(ch), "delete route 10.22.0.0/24 dev st0.0 metric 5") || hasRoute(t, a, "10.22.0.0/24") {
			t.Errorf("tunnel down did not withdraw the route: %q", strs(ch))
		}
		if sas, _ := a.r.InstalledSAs(); len(sas) != 0 {
			t.Errorf("SAs left: %+v", sas)
		}
		if us, _ := a.r.Units(); len(us) != 1 || us[0].TunnelUp || us[0].AdminUp || len(us[0].Addresses) != 2 {
			t.Errorf("unit view after tunnel down: %+v", us)
		}
		if _, err := lab.Ping(a.ns, b.st0, 2, 20*time.Millisecond, 300*time.Millisecond); err == nil {
			t.Error("ping answered without SAs")
		}
		// Back up with a new pair (the old one's sequence numbers are
		// spent: B's replay window would drop them): the route returns.
		if _, err := b.r.RemoveTunnel(ctx, 0); err != nil {
			t.Fatal(err)
		}
		forA, forB = saPair(t, a, b, gcm256)
		install(t, b, forB)
		install(t, a, forA)
		if !hasRoute(t, a, "10.22.0.0/24") {
			t.Error("route not restored")
		}
		pingOK(t, a, b.lan)
	})

	t.Run("UnitRemoved", func(t *testing.T) {
		s := a.state
		s.Tunnels, s.Routes = nil, nil
		mustReconcile(t, a.r, s)
		if _, err := a.h.LinkByName("st0.0"); err == nil {
			t.Error("st0.0 still exists")
		}
		if sas, _ := a.r.InstalledSAs(); len(sas) != 0 {
			t.Errorf("SAs left: %+v", sas)
		}
		_, pols, _ := a.r.observeXfrm()
		if len(pols) != 0 {
			t.Errorf("policies left: %+v", pols)
		}
	})
}

// TestVMRekeyUnderPing rekeys the tunnel make-before-break five times while
// a 10 ms ping runs across it, and requires that no echo is lost.
func TestVMRekeyUnderPing(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	a.reconcile(t)
	b.reconcile(t)
	oldA, oldB := saPair(t, a, b, gcm256)
	install(t, a, oldA)
	install(t, b, oldB)
	pingOK(t, a, b.lan)

	p, err := lab.StartPinger(a.ns, b.lan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	const rekeys = 5
	for i := 0; i < rekeys; i++ {
		newA, newB := saPair(t, a, b, gcm256)
		for _, step := range []struct {
			s *vmSite
			f func(context.Context, ChildSA) ([]Change, error)
			c ChildSA
		}{
			{a, a.r.InstallInbound, newA}, {b, b.r.InstallInbound, newB},
			{a, a.r.InstallChildSA, newA}, {b, b.r.InstallChildSA, newB},
		} {
			if _, err := step.f(ctx, step.c); err != nil {
				p.Stop(0)
				t.Fatalf("rekey %d site %s: %v", i, step.s.name, err)
			}
		}
		if _, err := a.r.RetireChildSA(ctx, oldA, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if _, err := b.r.RetireChildSA(ctx, oldB, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// The new pair carries the ping in both directions, and the old
		// inbound SAs are gone after their grace.
		if !waitFor(5*time.Second, func() bool {
			return saPackets(t, a, newA.InboundSPI) > 0 && saPackets(t, b, newB.InboundSPI) > 0
		}) {
			t.Fatalf("rekey %d: the new SAs carry no traffic", i)
		}
		if !waitFor(5*time.Second, func() bool { return a.r.PendingRetirements() == 0 && b.r.PendingRetirements() == 0 }) {
			t.Fatalf("rekey %d: old inbound SAs not retired", i)
		}
		oldA, oldB = newA, newB
	}
	st := p.Stop(2 * time.Second)
	if len(st.Lost) != 0 || st.Sent == 0 {
		t.Errorf("ping across %d rekeys: %s (lost %v)", rekeys, st, st.Lost)
		for _, s := range []*vmSite{a, b} {
			xs, err := s.r.ReadXfrmStat()
			t.Logf("site %s xfrm_stat: %+v %v", s.name, xs, err)
		}
	}
	for _, s := range []*vmSite{a, b} {
		if sas, _ := s.r.InstalledSAs(); len(sas) != 2 {
			t.Errorf("site %s: %d SAs after the rekeys, want 2", s.name, len(sas))
		}
	}
	t.Logf("ping across %d rekeys: %s", rekeys, st)
}

// TestVMForeignObjectsSurvive puts another IPsec stack's objects next to
// bpfvpn's (an xfrm interface, SAs and a policy — one SA even on st0.0's
// if_id —, a static route, an address) and checks that reconciling,
// tearing the tunnel down and removing the unit leave them alone.
func TestVMForeignObjectsSurvive(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	a.reconcile(t)
	wan, _ := a.h.LinkByName("wan0")
	fx := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "ipsec9", ParentIndex: wan.Attrs().Index}, Ifid: 99}
	if err := a.h.LinkAdd(fx); err != nil {
		t.Fatal(err)
	}
	if err := a.h.LinkSetUp(fx); err != nil {
		t.Fatal(err)
	}
	key := randKey(t, 36)
	foreignSAs := []*netlink.XfrmState{
		{Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x9999, Reqid: 5, Ifid: 99, Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128}},
		{Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x7777, Reqid: 7, Ifid: int(IfID(0)), Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128}},
	}
	for _, s := range foreignSAs {
		if err := a.h.XfrmStateAdd(s); err != nil {
			t.Fatal(err)
		}
	}
	fp := &netlink.XfrmPolicy{Src: prefixToIPNet(pfx("0.0.0.0/0")), Dst: prefixToIPNet(pfx("0.0.0.0/0")), Dir: netlink.XFRM_DIR_OUT, Ifid: 99,
		Tmpls: []netlink.XfrmPolicyTmpl{{Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 5}}}
	if err := a.h.XfrmPolicyAdd(fp); err != nil {
		t.Fatal(err)
	}
	fr := &netlink.Route{Dst: prefixToIPNet(pfx("10.77.0.0/16")), LinkIndex: fx.Attrs().Index, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK}
	if err := a.h.RouteAdd(fr); err != nil {
		t.Fatal(err)
	}
	if err := a.h.AddrAdd(wan, &netlink.Addr{IPNet: prefixToIPNet(pfx("10.99.0.77/24"))}); err != nil {
		t.Fatal(err)
	}

	forA, _ := saPair(t, a, b, gcm256)
	install(t, a, forA)
	if ch := a.reconcile(t); len(ch) != 0 {
		t.Errorf("reconcile with foreign objects present changed %q", strs(ch))
	}
	if _, err := a.r.RemoveTunnel(ctx, 0); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, a.r, State{})

	if _, err := a.h.LinkByName("st0.0"); err == nil {
		t.Error("bpfvpn's st0.0 survived")
	}
	if _, err := a.h.LinkByName("ipsec9"); err != nil {
		t.Errorf("foreign xfrm interface removed: %v", err)
	}
	for _, s := range foreignSAs {
		if _, err := a.h.XfrmStateGet(s); err != nil {
			t.Errorf("foreign SA %x removed: %v", s.Spi, err)
		}
	}
	if _, err := a.h.XfrmPolicyGet(fp); err != nil {
		t.Errorf("foreign policy removed: %v", err)
	}
	if !hasRoute(t, a, "10.77.0.0/16") {
		t.Error("foreign route removed")
	}
	protos := addrProtos(t, a.r, wan.Attrs().Index)
	if _, ok := protos[pfx("10.99.0.77/24")]; !ok {
		t.Error("foreign address removed")
	}
	if _, ok := protos[pfx("10.99.0.1/24")]; ok {
		t.Error("bpfvpn's address survived")
	}
}

// encapSocket opens the UDP socket with ESP-in-UDP decapsulation that an IKE
// daemon keeps on port 4500.
func encapSocket(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	var fd int
	err := lab.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 4500}); err != nil {
			return err
		}
		return unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP)
	})
	if err != nil {
		t.Fatalf("encap socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
}

// TestVMSAVariants installs pairs with each supported algorithm family,
// ESN with a 128-packet window, and NAT-T encapsulation, and pings across
// each.
func TestVMSAVariants(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	a.reconcile(t)
	b.reconcile(t)
	encapSocket(t, a.ns)
	encapSocket(t, b.ns)
	for _, v := range []saVariant{
		{name: "aes-gcm-128", enc: "rfc4106(gcm(aes))", encLen: 20, window: 32},
		gcm256,
		{name: "chacha20-poly1305", enc: "rfc7539esp(chacha20,poly1305)", encLen: 36, window: 64},
		{name: "aes-cbc-256-sha256", enc: "cbc(aes)", integ: "hmac(sha256)", encLen: 32, integLen: 32, window: 64},
		{name: "aes-cbc-128-sha1-esn", enc: "cbc(aes)", integ: "hmac(sha1)", encLen: 16, integLen: 20, esn: true, window: 128},
		{name: "aes-gcm-256-natt", enc: "rfc4106(gcm(aes))", encLen: 36, window: 64, encap: true},
	} {
		t.Run(v.name, func(t *testing.T) {
			forA, forB := saPair(t, a, b, v)
			forA.Lifetime = Lifetime{SoftSeconds: 3000, HardSeconds: 3600, SoftBytes: 1 << 40, HardBytes: 1 << 41}
			install(t, a, forA)
			install(t, b, forB)
			t.Cleanup(func() {
				a.r.RemoveTunnel(ctx, 0)
				b.r.RemoveTunnel(ctx, 0)
			})
			pingOK(t, a, b.lan)
			if n := saPackets(t, b, forB.InboundSPI); n < 3 {
				t.Errorf("B's inbound SA counted %d packets", n)
			}
			states, err := a.h.XfrmStateList(netlink.FAMILY_ALL)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range states {
				if uint32(s.Spi) != forA.OutboundSPI {
					continue
				}
				if (s.Encap != nil) != v.encap || (v.encap && (s.Encap.SrcPort != 4500 || s.Encap.DstPort != 4500)) {
					t.Errorf("encapsulation %+v, want %v", s.Encap, v.encap)
				}
				if s.Ifid != int(IfID(0)) || s.Reqid != int(ReqID(0)) {
					t.Errorf("if_id %d reqid %#x", s.Ifid, s.Reqid)
				}
				if l := s.Limits; l.TimeSoft != 3000 || l.TimeHard != 3600 || l.ByteSoft != 1<<40 || l.ByteHard != 1<<41 || l.PacketHard != ^uint64(0) {
					t.Errorf("lifetimes %+v", l)
				}
			}
		})
	}
}

// TestVMPrimaryBackupFailover runs two tunnels between the gateways, st0.0
// (preference 5) and st0.1 (preference 10), both carrying a route to the
// peer's LAN. When the primary tunnel goes down its route is withdrawn and
// the ping moves to the backup; when it comes back, the ping returns.
func TestVMPrimaryBackupFailover(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	for _, pair := range [][2]*vmSite{{a, b}, {b, a}} {
		s, peer := pair[0], pair[1]
		st1 := netip.MustParseAddr(strings.Replace(s.st0.String(), "10.200.", "10.201.", 1))
		s.state.Tunnels = append(s.state.Tunnels, Tunnel{Unit: 1, Underlay: "wan0", IPv4: netip.PrefixFrom(st1, 24)})
		s.state.Routes = []Route{
			{Dst: netip.PrefixFrom(peer.lan, 24).Masked(), Dev: "st0.0", Metric: 5},
			{Dst: netip.PrefixFrom(peer.lan, 24).Masked(), Dev: "st0.1", Metric: 10},
		}
		s.reconcile(t)
	}
	p0a, p0b := saPairOn(t, a, b, gcm256, 0)
	p1a, p1b := saPairOn(t, a, b, gcm256, 1)
	for _, c := range []struct {
		s  *vmSite
		sa ChildSA
	}{{a, p0a}, {b, p0b}, {a, p1a}, {b, p1b}} {
		install(t, c.s, c.sa)
	}
	if r := kernelRoutes(t, a.h, "10.22.0.0/24"); len(r) != 2 || r[5].Protocol != RouteProtocol || r[10].Protocol != RouteProtocol {
		t.Fatalf("routes to B's LAN: %+v", r)
	}
	before0, before1 := saPackets(t, a, p0a.OutboundSPI), saPackets(t, a, p1a.OutboundSPI)
	pingOK(t, a, b.lan)
	if d0, d1 := saPackets(t, a, p0a.OutboundSPI)-before0, saPackets(t, a, p1a.OutboundSPI)-before1; d0 < 3 || d1 != 0 {
		t.Errorf("primary up: the ping went %d packets into st0.0 and %d into st0.1", d0, d1)
	}

	p, err := lab.StartPinger(a.ns, b.lan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The primary dies (DPD on both sides).
	for _, s := range []*vmSite{a, b} {
		if _, err := s.r.RemoveTunnel(ctx, 0); err != nil {
			p.Stop(0)
			t.Fatal(err)
		}
	}
	if r := kernelRoutes(t, a.h, "10.22.0.0/24"); len(r) != 1 || r[10].Protocol != RouteProtocol {
		t.Errorf("primary down: routes %+v, want the backup alone", r)
	}
	if !waitFor(5*time.Second, func() bool { return saPackets(t, b, p1b.InboundSPI) > 5 }) {
		t.Error("traffic did not move to the backup tunnel")
	}
	// The primary comes back with a new pair.
	p0a, p0b = saPairOn(t, a, b, gcm256, 0)
	install(t, b, p0b)
	install(t, a, p0a)
	if r := kernelRoutes(t, a.h, "10.22.0.0/24"); len(r) != 2 {
		t.Errorf("primary back: routes %+v", r)
	}
	if !waitFor(5*time.Second, func() bool { return saPackets(t, b, p0b.InboundSPI) > 5 }) {
		t.Error("traffic did not return to the primary tunnel")
	}
	st := p.Stop(2 * time.Second)
	// Echoes in flight when the primary's SAs are deleted (on either side)
	// may be lost; the loss is bounded by the switch, not by a timeout.
	if st.Sent == 0 || len(st.Lost) > 5 {
		t.Errorf("ping across fail-over and fail-back: %s (lost %v)", st, st.Lost)
	}
	t.Logf("ping across fail-over and fail-back: %s", st)
}

// toIKE is the IKE engines' form of c (what an SASink receives).
func toIKE(c ChildSA) ike.ChildSA {
	return ike.ChildSA{
		Name: "test", IfID: IfID(c.Unit), Protocol: ike.ProtoESP, Mode: ike.ModeTunnel,
		SPIIn: c.InboundSPI, SPIOut: c.OutboundSPI, Local: c.Local, Remote: c.Remote,
		Encryption:   ike.Algorithm{Name: c.Encryption, KeyBits: len(c.Inbound.Encryption) * 8, ICVBits: 128, AEAD: true},
		In:           ike.SAKeys{Encryption: suite.Key(c.Inbound.Encryption)},
		Out:          ike.SAKeys{Encryption: suite.Key(c.Outbound.Encryption)},
		ReplayWindow: c.ReplayWindow,
	}
}

// TestVMIKESink drives the reconciler through the IKE engines' SASink:
// install, rekey (new pair, then the old one deleted), and the last pair
// deleted taking the tunnel down.
func TestVMIKESink(t *testing.T) {
	a, b := newVMPair(t)
	a.reconcile(t)
	b.reconcile(t)
	sinkA := &IKESink{R: a.r, Grace: 100 * time.Millisecond}
	sinkB := &IKESink{R: b.r, Grace: 100 * time.Millisecond}
	oldA, oldB := saPair(t, a, b, gcm256)
	for _, x := range []struct {
		s  *IKESink
		sa ChildSA
	}{{sinkA, oldA}, {sinkB, oldB}} {
		if err := x.s.ChildSAInstalled(toIKE(x.sa)); err != nil {
			t.Fatal(err)
		}
	}
	pingOK(t, a, b.lan)

	newA, newB := saPair(t, a, b, gcm256)
	p, err := lab.StartPinger(a.ns, b.lan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		s       *IKESink
		old, sa ChildSA
	}{{sinkB, oldB, newB}, {sinkA, oldA, newA}} {
		if err := x.s.ChildSARekeyed(toIKE(x.old), toIKE(x.sa)); err != nil {
			t.Fatal(err)
		}
	}
	sinkA.ChildSADeleted(toIKE(oldA).WithoutKeys())
	sinkB.ChildSADeleted(toIKE(oldB).WithoutKeys())
	if !waitFor(5*time.Second, func() bool { return a.r.PendingRetirements() == 0 && b.r.PendingRetirements() == 0 }) {
		t.Fatal("old inbound SAs not retired")
	}
	if !waitFor(5*time.Second, func() bool { return saPackets(t, b, newB.InboundSPI) > 5 }) {
		t.Error("the new pair carries no traffic")
	}
	if st := p.Stop(2 * time.Second); len(st.Lost) != 0 || st.Sent == 0 {
		t.Errorf("ping across the rekey: %s", st)
	}
	if sas, _ := a.r.InstalledSAs(); len(sas) != 2 {
		t.Errorf("after the rekey: %+v, want the new pair", sas)
	}

	sinkA.ChildSADeleted(toIKE(newA).WithoutKeys())
	if sas, _ := a.r.InstalledSAs(); len(sas) != 0 {
		t.Errorf("after the last delete: %+v", sas)
	}
	if hasRoute(t, a, "10.22.0.0/24") || a.r.TunnelUp(0) {
		t.Error("the tunnel is still up after its last CHILD SA was deleted")
	}
}

// TestVMManyTunnelsUpAndDown brings up 200 st0 units with an SA pair each
// between the two gateways, pings across every one, then reconciles a state
// without them: every unit, SA and policy goes, and nothing else does.
func TestVMManyTunnelsUpAndDown(t *testing.T) {
	const n = 200
	a, b := newVMPair(t)
	addr := func(unit, host int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(150 + unit/64), byte(unit % 64 * 4), byte(host)}), 30)
	}
	base := map[*vmSite]State{}
	for _, x := range []struct {
		s    *vmSite
		host int
	}{{a, 1}, {b, 2}} {
		base[x.s] = State{Addresses: x.s.state.Addresses}
		st := State{Addresses: x.s.state.Addresses}
		for u := 0; u < n; u++ {
			p := addr(u, x.host)
			st.Tunnels = append(st.Tunnels, Tunnel{Unit: u, Underlay: "wan0", IPv4: netip.PrefixFrom(p.Addr(), 30)})
		}
		x.s.state = st
		x.s.reconcile(t)
	}
	for u := 0; u < n; u++ {
		pa, pb := saPairOn(t, a, b, gcm256, u)
		install(t, a, pa)
		install(t, b, pb)
	}
	for u := 0; u < n; u++ {
		st, err := lab.Ping(a.ns, addr(u, 2).Addr(), 1, 10*time.Millisecond, 3*time.Second)
		if err != nil || st.Received != 1 {
			t.Fatalf("ping across st0.%d: %v (%s)", u, err, st)
		}
	}
	for _, s := range []*vmSite{a, b} {
		if sas, _ := s.r.InstalledSAs(); len(sas) != 2*n {
			t.Fatalf("site %s: %d SAs, want %d", s.name, len(sas), 2*n)
		}
		if ch := s.reconcile(t); len(ch) != 0 {
			t.Errorf("site %s: reconcile with %d tunnels up changed %q", s.name, n, strs(ch))
		}
	}
	// A commit without the tunnels.
	for _, s := range []*vmSite{a, b} {
		s.state = base[s]
		ch := s.reconcile(t)
		if want := n * (1 + 6 + 2); len(ch) != want { // link, six policies, two SAs per unit
			t.Errorf("site %s: %d changes, want %d", s.name, len(ch), want)
		}
		if us, _ := s.r.Units(); len(us) != 0 {
			t.Errorf("site %s: %d units left", s.name, len(us))
		}
		sas, pols, err := s.r.observeXfrm()
		if err != nil || len(sas) != 0 || len(pols) != 0 {
			t.Errorf("site %s: %d SAs and %d policies left, %v", s.name, len(sas), len(pols), err)
		}
		if _, err := s.h.LinkByName("wan0"); err != nil {
			t.Errorf("site %s: wan0: %v", s.name, err)
		}
	}
	pingOK(t, a, b.wan)
}
