package topology

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

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

// onTraffic turns every VPN of a configuration to establish-tunnels
// on-traffic.
func onTraffic(text string, vpns ...string) string {
	for _, v := range vpns {
		text += "set security ipsec vpn " + v + " establish-tunnels on-traffic\n"
	}
	return text
}

// startHub brings up the hub-and-spoke topology (the lab with the data
// plane, plus SRX3) and commits the hub configurations; with onTraffic
// every VPN is established on traffic.
func startHub(t *testing.T, ctx context.Context, on bool) *labrun.Run {
	t.Helper()
	// With the data plane: zone policies (vpn -> vpn for the hairpin)
	// apply, and on 6.2+ it steers the collect_md st0.0.
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, true)
	if err := r.Up(ctx, false); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	conf3, err := HubConfig(SRX3)
	if err != nil {
		t.Fatal(err)
	}
	if on {
		conf3 = onTraffic(conf3, "VPN-to-SRX1")
	}
	startSRX3(t, ctx, r, conf3, Spoke3Addr, SRX3)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub routes:\n%s", op(t, r, lab.SRX1, "show", "route"))
			t.Logf("hub st0:\n%s", op(t, r, lab.SRX1, "show", "interfaces", "st0"))
		}
	})
	commitLab(t, r, func(gw string) (string, error) {
		text, err := HubConfig(gw)
		if on && gw == lab.SRX2 {
			text = onTraffic(text, "VPN-to-Host1")
		}
		if on && gw == lab.SRX1 {
			text = onTraffic(text, "VPN-to-Host2", "VPN-to-SRX3")
		}
		return text, err
	})
	return r
}

// TestVMHubAndSpoke: SRX1 is a hub with one multipoint st0.0 and two VPNs
// bound to it (SRX2 and SRX3 as spokes), each chosen by its
// next-hop-tunnel address. Hub ↔ spoke traffic and spoke ↔ spoke traffic
// (hairpinning through the hub under a vpn -> vpn policy) pass, each
// spoke's traffic through its own SA pair. On 6.1 each VPN of st0.0 has a
// hidden xfrm interface (st0.0.pK); on 6.2+ st0.0 is one collect_md xfrm
// interface and BPF picks the tunnel by next hop.
func TestVMHubAndSpoke(t *testing.T) {
	vm.RequireKernelIPsec(t)
	ctx := context.Background()
	r := startHub(t, ctx, false)
	waitAllUp(t, ctx, r, lab.SRX1, 2, 90*time.Second)

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
	t.Run("spoke-to-spoke-needs-vpn-to-vpn-policy", func(t *testing.T) {
		// Without the vpn -> vpn policy the hub drops the hairpin (a new
		// flow: every ping run opens its own ICMP id); spoke <-> hub
		// traffic is untouched.
		text, err := HubConfig(lab.SRX1)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, r, lab.SRX1, text+"delete security policies from-zone vpn to-zone vpn policy SPOKE-TO-SPOKE\n")
		if err := r.PingFrom(ctx, lab.Host2, Spoke3Addr, 3); err == nil {
			t.Error("spoke 2 reached spoke 3 through the hub without a vpn -> vpn policy")
		}
		pingUntil(t, r, lab.Host2, labrun.Host1Addr, 30*time.Second)
		commit(t, r, lab.SRX1, text)
		pingUntil(t, r, lab.Host2, Spoke3Addr, 30*time.Second)
	})
	t.Run("tunnel-by-next-hop", func(t *testing.T) {
		// Each spoke's traffic leaves through its own SA pair: pinging one
		// spoke moves only the outbound SA to that spoke's gateway.
		srx2WAN, srx3WAN := netip.MustParseAddr("172.16.23.1"), BackupSite.WAN.Addr()
		for _, x := range []struct {
			node     string
			dst      netip.Addr
			via, not netip.Addr
		}{{lab.Host1, labrun.Host2Addr, srx2WAN, srx3WAN}, {lab.Host1, Spoke3Addr, srx3WAN, srx2WAN}} {
			before := outPackets(t, r, lab.SRX1)
			if err := r.PingFrom(ctx, x.node, x.dst, 5); err != nil {
				t.Fatalf("%s → %s: %v", x.node, x.dst, err)
			}
			after := outPackets(t, r, lab.SRX1)
			if got := after[x.via] - before[x.via]; got < 5 {
				t.Errorf("ping %s: the SA to %s carried %d packets, want ≥ 5", x.dst, x.via, got)
			}
			if got := after[x.not] - before[x.not]; got != 0 {
				t.Errorf("ping %s: the SA to %s carried %d packets, want none", x.dst, x.not, got)
			}
		}
		d2 := routeDev(t, r, lab.SRX1, labrun.Host2Addr)
		d3 := routeDev(t, r, lab.SRX1, Spoke3Addr)
		t.Logf("hub routes %s via %s, %s via %s", labrun.Host2Addr, d2, Spoke3Addr, d3)
		out := op(t, r, lab.SRX1, "show", "interfaces", "st0")
		t.Logf("hub> show interfaces st0\n%s", out)
		var uts unix.Utsname
		unix.Uname(&uts)
		if release := unix.ByteSliceToString(uts.Release[:]); strings.HasPrefix(release, "6.1.") {
			// No collect_md xfrm interfaces: one hidden interface per VPN.
			if d2 == d3 || !strings.HasPrefix(d2, "st0.0.p") || !strings.HasPrefix(d3, "st0.0.p") {
				t.Errorf("%s: hub routes the spokes' prefixes through %s and %s: want two hidden interfaces of st0.0", release, d2, d3)
			}
			if !strings.Contains(out, "one xfrm interface per VPN") {
				t.Errorf("%s: show interfaces st0 does not say st0.0 uses one xfrm interface per VPN", release)
			}
		} else {
			if d2 != "st0.0" || d3 != "st0.0" {
				t.Errorf("%s: hub routes the spokes' prefixes through %s and %s: want the collect_md st0.0", release, d2, d3)
			}
			if !strings.Contains(out, "collect_md") {
				t.Errorf("%s: show interfaces st0 does not say st0.0 is a collect_md xfrm interface", release)
			}
		}
	})
}

