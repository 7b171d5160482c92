package topology

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

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

// pingUntil pings dst from node until all of count are answered or timeout.
func pingUntil(t *testing.T, r *labrun.Run, node string, dst netip.Addr, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := r.PingFrom(context.Background(), node, dst, 3)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s → %s: %v", node, dst, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestVMHubAndSpoke: SRX1 is a hub with one multipoint st0.0 and two VPNs
// bound to it (SRX2 and SRX3 as spokes), each chosen by its
// next-hop-tunnel address. Hub ↔ spoke traffic and spoke ↔ spoke traffic
// (hairpinning through the hub) pass, each spoke's prefix through its own
// tunnel.
//
// On kernels with collect_md xfrm interfaces and on 6.1 alike, the daemon
// gives each VPN of the multipoint unit its own hidden xfrm interface
// (st0.0.pK) with its own if_id.
func TestVMHubAndSpoke(t *testing.T) {
	vm.RequireKernelIPsec(t)
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, false)
	ctx := context.Background()
	if err := r.Up(ctx, false); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { RemoveSite(r.Lab(), BackupSite) })
	if err := AddSite(r.Lab(), BackupSite); err != nil {
		t.Fatal(err)
	}
	ns3, err := netns.GetFromName(BackupSite.Namespace(r.Lab()))
	if err != nil {
		t.Fatal(err)
	}
	h3, err := netlink.NewHandleAt(ns3)
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := h3.LinkByName("lo")
	err = h3.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: Spoke3Addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	h3.Close()
	if err != nil {
		t.Fatal(err)
	}
	conf3, err := HubConfig(SRX3)
	if err != nil {
		t.Fatal(err)
	}
	d3, err := StartDaemon(ctx, ns3, filepath.Join(t.TempDir(), SRX3), "", []string{daemonEnv + "=1"}, conf3)
	ns3.Close()
	if err != nil {
		t.Fatalf("srx3: %v", err)
	}
	t.Cleanup(d3.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub routes:\n%s", op(t, r, lab.SRX1, "show", "route"))
			t.Logf("hub st0:\n%s", op(t, r, lab.SRX1, "show", "interfaces", "st0"))
		}
	})
	for _, gw := range []string{lab.SRX2, lab.SRX1} {
		text, err := HubConfig(gw)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, r, gw, text)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		up, total, err := upCount(ctx, r, lab.SRX1)
		if err == nil && up == 2 && total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub: %d of %d tunnels up (%v)", up, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("hub-to-spokes", func(t *testing.T) {
		pingUntil(t, r, lab.Host1, labrun.Host2Addr, 30*time.Second)
		pingUntil(t, r, lab.Host1, Spoke3Addr, 30*time.Second)
	})
	t.Run("spoke-to-hub", func(t *testing.T) {
		pingUntil(t, r, lab.Host2, labrun.Host1Addr, 30*time.Second)
	})
	t.Run("spoke-to-spoke", func(t *testing.T) {
		pingUntil(t, r, lab.Host2, Spoke3Addr, 30*time.Second)
	})
	t.Run("tunnel-by-next-hop", func(t *testing.T) {
		d2 := routeDev(t, r, lab.SRX1, labrun.Host2Addr)
		d3 := routeDev(t, r, lab.SRX1, Spoke3Addr)
		t.Logf("hub routes %s via %s, %s via %s", labrun.Host2Addr, d2, Spoke3Addr, d3)
		if d2 == d3 || !strings.HasPrefix(d2, "st0.0") || !strings.HasPrefix(d3, "st0.0") {
			t.Errorf("hub routes both spokes' prefixes through %s and %s: want two tunnels of st0.0", d2, d3)
		}
		out := op(t, r, lab.SRX1, "show", "interfaces", "st0", "terse")
		t.Logf("hub> show interfaces st0 terse\n%s", out)
		if !strings.Contains(out, "st0.0") {
			t.Errorf("show interfaces st0 terse lacks st0.0")
		}
	})
}
