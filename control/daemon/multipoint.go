package daemon

import (
	"fmt"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// bindTunnel gives the CHILD SAs of t the if_id of its tunnel in the kernel:
// on a multipoint st0 unit each VPN is a peer with its own if_id
// (kernel.VPNIfID), chosen for a packet by its next hop. The if_id is part
// of the fingerprint: a VPN whose peer id changes is restarted.
func bindTunnel(cfg *config.Config, t *Tunnel) {
	id := kernel.VPNIfID(cfg, t.VPN)
	if id == 0 || id == kernel.IfID(t.Unit) {
		return
	}
	if t.V2 != nil {
		t.V2.IfID = id
	}
	if t.V1 != nil {
		t.V1.IfID = id
	}
	t.Fingerprint += fmt.Sprintf(" if_id %#x", id)
}

// tunnelIfID is the if_id of t's CHILD SAs.
func tunnelIfID(t *Tunnel) uint32 {
	switch {
	case t.V2 != nil:
		return t.V2.IfID
	case t.V1 != nil:
		return t.V1.IfID
	}
	return kernel.IfID(t.Unit)
}
