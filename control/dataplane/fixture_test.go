package dataplane_test

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/dataplane"
	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("BPF_PROG_TEST_RUN and network namespaces need root")
	}
}

func randSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// progFixture is a private network namespace whose interfaces and routes
// give bpf_fib_lookup real answers, plus loaded (unpinned) programs.
//
//	trust0 10.1.0.1/24 2001:db8:1::1/64   (peer trustp), neighbour 10.1.0.2
//	untr0  10.2.0.1/24 2001:db8:2::1/64   (peer untrp), neighbour 10.2.0.2
//	trust0 VLAN 100: 10.4.0.1/24 (zone dmz; tagged frames, no VLAN device)
//	st0x (veth standing in for st0, tunnel) 10.9.0.1/30; 10.3.0.0/24 and
//	2001:db8:3::/64 routed there
type progFixture struct {
	ns   netns.NsHandle
	objs *loader.Objects
	m    *maps.Set
	idx  map[string]uint32
	mac  map[string]net.HardwareAddr
}

var (
	neighMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x22}
	neighMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
)

func newProgFixture(t testing.TB) *progFixture {
	requireRoot(t)
	f := &progFixture{idx: map[string]uint32{}, mac: map[string]net.HardwareAddr{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	defer netns.Set(orig)
	f.ns = ns
	t.Cleanup(func() { ns.Close() })

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lo, _ := netlink.LinkByName("lo")
	must(netlink.LinkSetUp(lo))
	// The host kernel has veth only (no dummy, VLAN or xfrm devices).
	for _, p := range [][2]string{{"trust0", "trustp"}, {"untr0", "untrp"}, {"st0x", "st0p"}, {"lan9", "lan9p"}} {
		must(netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p[0]}, PeerName: p[1]}))
	}
	addrs := map[string][]string{
		"trust0": {"10.1.0.1/24", "2001:db8:1::1/64", "10.4.0.1/24"},
		"untr0":  {"10.2.0.1/24", "2001:db8:2::1/64"},
		"st0x":   {"10.9.0.1/30"},
		"lan9":   {"192.0.2.254/24"}, // in no zone
	}
	for _, n := range []string{"trust0", "trustp", "untr0", "untrp", "st0x", "st0p", "lan9", "lan9p"} {
		l, err := netlink.LinkByName(n)
		must(err)
		for _, a := range addrs[n] {
			ad, _ := netlink.ParseAddr(a)
			ad.Flags = 0x80 // IFA_F_NODAD
			must(netlink.AddrAdd(l, ad))
		}
		must(netlink.LinkSetUp(l))
		f.idx[n] = uint32(l.Attrs().Index)
		f.mac[n] = l.Attrs().HardwareAddr
	}
	st0, _ := netlink.LinkByName("st0x")
	for _, r := range []string{"10.3.0.0/24", "2001:db8:3::/64"} {
		_, dst, _ := net.ParseCIDR(r)
		must(netlink.RouteAdd(&netlink.Route{LinkIndex: st0.Attrs().Index, Dst: dst}))
	}
	for _, n := range []struct {
		link string
		ip   string
		mac  net.HardwareAddr
	}{{"untr0", "10.2.0.2", neighMAC}, {"untr0", "2001:db8:2::2", neighMAC}, {"trust0", "10.1.0.2", neighMAC1}, {"trust0", "2001:db8:1::2", neighMAC1}, {"lan9", "192.0.2.1", neighMAC}} {
		fam := netlink.FAMILY_V4
		if net.ParseIP(n.ip).To4() == nil {
			fam = netlink.FAMILY_V6
		}
		must(netlink.NeighAdd(&netlink.Neigh{LinkIndex: int(f.idx[n.link]), Family: fam, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP(n.ip), HardwareAddr: n.mac}))
	}
	os.WriteFile("/proc/sys/net/ipv4/conf/all/forwarding", []byte("1"), 0)
	os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0)

	f.objs = sharedObjects(t)
	f.m = maps.FromObjects(f.objs)
	for _, m := range []*ebpf.Map{f.m.Sessions, f.m.Frags, f.m.IKELimit, f.m.ESPSPIs} {
		keys, err := maps.Keys[[]byte](m)
		if err != nil {
			t.Fatal(err)
		}
		if err := maps.DeleteKeys(m, keys); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.InvalidateFlowCache(); err != nil {
		t.Fatal(err)
	}
	return f
}

// The programs are loaded once per test binary: the verifier takes seconds
// on a busy machine. Each fixture clears the state tables.
var (
	sharedOnce sync.Once
	sharedObjs *loader.Objects
	sharedErr  error
)

func sharedObjects(t testing.TB) *loader.Objects {
	t.Helper()
	sharedOnce.Do(func() { sharedObjs, sharedErr = loader.Load(loader.Options{}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedObjs
}

// in runs fn on a thread inside the fixture's namespace.
func (f *progFixture) in(t testing.TB, fn func()) {
	t.Helper()
	inNS(t, f.ns, fn)
}

func (f *progFixture) apply(t testing.TB, spec *dataplane.Spec) *dataplane.Compiled {
	t.Helper()
	var c *dataplane.Compiled
	var err error
	f.in(t, func() { c, err = dataplane.Apply(f.m, spec, nil) })
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return c
}

// XDP and tc return codes.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
	tcOK        = 0
	tcShot      = 2
	tcRedirect  = 7
)

type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// runXDP runs xdp_zone on pkt as if received on ifname.
func (f *progFixture) runXDP(t testing.TB, ifname string, pkt []byte) (uint32, []byte) {
	t.Helper()
	var ret uint32
	out := make([]byte, len(pkt)+512)
	var err error
	f.in(t, func() {
		ret, err = f.objs.XdpZone.Run(&ebpf.RunOptions{Data: pkt, DataOut: out,
			Context: xdpMD{DataEnd: uint32(len(pkt)), IngressIfindex: f.idx[ifname]}})
	})
	if err != nil {
		t.Fatalf("run xdp_zone: %v", err)
	}
	return ret, out
}

// runTC runs a tc program on pkt on ifname.
func (f *progFixture) runTC(t *testing.T, prog *ebpf.Program, ifname string, pkt []byte) (uint32, []byte) {
	t.Helper()
	var skb [192]byte
	binary.NativeEndian.PutUint32(skb[40:], f.idx[ifname]) // __sk_buff.ifindex
	var ret uint32
	out := make([]byte, len(pkt)+512)
	var err error
	f.in(t, func() {
		ret, err = prog.Run(&ebpf.RunOptions{Data: pkt, DataOut: out, Context: skb[:]})
	})
	if err != nil {
		t.Fatalf("run %v: %v", prog, err)
	}
	return ret, out
}

func (f *progFixture) counter(t *testing.T, id maps.CounterID) uint64 {
	t.Helper()
	c, err := f.m.ReadCounters()
	if err != nil {
		t.Fatal(err)
	}
	return c[id]
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
