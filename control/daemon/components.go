package daemon

import "log/slog"

// DefaultComponents returns the components of a gateway in apply order:
// the kernel (st0 xfrm interfaces, addresses, routes) first, so that the
// IKE sockets can bind the WAN addresses and SAs find their st0; then the
// IKE sessions. The components' views are connected to st.
//
// The data plane comes between them: it attaches to st0 units the kernel
// created, and the IKE sink publishes inbound SPIs into its filter.
// instance names the pin directory ("" = after the network namespace).
func DefaultComponents(st *State, log *slog.Logger, instance string, withDataplane bool) ([]Component, error) {
	k, err := newKernelComponent(log)
	if err != nil {
		return nil, err
	}
	st.SetIPsecCounters(k)
	if !withDataplane {
		ik := newIKEComponent(log, k.r, nil)
		ik.watchExpire = true
		st.SetTunnelSource(ik)
		return []Component{k, ik}, nil
	}
	dp, err := newDataplaneComponent(log, instance, k.r)
	if err != nil {
		k.Close()
		return nil, err
	}
	k.collectMD = dp.collectMD
	ik := newIKEComponent(log, k.r, dp)
	ik.watchExpire = true
	wireOnTraffic(ik, dp)
	st.SetTunnelSource(ik)
	st.SetDataplaneView(dp)
	return []Component{k, dp, ik}, nil
}

// MetricsAddr returns the address metrics are served on ("" when off).
func (d *Daemon) MetricsAddr() string { return d.metricsAddr }
