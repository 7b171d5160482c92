package topology

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// The IKE component serves one VPN per local/remote address pair, so every
// extra tunnel has its own WAN addresses: tunnel i ≤ LinkScaleTunnels uses
// 172.16.13.(9+i) and 172.16.23.(9+i) inside the lab's /24 links; beyond
// that, 172.17.0.0/16 (SRX1) and 172.18.0.0/16 (SRX2), which the Internet
// node reaches on-link once ScaleInternetRoutes are added there.
const (
	LinkScaleTunnels = 245
	MaxScaleTunnels  = 1000
)

// ScaleInternetRoutes are the on-link routes the Internet node needs for
// tunnels beyond LinkScaleTunnels: prefix → Internet's link toward it.
var ScaleInternetRoutes = map[netip.Prefix]string{
	netip.MustParsePrefix("172.17.0.0/16"): "eth0",
	netip.MustParsePrefix("172.18.0.0/16"): "eth1",
}

// ScaleUnit is the st0 unit of extra tunnel i (1-based): units 1..n, next
// to the reference tunnel on st0.0.
func ScaleUnit(i int) int { return i }

// ScaleAddrs returns the st0 addresses of extra tunnel i on SRX1 and SRX2.
// (10.(200+i/256).(i%256).0/24).
func ScaleAddrs(i int) (srx1, srx2 netip.Addr) {
	a, b := byte(200+i/256), byte(i%256)
	return netip.AddrFrom4([4]byte{10, a, b, 1}), netip.AddrFrom4([4]byte{10, a, b, 2})
}

// scaleWAN returns the WAN addresses (with their prefix length) of extra
// tunnel i on SRX1 and SRX2.
func scaleWAN(i int) (srx1, srx2 netip.Prefix) {
	if i <= LinkScaleTunnels {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 13, byte(9 + i)}), 24),
			netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 23, byte(9 + i)}), 24)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 17, byte(i / 256), byte(i % 256)}), 16),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 18, byte(i / 256), byte(i % 256)}), 16)
}

// ScaleConfig returns gateway's reference configuration (IKEv2) plus n
// extra route-based VPNs to the other gateway, one per st0 unit 1..n, each
// with its own pair of WAN addresses and an st0 /24 (10.200.i.0/24); the vpn
// zone answers ping so that each tunnel can carry an echo from the gateway.
// n = 0 gives the reference configuration with that host-inbound addition.
// establish is the extra VPNs' establish-tunnels ("immediately" or
// "on-traffic"; the latter makes this gateway the responder of all of them).
func ScaleConfig(gateway string, n int, opts lab.ConfigOptions, establish string) (string, error) {
	if establish != "immediately" && establish != "on-traffic" {
		return "", fmt.Errorf("scale config: establish-tunnels %q", establish)
	}
	if n < 0 || n > MaxScaleTunnels {
		return "", fmt.Errorf("scale config: %d tunnels (want 0..%d)", n, MaxScaleTunnels)
	}
	if opts.IKEVersion == "" {
		opts.IKEVersion = "v2-only"
	}
	base, err := lab.Config(gateway, opts)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(base)
	line := func(format string, args ...any) { fmt.Fprintf(&b, "set "+format+"\n", args...) }
	line("security zones security-zone vpn host-inbound-traffic system-services ping")
	for i := 1; i <= n; i++ {
		a1, a2 := ScaleAddrs(i)
		w1, w2 := scaleWAN(i)
		local, st0, peer := w1, a1, w2
		if gateway == lab.SRX2 {
			local, st0, peer = w2, a2, w1
		}
		gw := fmt.Sprintf("GW-%d", i)
		vpn := fmt.Sprintf("VPN-%d", i)
		line("interfaces ge-0/0/1 unit 0 family inet address %s", local)
		line("interfaces st0 unit %d family inet address %s/24", ScaleUnit(i), st0)
		line("security zones security-zone vpn interfaces st0.%d", ScaleUnit(i))
		line("security ike gateway %s ike-policy IKE-POL", gw)
		line("security ike gateway %s address %s", gw, peer.Addr())
		line("security ike gateway %s external-interface ge-0/0/1", gw)
		line("security ike gateway %s local-address %s", gw, local.Addr())
		line("security ike gateway %s version %s", gw, opts.IKEVersion)
		line("security ipsec vpn %s bind-interface st0.%d", vpn, ScaleUnit(i))
		line("security ipsec vpn %s ike gateway %s", vpn, gw)
		line("security ipsec vpn %s ike ipsec-policy IPSEC-POL", vpn)
		line("security ipsec vpn %s establish-tunnels %s", vpn, establish)
	}
	return b.String(), nil
}
