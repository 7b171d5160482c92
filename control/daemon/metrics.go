package daemon

import (
	"context"
	"errors"
	"sync"
)

// serveMetrics serves Prometheus metrics on Options.MetricsAddr.
func (d *Daemon) serveMetrics(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	if d.opts.MetricsAddr == "" {
		return nil
	}
	return errors.New("--metrics-addr: control/metrics is not in this build yet")
}
