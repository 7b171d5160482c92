package daemon

import "log/slog"

// DefaultComponents returns the components of a gateway in apply order.
// Parts whose implementation is not in this build are left out, and the
// views of State say so (e.g. tunnels show "no IKE engine").
func DefaultComponents(st *State, log *slog.Logger) ([]Component, error) {
	return nil, nil
}
