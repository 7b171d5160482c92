package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// NewDataplaneComponent returns the data-plane component alone, for
// gateways without IPsec (zones and policies only) and for benchmarks that
// measure commits through the real data plane on a kernel without xfrm
// interfaces. It publishes no SAs.
func NewDataplaneComponent(log *slog.Logger, instance string) (Component, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newDataplaneComponent(log, instance, noSAs{})
}

// noSAs is a kernel without IPsec SAs.
type noSAs struct{}

var errNoIPsec = errors.New("no IPsec on this gateway")

func (noSAs) InstallChildSA(context.Context, kernel.ChildSA) ([]kernel.Change, error) {
	return nil, errNoIPsec
}
func (noSAs) InstallInbound(context.Context, kernel.ChildSA) ([]kernel.Change, error) {
	return nil, errNoIPsec
}
func (noSAs) RetireChildSA(context.Context, kernel.ChildSA, time.Duration) ([]kernel.Change, error) {
	return nil, errNoIPsec
}
func (noSAs) RemoveTunnel(context.Context, int) ([]kernel.Change, error) { return nil, nil }
func (noSAs) RemovePeerTunnel(context.Context, int, int) ([]kernel.Change, error) {
	return nil, nil
}
func (noSAs) InstalledSAs() ([]kernel.InstalledSA, error) { return nil, nil }