// outPackets returns the packets of node's outbound ESP SAs by destination.
func outPackets(t *testing.T, r *labrun.Run, node string) map[netip.Addr]uint64 {
	t.Helper()
	ns, err := netns.GetFromName(r.Lab().Namespace(node))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sas, err := h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]uint64{}
	for _, sa := range sas {
		if dst, ok := netip.AddrFromSlice(sa.Dst); ok {
			out[dst.Unmap()] += sa.Statistics.Packets
		}
	}
	return out
}

// tunnelStates returns gw's tunnel states by VPN.
func tunnelStates(t *testing.T, ctx context.Context, r *labrun.Run, gw string) map[string]string {
	t.Helper()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := r.Status(qctx, gw)
	if err != nil {
		t.Fatalf("%s status: %v", gw, err)
	}
	out := map[string]string{}
	for _, tu := range st.Tunnels {
		out[tu.VPN] = tu.State
	}
	return out
}

// TestVMHubOnTraffic: every VPN of the hub topology is established on
// traffic. A packet the hub routes towards one spoke raises a data-plane
// event for that spoke's tunnel only (by its hidden interface on 6.1, by
// its next hop on the collect_md st0.0 on 6.2+), which starts it; the
// other spoke's tunnel stays down until traffic goes its way.
func TestVMHubOnTraffic(t *testing.T) {
	vm.RequireKernelIPsec(t)
	ctx := context.Background()
	r := startHub(t, ctx, true)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := tunnelStates(t, ctx, r, lab.SRX1)
		if len(st) == 2 && st["VPN-to-Host2"] == "waiting for traffic" && st["VPN-to-SRX3"] == "waiting for traffic" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub tunnels not waiting for traffic: %v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pingUntil(t, r, lab.Host1, labrun.Host2Addr, 60*time.Second)
	if st := tunnelStates(t, ctx, r, lab.SRX1); st["VPN-to-Host2"] != "up" || st["VPN-to-SRX3"] != "waiting for traffic" {
		t.Errorf("after traffic to spoke 2: hub tunnels %v, want VPN-to-Host2 up and VPN-to-SRX3 waiting", st)
	}
	pingUntil(t, r, lab.Host1, Spoke3Addr, 60*time.Second)
	if st := tunnelStates(t, ctx, r, lab.SRX1); st["VPN-to-Host2"] != "up" || st["VPN-to-SRX3"] != "up" {
		t.Errorf("after traffic to spoke 3: hub tunnels %v, want both up", st)
	}
	log, err := os.ReadFile(r.LogPath(lab.SRX1))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `trigger="data plane event"`); n < 2 {
		t.Errorf("hub log: %d tunnels started by a data-plane event, want 2", n)
	}
}
