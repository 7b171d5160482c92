package topology

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/vm"
)

// The prefix SRX2's BIRD originates (Host2 holds 10.100.122.2 on lo, behind
// a static route BIRD installs) and SRX1 learns over the tunnel.
var (
	bgpPrefix = netip.MustParsePrefix("10.100.122.0/24")
	bgpHost   = netip.MustParseAddr("10.100.122.2")
)

// bgpPolicies lets Host1 ↔ the BGP-learned prefix through both gateways.
func bgpPolicies(gw string) string {
	s := "set security address-book Host2 address Host2-BGP " + bgpPrefix.String() + "\n"
	from, to, name := "trust", "vpn", "BGP-OUT"
	if gw == lab.SRX2 {
		from, to, name = "vpn", "trust", "BGP-IN"
	}
	p := fmt.Sprintf("set security policies from-zone %s to-zone %s policy %s ", from, to, name)
	return s + p + "match source-address Host1-Net\n" + p + "match destination-address Host2-BGP\n" +
		p + "match application any\n" + p + "then permit\n"
}

const hostInboundBGP = "set security zones security-zone vpn host-inbound-traffic protocols bgp\n"

// TestVMBGPOverSt0 runs BIRD beside each gateway of the lab (IKEv2, data
// plane attached) with an eBGP session between the st0 addresses. Without
// `host-inbound-traffic protocols bgp` on the vpn zone the session never
// reaches Established; with it, SRX1 learns the prefix SRX2 originates over
// the tunnel and Host1 reaches an address in it.
func TestVMBGPOverSt0(t *testing.T) {
	vm.RequireKernelIPsec(t)
	if _, err := exec.LookPath(BirdBinary); err != nil {
		t.Skip("bird not installed (Debian package bird2, listed in .ci/packages)")
	}
	r := newLab(t, lab.ConfigOptions{IKEVersion: "v2-only"}, true)
	ctx := context.Background()
	if err := r.Up(ctx, true); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	base := map[string]string{}
	for _, gw := range labrun.Gateways {
		text, err := os.ReadFile(r.ConfigPath(gw))
		if err != nil {
			t.Fatal(err)
		}
		base[gw] = string(text) + bgpPolicies(gw)
		commit(t, r, gw, base[gw])
	}
	// Host2 owns an address in the originated prefix.
	h2, err := r.Lab().Handle(lab.Host2)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	lo, err := h2.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: bgpHost.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatalf("host2 address %s: %v", bgpHost, err)
	}

	peers := map[string]BGPPeer{
		lab.SRX1: {RouterID: "10.100.200.1", LocalAddr: "10.100.200.1", LocalAS: 65001, PeerAddr: "10.100.200.2", PeerAS: 65002},
		lab.SRX2: {RouterID: "10.100.200.2", LocalAddr: "10.100.200.2", LocalAS: 65002, PeerAddr: "10.100.200.1", PeerAS: 65001,
			Originate: map[string]string{bgpPrefix.String(): "10.100.22.2"}},
	}
	birds := map[string]*Bird{}
	for _, gw := range labrun.Gateways {
		ns, err := netns.GetFromName(r.Lab().Namespace(gw))
		if err != nil {
			t.Fatal(err)
		}
		b, err := StartBird(ctx, ns, filepath.Join(t.TempDir(), gw+"-bird"), BirdConfig(peers[gw]))
		ns.Close()
		if err != nil {
			t.Fatalf("%s: %v", gw, err)
		}
		t.Cleanup(b.Stop)
		birds[gw] = b
	}
	logBirds := func() {
		for gw, b := range birds {
			out, _ := b.Command(ctx, "show", "protocols", "all", BGPProtocol)
			t.Logf("%s bird:\n%s", gw, out)
		}
	}

	t.Run("without-host-inbound-bgp", func(t *testing.T) {
		// BIRD retries every second: 15 s is a dozen connection attempts
		// each way, all of which the vpn zone must refuse.
		deadline := time.Now().Add(15 * time.Second)
		seen := map[string]bool{}
		for time.Now().Before(deadline) {
			for gw, b := range birds {
				st, err := b.BGPState(ctx, BGPProtocol)
				if err != nil {
					t.Fatalf("%s: %v", gw, err)
				}
				seen[st] = true
				switch st {
				case "Idle", "Connect", "Active":
				default:
					logBirds()
					t.Fatalf("%s: BGP state %s without host-inbound bgp on the vpn zone", gw, st)
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("BGP states seen without host-inbound bgp: %v", seen)
	})

	t.Run("with-host-inbound-bgp", func(t *testing.T) {
		for _, gw := range labrun.Gateways {
			commit(t, r, gw, base[gw]+hostInboundBGP)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			s1, err1 := birds[lab.SRX1].BGPState(ctx, BGPProtocol)
			s2, err2 := birds[lab.SRX2].BGPState(ctx, BGPProtocol)
			if err1 == nil && err2 == nil && s1 == "Established" && s2 == "Established" {
				break
			}
			if time.Now().After(deadline) {
				logBirds()
				t.Fatalf("BGP not established with host-inbound bgp: srx1 %s %v, srx2 %s %v", s1, err1, s2, err2)
			}
			time.Sleep(250 * time.Millisecond)
		}
		// SRX1's kernel holds the learned prefix through st0.0, installed
		// by BIRD (not with bpfvpn's route protocol).
		h1, err := r.Lab().Handle(lab.SRX1)
		if err != nil {
			t.Fatal(err)
		}
		defer h1.Close()
		var route *netlink.Route
		deadline = time.Now().Add(30 * time.Second)
		for route == nil {
			routes, err := h1.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{
				Dst: &net.IPNet{IP: bgpPrefix.Addr().AsSlice(), Mask: net.CIDRMask(bgpPrefix.Bits(), 32)}}, netlink.RT_FILTER_DST)
			if err != nil {
				t.Fatal(err)
			}
			if len(routes) > 0 {
				route = &routes[0]
				break
			}
			if time.Now().After(deadline) {
				logBirds()
				t.Fatalf("srx1 never learned %s", bgpPrefix)
			}
			time.Sleep(200 * time.Millisecond)
		}
		link, err := h1.LinkByIndex(route.LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("srx1 route %s via %s dev %s proto %d", bgpPrefix, route.Gw, link.Attrs().Name, route.Protocol)
		if link.Attrs().Name != kernel.LinkName(0) || route.Gw.String() != "10.100.200.2" {
			t.Errorf("srx1 route %s via %s dev %s, want via 10.100.200.2 dev st0.0", bgpPrefix, route.Gw, link.Attrs().Name)
		}
		if route.Protocol == kernel.RouteProtocol {
			t.Errorf("learned route carries bpfvpn's protocol %d", route.Protocol)
		}
		// The learned prefix carries traffic over the tunnel.
		deadline = time.Now().Add(20 * time.Second)
		for {
			err := r.PingFrom(ctx, lab.Host1, bgpHost, 3)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("host1 → %s over the BGP route: %v", bgpHost, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}
