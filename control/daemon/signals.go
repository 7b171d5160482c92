package daemon

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// RunUntilSignal runs d until SIGTERM or SIGINT (or ctx's end); SIGHUP
// reloads the configuration file. Stopping leaves tunnels, SAs and the
// pinned data plane in place.
func (d *Daemon) RunUntilSignal(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.log.Info("SIGHUP: reloading the configuration file")
				select {
				case reload <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return d.Run(ctx, reload)
}
