package loader

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/vm"
)

// TestVMLoad loads the programs on the VM kernels (6.1 is the verifier
// floor).
func TestVMLoad(t *testing.T) {
	vm.RequireKernelIPsec(t)
	requireRoot(t)
	objs, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	for _, p := range []interface{ String() string }{objs.XdpZone, objs.TcSt0Ingress, objs.TcSt0Egress, objs.TcZoneEgress} {
		t.Logf("loaded %s", p)
	}
}
