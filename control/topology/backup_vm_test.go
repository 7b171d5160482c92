package topology

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

// serviceDev returns the interface SRX1 routes ServiceAddr through.
func serviceDev(t *testing.T, r *labrun.Run) string {
	t.Helper()
	h, err := r.Lab().Handle(lab.SRX1)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routes, err := h.RouteGet(ServiceAddr.AsSlice())
	if err != nil || len(routes) == 0 {
		return "none"
	}
	l, err := h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "?"
	}
	return l.Attrs().Name
}

// waitService waits until Host1 reaches ServiceAddr through SRX1's dev.
func waitService(t *testing.T, r *labrun.Run, dev string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ns, err := netns.GetFromName(r.Lab().Namespace(lab.Host1))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	last := ""
	for {
		got := serviceDev(t, r)
		if got == dev {
			st, err := lab.Ping(ns, ServiceAddr, 2, 100*time.Millisecond, 2*time.Second)
			if err == nil && st.Received == 2 {
				return time.Since(start)
			}
			got += " (no echo reply)"
		}
		if got != last {
			t.Logf("[%5.1fs] srx1 routes %s via %s", time.Since(start).Seconds(), ServiceAddr, got)
			last = got
		}
		if time.Now().After(start.Add(timeout)) {
			t.Fatalf("host1 → %s not through %s after %v (srx1: %s)", ServiceAddr, dev, timeout, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestVMPrimaryBackup: SRX1 has the reference VPN to SRX2 on st0.0
// (primary) and a VPN to SRX3 on st0.1 (backup), the service prefix routed
// through st0.0 and `qualified-next-hop st0.1 preference 10`, DPD every 2 s.
// Cutting SRX2 off the Internet makes DPD take the primary down, the route
// is withdrawn and traffic moves to the backup; reconnecting SRX2 brings the
// primary back and traffic returns to it.
func TestVMPrimaryBackup(t *testing.T) {
	vm.RequireKernelIPsec(t)
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, false)
	ctx := context.Background()
	if err := r.Up(ctx, true); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { RemoveSite(r.Lab(), BackupSite) })
	if err := AddSite(r.Lab(), BackupSite); err != nil {
		t.Fatal(err)
	}
	// SRX2 and SRX3 both own the service address.
	for _, node := range []string{lab.SRX2, SRX3} {
		ns, err := netns.GetFromName(r.Lab().Namespace(node))
		if err != nil {
			t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		lo, _ := h.LinkByName("lo")
		err = h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: ServiceAddr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		h.Close()
		if err != nil {
			t.Fatalf("%s: service address: %v", node, err)
		}
	}
	conf3, err := BackupConfig(SRX3)
	if err != nil {
		t.Fatal(err)
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
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("srx1 routes: %s", op(t, r, lab.SRX1, "show", "route"))
		}
	})
	for _, gw := range []string{lab.SRX2, lab.SRX1} {
		text, err := BackupConfig(gw)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, r, gw, text)
	}
	// Both VPNs up on SRX1; the service goes through the primary.
	deadline := time.Now().Add(90 * time.Second)
	for {
		up, total, err := upCount(ctx, r, lab.SRX1)
		if err == nil && up == 2 && total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("srx1: %d of %d tunnels up (%v)", up, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitService(t, r, "st0.0", 30*time.Second)

	inet, err := r.Lab().Handle(lab.Internet)
	if err != nil {
		t.Fatal(err)
	}
	defer inet.Close()
	toSRX2, err := inet.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	// DPD declares the peer dead after about interval × (threshold+1); the
	// wait allows twice that plus a probe's retransmission slack.
	window := time.Duration(2*DPDInterval*(DPDThreshold+1)+5) * time.Second

	t.Run("failover", func(t *testing.T) {
		if err := inet.LinkSetDown(toSRX2); err != nil {
			t.Fatal(err)
		}
		took := waitService(t, r, "st0.1", window)
		t.Logf("traffic on the backup %.1fs after SRX2 was cut off (DPD %d s × %d)", took.Seconds(), DPDInterval, DPDThreshold)
	})
	t.Run("failback", func(t *testing.T) {
		if err := inet.LinkSetUp(toSRX2); err != nil {
			t.Fatal(err)
		}
		// The primary comes back by the gateways' retry back-off (≤ 60 s).
		took := waitService(t, r, "st0.0", 120*time.Second)
		t.Logf("traffic back on the primary %.1fs after SRX2 was reconnected", took.Seconds())
	})
}
