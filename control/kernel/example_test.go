package kernel_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// Example shows how a daemon drives the reconciler: compile the kernel state
// from the configuration, reconcile it (again on every commit), hand the
// IKE engines an IKESink, and read the counters for the show commands.
func Example() {
	cfg, diags, err := config.Load("/etc/bpfvpn/bpfvpn.conf")
	if err != nil || cfg == nil {
		log.Fatal(err, diags)
	}
	desired, notes := kernel.FromConfig(cfg)
	for _, n := range notes {
		slog.Warn("config", "note", n)
	}
	// The daemon's own network namespace; Options{NetNS: ns, NetNSSet: true}
	// manages another one.
	r, err := kernel.New(kernel.Options{Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close() // kernel objects stay: the next daemon adopts them

	ctx := context.Background()
	if _, err := r.Reconcile(ctx, desired); err != nil {
		slog.Error("reconcile", "err", err) // partial: the rest was applied; retry later
	}

	// The IKE engines report negotiated CHILD SAs here (ike.SASink).
	sink := &kernel.IKESink{R: r, Grace: 5 * time.Second, Log: slog.Default()}
	_ = sink

	// DPD declared st0.0's peer dead before the SAs are deleted: withdraw
	// its routes now so a backup route takes over.
	_, _ = r.SetTunnelUp(ctx, 0, false)

	// show security ipsec statistics / clear security ipsec statistics.
	sas, _ := r.SAStatistics()
	xs, _ := r.ReadXfrmStat()
	_, _ = sas, xs
	_ = r.ClearStatistics(-1)
}
