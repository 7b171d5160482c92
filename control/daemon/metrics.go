package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/bpfvpn/bpfvpn/control/metrics"
	"github.com/bpfvpn/bpfvpn/control/ops"
)

var _ metrics.Source = (*State)(nil)

// serveMetrics serves Prometheus metrics on Options.MetricsAddr.
func (d *Daemon) serveMetrics(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	if d.opts.MetricsAddr == "" {
		return nil
	}
	ln, err := metrics.Listen(d.opts.MetricsAddr)
	if err != nil {
		return err
	}
	d.metricsAddr = ln.Addr().String()
	d.log.Info("serving metrics", "addr", d.metricsAddr)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := metrics.Serve(ctx, ln, metrics.Handler(metrics.NewRegistry(d.state, d.log))); err != nil {
			errc <- err
		}
	}()
	return nil
}

// MetricsSnapshot implements metrics.Source.
func (s *State) MetricsSnapshot(ctx context.Context) (metrics.Snapshot, error) {
	cfg, ts, c, dp, _ := s.snapshot()
	var snap metrics.Snapshot
	if cfg == nil {
		return snap, errors.New("no configuration applied yet")
	}
	vpnOfUnit := map[string]string{}
	for _, t := range s.Tunnels() {
		snap.Tunnels = append(snap.Tunnels, metrics.Tunnel{VPN: t.VPN, Interface: t.Interface, Up: t.Up})
		vpnOfUnit[t.Interface] = t.VPN
	}
	if ts != nil {
		for _, sa := range ts.IKESAs() {
			if sa.State == ops.StateUp {
				snap.IKESAs++
			}
		}
		snap.IPsecSAs = len(ts.IPsecSAs())
	}
	if c != nil {
		counters, err := c.SACounters()
		if err != nil {
			return snap, err
		}
		for spi, sc := range counters {
			ifname := fmt.Sprintf("st0.%d", sc.Unit)
			snap.SAs = append(snap.SAs, metrics.SA{VPN: vpnOfUnit[ifname], Interface: ifname, Direction: sc.Direction,
				SPI: spi, Bytes: sc.Bytes, Packets: sc.Packets, Errors: sc.Errors})
		}
		sort.Slice(snap.SAs, func(i, j int) bool { return snap.SAs[i].SPI < snap.SAs[j].SPI })
	}
	pols, err := s.Policies(ctx)
	if err != nil {
		return snap, err
	}
	for _, p := range pols.Policies {
		snap.Policies = append(snap.Policies, metrics.PolicyHits{FromZone: p.FromZone, ToZone: p.ToZone, Policy: p.Name, Hits: p.Hits})
	}
	if dp != nil {
		drops, err := dp.Drops()
		if err != nil {
			return snap, err
		}
		snap.Drops = drops
		sum, err := dp.SessionSummary()
		if err != nil {
			return snap, err
		}
		snap.Sessions = sum.InUse
	}
	return snap, nil
}
