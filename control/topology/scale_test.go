package topology

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// The generated scale configurations are valid and hold n+1 VPNs, each to
// its own peer address from its own local address.
func TestScaleConfigValid(t *testing.T) {
	for _, gw := range []string{lab.SRX1, lab.SRX2} {
		for _, n := range []int{0, 3, MaxScaleTunnels} {
			text, err := ScaleConfig(gw, n, lab.ConfigOptions{}, "immediately")
			if err != nil {
				t.Fatal(err)
			}
			cfg, diags := config.ParseBytes(gw+".conf", []byte(text))
			if cfg == nil {
				t.Fatalf("%s n=%d: %s", gw, n, diags)
			}
			if got := len(cfg.IPsec.VPNs); got != n+1 {
				t.Fatalf("%s n=%d: %d VPNs", gw, n, got)
			}
			pairs := map[[2]string]string{}
			for _, v := range cfg.IPsec.VPNs {
				k := [2]string{v.Gateway.LocalAddress.String(), v.Gateway.Addresses[0].String()}
				if other, dup := pairs[k]; dup {
					t.Fatalf("%s: VPNs %s and %s share %v", gw, other, v.Name, k)
				}
				pairs[k] = v.Name
				if _, err := daemon.TunnelOf(v); err != nil {
					t.Fatalf("%s: %v", gw, err)
				}
			}
		}
	}
	if _, err := ScaleConfig(lab.SRX1, MaxScaleTunnels+1, lab.ConfigOptions{}, "immediately"); err == nil {
		t.Error("more tunnels than addresses accepted")
	}
}
