package topology

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

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
		got := routeDev(t, r, lab.SRX1, ServiceAddr)
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
	conf3, err := BackupConfig(SRX3)
	if err != nil {
		t.Fatal(err)
	}
	// SRX2 and SRX3 both own the service address.
	startSRX3(t, ctx, r, conf3, ServiceAddr, lab.SRX2, SRX3)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("srx1 routes: %s", op(t, r, lab.SRX1, "show", "route"))
		}
	})
	commitLab(t, r, BackupConfig)
	// Both VPNs up on SRX1; the service goes through the primary.
	waitAllUp(t, ctx, r, lab.SRX1, 2, 90*time.Second)
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
