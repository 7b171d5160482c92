package daemon

import (
	"net/netip"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/maps"
)

func TestSessionInterfacesUseUnitNames(t *testing.T) {
	names := unitNames(labConfig(t, lab.SRX1, lab.ConfigOptions{}, ""))
	for linux, unit := range map[string]string{"eth0": "ge-0/0/0.0", "eth1": "ge-0/0/1.0", "st0.0": "st0.0"} {
		if names[linux] != unit {
			t.Errorf("%s shows as %q, want %q (%v)", linux, names[linux], unit, names)
		}
	}
	// Loopback routes through lo on any kernel.
	in, out := sessionInterfaces(map[string]string{"lo": "lo0.0"})(maps.Session{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.2")})
	if in != "lo0.0" || out != "lo0.0" {
		t.Errorf("loopback session interfaces %q, %q", in, out)
	}
}
