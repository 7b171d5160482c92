package kernel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newAnonNetns returns an anonymous network namespace and a netlink handle
// in it, both closed when the test ends.
func newAnonNetns(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	ns, err := lab.NewAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

// newTestNetns creates an anonymous network namespace that disappears when
// the test ends, with lo up and a veth pair veth0/veth1 (both ends inside).
func newTestNetns(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	ns, h := newAnonNetns(t)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"lo", "veth0", "veth1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return ns, h
}

func newReconcilerIn(t *testing.T, ns netns.NsHandle) *Reconciler {
	t.Helper()
	r, err := New(Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newHostReconciler(t *testing.T) *Reconciler {
	ns, _ := newTestNetns(t)
	return newReconcilerIn(t, ns)
}

func mustReconcile(t *testing.T, r *Reconciler, s State) []Change {
	t.Helper()
	ch, err := r.Reconcile(context.Background(), s)
	if err != nil {
		t.Fatalf("reconcile: %v (changes %q)", err, strs(ch))
	}
	return ch
}

// kernelRoutes returns the main-table routes to dst, by metric.
func kernelRoutes(t *testing.T, h *netlink.Handle, dst string) map[int]netlink.Route {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: prefixToIPNet(pfx(dst)), Table: mainTable},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]netlink.Route{}
	for _, r := range rs {
		out[r.Priority] = r
	}
	return out
}

func hostState() State {
	return State{
		Addresses: []Address{
			{Link: "veth0", Prefix: pfx("10.0.0.1/24")},
			{Link: "veth0", Prefix: pfx("fd00:a::1/64")},
		},
		Routes: []Route{
			{Dst: pfx("192.0.2.0/24"), Gateway: ip("10.0.0.2"), Metric: 5},
			{Dst: pfx("192.0.2.0/24"), Gateway: ip("10.0.0.3"), Metric: 10},
			{Dst: pfx("198.18.0.0/15"), Dev: "veth0", Metric: 5},
		},
	}
}

func TestHostRoutesOwnership(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	veth0, _ := h.LinkByName("veth0")
	if err := h.AddrAdd(veth0, &netlink.Addr{IPNet: prefixToIPNet(pfx("10.0.0.254/24"))}); err != nil {
		t.Fatal(err)
	}
	// Foreign routes: one elsewhere, one on a key bpfvpn wants.
	foreign := &netlink.Route{Dst: prefixToIPNet(pfx("203.0.113.0/24")), Gw: net.ParseIP("10.0.0.9"), Protocol: unix.RTPROT_STATIC}
	collide := &netlink.Route{Dst: prefixToIPNet(pfx("198.18.0.0/15")), Gw: net.ParseIP("10.0.0.9"), Priority: 5, Protocol: unix.RTPROT_STATIC}
	for _, fr := range []*netlink.Route{foreign, collide} {
		if err := h.RouteAdd(fr); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := r.Reconcile(context.Background(), hostState())
	if err == nil || !errors.Is(err, unix.EEXIST) {
		t.Fatalf("reconcile over a foreign route: err = %v, want EEXIST", err)
	}
	if len(ch) != 4 { // two addresses, two routes
		t.Errorf("changes %q, want 2 addresses and 2 routes", strs(ch))
	}
	got := kernelRoutes(t, h, "192.0.2.0/24")
	if len(got) != 2 || got[5].Protocol != RouteProtocol || got[10].Protocol != RouteProtocol ||
		!got[5].Gw.Equal(net.ParseIP("10.0.0.2")) || !got[10].Gw.Equal(net.ParseIP("10.0.0.3")) {
		t.Errorf("primary/backup routes %+v", got)
	}
	if c := kernelRoutes(t, h, "198.18.0.0/15")[5]; c.Protocol != unix.RTPROT_STATIC || !c.Gw.Equal(net.ParseIP("10.0.0.9")) {
		t.Errorf("foreign colliding route changed: %+v", c)
	}

	// Without the collision (and with a device route), converged; then
	// everything removed.
	s := hostState()
	s.Routes[2].Dst = pfx("198.19.0.0/16")
	mustReconcile(t, r, s)
	if c := kernelRoutes(t, h, "198.19.0.0/16")[5]; c.Protocol != RouteProtocol || c.Scope != netlink.SCOPE_LINK {
		t.Errorf("device route %+v", c)
	}
	if ch := mustReconcile(t, r, s); len(ch) != 0 {
		t.Errorf("second reconcile changed %q", strs(ch))
	}
	mustReconcile(t, r, State{})
	for _, d := range []string{"192.0.2.0/24", "198.19.0.0/16"} {
		if got := kernelRoutes(t, h, d); len(got) != 0 {
			t.Errorf("bpfvpn routes left: %+v", got)
		}
	}
	if len(kernelRoutes(t, h, "203.0.113.0/24")) != 1 || len(kernelRoutes(t, h, "198.18.0.0/15")) != 1 {
		t.Error("a foreign route was removed")
	}
}

func TestHostAddressOwnership(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	veth0, _ := h.LinkByName("veth0")
	foreign := pfx("10.0.0.9/24")
	if err := h.AddrAdd(veth0, &netlink.Addr{IPNet: prefixToIPNet(foreign)}); err != nil {
		t.Fatal(err)
	}
	s := State{Addresses: []Address{
		{Link: "veth0", Prefix: pfx("10.0.0.1/24")},
		{Link: "veth0", Prefix: pfx("fd00:a::1/64")},
		{Link: "veth0", Prefix: foreign}, // listed, but already there: stays foreign
	}}
	ch := mustReconcile(t, r, s)
	if len(ch) != 2 {
		t.Errorf("changes %q, want two address adds", strs(ch))
	}
	protos := addrProtos(t, r, veth0.Attrs().Index)
	if protos[pfx("10.0.0.1/24")] != 246 || protos[pfx("fd00:a::1/64")] != 246 || protos[foreign] != 0 {
		t.Errorf("address protocols %v", protos)
	}
	// A second reconciler (a restarted daemon) adopts them.
	r2 := newReconcilerIn(t, ns)
	if ch := mustReconcile(t, r2, s); len(ch) != 0 {
		t.Errorf("second reconciler changed %q", strs(ch))
	}
	// Unlisted: bpfvpn's go, the foreign one stays even though it was listed.
	mustReconcile(t, r2, State{})
	protos = addrProtos(t, r, veth0.Attrs().Index)
	if _, ok := protos[pfx("10.0.0.1/24")]; ok {
		t.Error("bpfvpn's IPv4 address survived")
	}
	if _, ok := protos[pfx("fd00:a::1/64")]; ok {
		t.Error("bpfvpn's IPv6 address survived")
	}
	if _, ok := protos[foreign]; !ok {
		t.Error("the foreign address was removed")
	}
	// A desired address on a missing link is an error naming the link.
	_, err := r.Reconcile(context.Background(), State{Addresses: []Address{{Link: "nosuch0", Prefix: pfx("10.1.0.1/24")}}})
	if err == nil {
		t.Error("address on a missing link: no error")
	}
}

func addrProtos(t *testing.T, r *Reconciler, index int) map[netip.Prefix]uint8 {
	t.Helper()
	as, err := r.addrDump()
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Prefix]uint8{}
	for _, a := range as {
		if a.LinkIndex == index && !a.Prefix.Addr().IsLinkLocalUnicast() {
			out[a.Prefix] = a.Proto
		}
	}
	return out
}

func TestHostSecondReconcilerChangesNothing(t *testing.T) {
	ns, _ := newTestNetns(t)
	r1 := newReconcilerIn(t, ns)
	if ch := mustReconcile(t, r1, hostState()); len(ch) != 5 {
		t.Errorf("first reconcile: %q", strs(ch))
	}
	r2 := newReconcilerIn(t, ns)
	if ch, err := r2.Plan(hostState()); err != nil || len(ch) != 0 {
		t.Errorf("second reconciler plans %q, %v", strs(ch), err)
	}
	if ch := mustReconcile(t, r2, hostState()); len(ch) != 0 {
		t.Errorf("second reconciler changed %q", strs(ch))
	}
}

// TestHostPolicyOwnership installs a unit's XFRM policies (the host kernel
// has XFRM policies but no ESP) next to foreign policies with the same
// selectors, then drops the unit: only bpfvpn's policies go.
func TestHostPolicyOwnership(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	c := testSA()
	c.Unit = 4
	foreignTmpl := []netlink.XfrmPolicyTmpl{{Src: net.ParseIP("1.1.1.1"), Dst: net.ParseIP("2.2.2.2"),
		Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 7}}
	foreign := []*netlink.XfrmPolicy{
		{Src: prefixToIPNet(pfx("0.0.0.0/0")), Dst: prefixToIPNet(pfx("0.0.0.0/0")), Dir: netlink.XFRM_DIR_OUT, Tmpls: foreignTmpl},
		// Same if_id as unit 4 but another reqid: still not bpfvpn's.
		{Src: prefixToIPNet(pfx("10.0.0.0/8")), Dst: prefixToIPNet(pfx("10.0.0.0/8")), Dir: netlink.XFRM_DIR_OUT, Ifid: int(IfID(4)), Tmpls: foreignTmpl},
	}
	for _, p := range foreign {
		if err := h.XfrmPolicyAdd(p); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	ch, err := r.ensurePolicies(c)
	r.mu.Unlock()
	if err != nil || len(ch) != 6 {
		t.Fatalf("ensurePolicies: %q, %v", strs(ch), err)
	}
	r.mu.Lock()
	ch, err = r.ensurePolicies(c)
	r.mu.Unlock()
	if err != nil || len(ch) != 0 {
		t.Fatalf("second ensurePolicies: %q, %v", strs(ch), err)
	}
	// A second reconciler sees unit 4's policies as bpfvpn's.
	r2 := newReconcilerIn(t, ns)
	_, pols, err := r2.observeXfrm()
	if err != nil || len(pols) != 6 {
		t.Fatalf("observed %d own policies, %v", len(pols), err)
	}
	// Unit 4 is not in the desired state: its policies are removed.
	ch = mustReconcile(t, r2, State{})
	if len(ch) != 6 {
		t.Errorf("changes %q, want six policy deletions", strs(ch))
	}
	all, err := h.XfrmPolicyList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("%d policies left, want the 2 foreign ones: %v", len(all), all)
	}
}

func TestHostKernelRoutesView(t *testing.T) {
	ns, _ := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	mustReconcile(t, r, hostState())
	rs, err := r.KernelRoutes()
	if err != nil {
		t.Fatal(err)
	}
	var owned, local, direct int
	for _, x := range rs {
		switch {
		case x.Owned:
			owned++
			if x.Protocol != int(RouteProtocol) || x.Dst.Bits() == 32 {
				t.Errorf("owned route %+v", x)
			}
		case x.Local && x.Dst == pfx("10.0.0.1/32"):
			local++
		case x.Dst == pfx("10.0.0.0/24") && x.Dev == "veth0" && x.Protocol == unix.RTPROT_KERNEL:
			direct++
		}
	}
	if owned != 3 || local != 1 || direct != 1 {
		t.Errorf("owned %d, local %d, direct %d in %+v", owned, local, direct, rs)
	}
	if us, err := r.Units(); err != nil || len(us) != 0 {
		t.Errorf("units on a host without st0: %+v, %v", us, err)
	}
}

// TestHostForeignLinkNamedLikeUnit: a link named st0.7 that is not an xfrm
// interface is not bpfvpn's and survives a reconcile without unit 7.
func TestHostForeignLinkNamedLikeUnit(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "st0.7"}, PeerName: "peer7"}); err != nil {
		t.Fatal(err)
	}
	l, _ := h.LinkByName("st0.7")
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(pfx("10.7.0.1/24"))}); err != nil {
		t.Fatal(err)
	}
	if ch := mustReconcile(t, r, State{}); len(ch) != 0 {
		t.Errorf("changes %q", strs(ch))
	}
	if _, err := h.LinkByName("st0.7"); err != nil {
		t.Errorf("foreign st0.7 removed: %v", err)
	}
	if _, ok := addrProtos(t, r, l.Attrs().Index)[pfx("10.7.0.1/24")]; !ok {
		t.Error("the foreign link's address was removed")
	}
	// Unit 7 wanted: the foreign link is in the way, reported, untouched.
	_, err := r.Reconcile(context.Background(), State{Tunnels: []Tunnel{{Unit: 7, IPv4: pfx("10.7.0.9/24")}}})
	if err == nil || !strings.Contains(err.Error(), "not bpfvpn's") {
		t.Errorf("reconcile with st0.7 in the way: %v", err)
	}
	l2, err := h.LinkByName("st0.7")
	if err != nil || l2.Attrs().Index != l.Attrs().Index {
		t.Errorf("foreign st0.7 replaced: %v", err)
	}
	if _, ok := addrProtos(t, r, l.Attrs().Index)[pfx("10.7.0.9/24")]; ok {
		t.Error("the unit's address was put on the foreign link")
	}
}
