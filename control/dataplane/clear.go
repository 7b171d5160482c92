package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/maps"
)

// ClearSessions deletes the sessions for which match returns true (all of
// them when match is nil), as `clear security flow session` does, and
// invalidates the flow cache so that no CPU keeps passing a cleared flow
// from it. It returns how many sessions it deleted.
func ClearSessions(m *maps.Set, match func(maps.Session) bool) (int, error) {
	ss, err := m.ListSessions(0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range ss {
		if match != nil && !match(s) {
			continue
		}
		if err := m.Sessions.Delete(&s.Key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			err = fmt.Errorf("clear session %s:%d → %s:%d: %w", s.Src, s.SPort, s.Dst, s.DPort, err)
			return n, errors.Join(err, m.InvalidateFlowCache())
		}
		n++
	}
	if err := m.InvalidateFlowCache(); err != nil {
		return n, err
	}
	return n, nil
}
