package daemon

import (
	"context"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// Component is one part of the gateway that applies configurations: the
// kernel (st0 interfaces, addresses, routes), the data plane, the IKE
// sessions.
//
// Invariants the daemon relies on:
//   - Check changes nothing;
//   - Apply is idempotent: applying the configuration that is applied changes
//     nothing, and parts of the state that a new configuration leaves
//     untouched (a tunnel whose VPN did not change) keep running;
//   - Apply(prev) after a failed Apply(next) restores prev's state: that is
//     how a failed commit is rolled back;
//   - Close releases the component's resources (sockets, goroutines) but
//     leaves what it applied in the kernel and in pinned BPF objects, so a new
//     daemon adopts it.
type Component interface {
	// Name names the component in logs and errors ("kernel", "dataplane", "ike").
	Name() string
	// Check validates cfg against the running state without changing anything.
	Check(ctx context.Context, cfg *config.Config) error
	// Apply makes cfg the applied configuration of the component.
	Apply(ctx context.Context, cfg *config.Config) error
	// Close stops the component without undoing what it applied.
	Close() error
}
