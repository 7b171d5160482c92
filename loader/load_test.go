package loader

import (
	"os"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
}

// TestLoad proves the programs pass the verifier of the running kernel.
func TestLoad(t *testing.T) {
	requireRoot(t)
	objs, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	for name, p := range map[string]interface{ FD() int }{
		"xdp_zone": objs.XdpZone, "tc_st0_ingress": objs.TcSt0Ingress, "tc_st0_egress": objs.TcSt0Egress, "tc_zone_egress": objs.TcZoneEgress,
	} {
		if p.FD() <= 0 {
			t.Errorf("%s: no fd", name)
		}
	}
}

func TestPinIfname(t *testing.T) {
	if got := pinIfname("st0.0"); got != "st0:0" {
		t.Errorf("pinIfname(st0.0) = %q", got)
	}
}
