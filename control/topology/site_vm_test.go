package topology

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// startSRX3 attaches SRX3 (BackupSite) to r's Internet node, puts addr/32
// on the lo of each of nodes (SRX3 included or not) and starts SRX3's
// daemon with conf3. The site and the daemon go away when the test ends.
func startSRX3(t *testing.T, ctx context.Context, r *labrun.Run, conf3 string, addr netip.Addr, nodes ...string) {
	t.Helper()
	t.Cleanup(func() { RemoveSite(r.Lab(), BackupSite) })
	if err := AddSite(r.Lab(), BackupSite); err != nil {
		t.Fatal(err)
	}
	for _, node := range nodes {
		h, err := r.Lab().Handle(node)
		if err != nil {
			t.Fatal(err)
		}
		lo, _ := h.LinkByName("lo")
		err = h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		h.Close()
		if err != nil {
			t.Fatalf("%s: address %s on lo: %v", node, addr, err)
		}
	}
	ns3, err := netns.GetFromName(BackupSite.Namespace(r.Lab()))
	if err != nil {
		t.Fatal(err)
	}
	d3, err := StartDaemon(ctx, ns3, filepath.Join(t.TempDir(), SRX3), "", []string{daemonEnv + "=1"}, conf3)
	ns3.Close()
	if err != nil {
		t.Fatalf("srx3: %v", err)
	}
	t.Cleanup(d3.Stop)
}

// commitLab commits configOf(gw) on SRX2, then on SRX1.
func commitLab(t *testing.T, r *labrun.Run, configOf func(gw string) (string, error)) {
	t.Helper()
	for _, gw := range []string{lab.SRX2, lab.SRX1} {
		text, err := configOf(gw)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, r, gw, text)
	}
}

// routeDev returns the interface node routes dst through.
func routeDev(t *testing.T, r *labrun.Run, node string, dst netip.Addr) string {
	t.Helper()
	h, err := r.Lab().Handle(node)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routes, err := h.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return "none"
	}
	l, err := h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "?"
	}
	return l.Attrs().Name
}
