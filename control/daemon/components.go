package daemon

import "log/slog"

// DefaultComponents returns the components of a gateway in apply order:
// the kernel (st0 xfrm interfaces, addresses, routes) first, so that the
// IKE sockets can bind the WAN addresses and SAs find their st0; then the
// IKE sessions. The components' views are connected to st.
//
// The eBPF data plane is not a component yet: control/dataplane has no
// config → Spec compilation and attach/pin API on main (see the gateway
// report); `bpfvpn attach` will be wired here when it lands.
func DefaultComponents(st *State, log *slog.Logger) ([]Component, error) {
	k, err := newKernelComponent(log)
	if err != nil {
		return nil, err
	}
	ik := newIKEComponent(log, k.r, nil)
	st.SetIPsecCounters(k)
	st.SetTunnelSource(ik)
	return []Component{k, ik}, nil
}

// MetricsAddr returns the address metrics are served on ("" when off).
func (d *Daemon) MetricsAddr() string { return d.metricsAddr }
