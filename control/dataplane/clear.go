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
// from it. It returns how many sessions it deleted: a session that left the
// table between the listing and its delete (idle sweep, LRU eviction, a
// closing FIN/RST) is not counted. The next packet of a cleared flow finds
// no session and is judged as the first packet of a flow: a policy lookup,
// and a TCP packet that is not a SYN is dropped (drop-tcp-no-syn).
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
		err := m.Sessions.Delete(&s.Key)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			continue
		case err != nil:
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
