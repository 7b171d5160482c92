package lab

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

// testLab returns a lab with a unique prefix whose namespaces are deleted
// when the test ends, whatever happens.
func testLab(t *testing.T) *Lab {
	t.Helper()
	requireRoot(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := New("ktlab" + hex.EncodeToString(b[:]) + "-")
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l
}

func pingFrom(t *testing.T, l *Lab, node string, dst string) {
	t.Helper()
	ns, err := netns.GetFromName(l.Namespace(node))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	st, err := Ping(ns, netip.MustParseAddr(dst), 3, 20*time.Millisecond, 2*time.Second)
	if err != nil || st.Received != st.Sent {
		t.Errorf("ping %s -> %s: %v (%s)", node, dst, err, st)
	}
}

func TestLabUpPingDown(t *testing.T) {
	l := testLab(t)
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	if err := l.Up(); err != nil {
		t.Fatalf("second Up (idempotence): %v", err)
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !Complete(st) {
		t.Fatalf("status after Up is not complete: %+v", st)
	}
	for _, w := range Wires {
		pingFrom(t, l, w.A.Node, w.B.Address.Addr().String())
		pingFrom(t, l, w.B.Node, w.A.Address.Addr().String())
	}
	// Forwarding through the internet node: SRX1's WAN reaches SRX2's WAN
	// once SRX1 has a route (the gateways' routes come from their config).
	h, err := l.Handle(SRX1)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.RouteAdd(&netlink.Route{Dst: prefixToIPNet(netip.MustParsePrefix("172.16.23.0/24")), Gw: netip.MustParseAddr("172.16.13.2").AsSlice()}); err != nil {
		t.Fatal(err)
	}
	h2, err := l.Handle(SRX2)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if err := h2.RouteAdd(&netlink.Route{Dst: prefixToIPNet(netip.MustParsePrefix("172.16.13.0/24")), Gw: netip.MustParseAddr("172.16.23.2").AsSlice()}); err != nil {
		t.Fatal(err)
	}
	pingFrom(t, l, SRX1, "172.16.23.1")

	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	for _, node := range Nodes {
		if NamedExists(l.Namespace(node)) {
			t.Errorf("namespace %s survived Down", l.Namespace(node))
		}
	}
	if err := l.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// TestLabRecoversFromPartialUp leaves a lab half built (two namespaces, one
// wire missing its peer) and checks that Up completes it and Down removes it.
func TestLabRecoversFromPartialUp(t *testing.T) {
	l := testLab(t)
	ns, _, err := OpenNamed(l.Namespace(Host1))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A lone veth named like the wire's end, its peer in the same namespace.
	err = h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "stray0"})
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	pingFrom(t, l, Host1, "10.100.11.1")

	// Partial teardown by hand, then Down finishes it.
	if err := DeleteNamed(l.Namespace(Internet)); err != nil {
		t.Fatal(err)
	}
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	for _, node := range Nodes {
		if NamedExists(l.Namespace(node)) {
			t.Errorf("namespace %s survived Down", l.Namespace(node))
		}
	}
}

func TestLabUnaddressedGateways(t *testing.T) {
	l := testLab(t)
	l.UnaddressedGateways = true
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st {
		for _, ls := range n.Links {
			if IsGateway(n.Node) && len(ls.Addresses) != 0 {
				t.Errorf("%s:%s has addresses %v", n.Node, ls.Name, ls.Addresses)
			}
			if !IsGateway(n.Node) && len(ls.Addresses) != 1 {
				t.Errorf("%s:%s has addresses %v, want one", n.Node, ls.Name, ls.Addresses)
			}
		}
	}
}

func TestLabRejectsBadPrefix(t *testing.T) {
	if err := (&Lab{Prefix: ""}).Up(); err == nil {
		t.Error("empty prefix accepted")
	}
	if err := (&Lab{Prefix: "../x"}).Down(); err == nil {
		t.Error("prefix with a slash accepted")
	}
}

// TestLabExecEntersNode checks that Exec runs inside the node's namespace
// (it sees the node's links) and leaves the caller's namespace alone.
func TestLabExecEntersNode(t *testing.T) {
	l := testLab(t)
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	var devs string
	err = l.Exec(SRX1, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/dev")
		devs = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(devs, "eth0:") || !strings.Contains(devs, "eth1:") {
		t.Errorf("Exec(srx1) saw\n%s", devs)
	}
	host, err := os.ReadFile("/proc/thread-self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	if string(host) == devs {
		t.Error("the caller's thread sees the node's links")
	}
	if err := l.Exec("nosuchnode", func() error { return nil }); err == nil {
		t.Error("Exec on a missing node succeeded")
	}
}
