package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/kernelview"
)

// KernelState compiles the kernel part of cfg: the st0 units as xfrm
// interfaces (bound to the external interface of the gateway of their VPN),
// the addresses of the other units, and the static routes (one kernel route
// per next hop and preference). Routes into an on-traffic tunnel stay while
// the tunnel is down, so that its first packet is routed into st0 and starts
// IKE. Warnings name what the kernel state cannot express.
func KernelState(cfg *config.Config) (kernel.State, []string) {
	var st kernel.State
	var warns []string
	vpnOf := map[string]*config.VPN{}
	for _, v := range cfg.IPsec.VPNs {
		vpnOf[v.BindInterface] = v
	}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			if u.Disable {
				continue
			}
			if u.Tunnel {
				t := kernel.Tunnel{Unit: u.Number, MTU: u.MTU, RoutesWhenDown: true}
				if len(u.Inet) > 0 {
					t.IPv4 = u.Inet[0]
				}
				if len(u.Inet6) > 0 {
					t.IPv6 = u.Inet6[0]
				}
				if v := vpnOf[u.Name]; v != nil {
					t.RoutesWhenDown = !v.EstablishImmediately
					if v.Gateway != nil {
						t.Underlay = v.Gateway.ExternalLinux
					}
				}
				st.Tunnels = append(st.Tunnels, t)
				continue
			}
			for _, p := range append(append([]netip.Prefix(nil), u.Inet...), u.Inet6...) {
				st.Addresses = append(st.Addresses, kernel.Address{Link: u.LinuxName, Prefix: p})
			}
		}
	}
	for _, r := range cfg.Routes {
		if r.Discard || r.Reject {
			warns = append(warns, fmt.Sprintf("route %s: discard/reject routes are not installed by this build", r.Prefix))
			continue
		}
		add := func(nh config.NextHop, pref int) {
			kr := kernel.Route{Dst: r.Prefix.Masked(), Metric: uint32(pref)}
			if nh.Address.IsValid() {
				kr.Gateway = nh.Address
			} else {
				kr.Dev = nh.LinuxName
			}
			st.Routes = append(st.Routes, kr)
		}
		for i, nh := range r.NextHops {
			if i > 0 {
				warns = append(warns, fmt.Sprintf("route %s: only the first of %d equal next hops is installed", r.Prefix, len(r.NextHops)))
				break
			}
			add(nh, r.Preference)
		}
		for _, nh := range r.Qualified {
			add(nh, nh.Preference)
		}
	}
	return st, warns
}

// kernelComponent reconciles the kernel (control/kernel) and serves the
// IPsec counters.
type kernelComponent struct {
	r   *kernel.Reconciler
	log *slog.Logger
}

func newKernelComponent(log *slog.Logger) (*kernelComponent, error) {
	r, err := kernel.New(kernel.Options{Logger: log.With("component", "kernel")})
	if err != nil {
		return nil, err
	}
	return &kernelComponent{r: r, log: log}, nil
}

func (k *kernelComponent) Name() string { return "kernel" }

func (k *kernelComponent) Check(ctx context.Context, cfg *config.Config) error {
	st, _ := KernelState(cfg)
	return st.Validate()
}

func (k *kernelComponent) Apply(ctx context.Context, cfg *config.Config) error {
	st, warns := KernelState(cfg)
	for _, w := range warns {
		k.log.Warn("kernel state", "warning", w)
	}
	_, err := k.r.Reconcile(ctx, st)
	return err
}

func (k *kernelComponent) Close() error { return k.r.Close() }

// IPsecStatistics implements IPsecCounters from the SA counters and
// /proc/net/xfrm_stat (control/ops/kernelview).
func (k *kernelComponent) IPsecStatistics(unit int) (ops.IPsecStatistics, error) {
	sas, err := k.r.SAStatistics()
	if err != nil {
		return ops.IPsecStatistics{}, err
	}
	// Kernels without CONFIG_XFRM_STATISTICS have no xfrm_stat: the global
	// error counters then stay zero.
	xs, _ := k.r.ReadXfrmStat()
	return kernelview.Statistics(sas, xs, unit), nil
}

func (k *kernelComponent) ClearIPsecStatistics(unit int) error { return k.r.ClearStatistics(unit) }

func (k *kernelComponent) SACounters() (map[uint32]SACounter, error) {
	sas, err := k.r.SAStatistics()
	if err != nil {
		return nil, err
	}
	out := map[uint32]SACounter{}
	for _, s := range sas {
		out[s.SPI] = SACounter{Unit: s.Unit, Direction: s.Direction, Bytes: s.Bytes, Packets: s.Packets,
			Errors: map[string]uint64{"replay": s.ReplayErrors + s.ReplayWindowDrops, "authentication": s.IntegrityFailures}}
	}
	return out, nil
}
