package daemon

import (
	"context"
	"log/slog"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/kernelview"
)

// KernelState compiles the kernel part of cfg (kernel.FromConfig): the st0
// units as xfrm interfaces bound to the external interface of their VPN's
// gateway, with one hidden interface per VPN behind a multipoint unit; the
// addresses of the other units; the static routes (one kernel route per
// next hop and preference). Routes into an on-traffic tunnel stay while the
// tunnel is down, so that its first packet is routed into st0 and starts
// IKE. Warnings name what the kernel state cannot express.
func KernelState(cfg *config.Config) (kernel.State, []string) {
	return kernel.FromConfig(cfg)
}

// kernelComponent reconciles the kernel (control/kernel) and serves the
// IPsec counters.
type kernelComponent struct {
	r   *kernel.Reconciler
	log *slog.Logger
	// collectMD carries the multipoint unit on a collect_md xfrm interface
	// (set when the data plane can steer it).
	collectMD bool
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
	multipointMode(&st, k.collectMD)
	return st.Validate()
}

func (k *kernelComponent) Apply(ctx context.Context, cfg *config.Config) error {
	st, warns := KernelState(cfg)
	multipointMode(&st, k.collectMD)
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
