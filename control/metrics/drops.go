package metrics

import "strings"

// DropReasons picks the drop counters out of the data plane's named event
// counters (maps.CounterNames: "drop-policy", "drop-host-inbound", …) for
// Snapshot.Drops, keyed by reason without the "drop-" prefix.
func DropReasons(named map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for name, v := range named {
		if reason, ok := strings.CutPrefix(name, "drop-"); ok && reason != "" {
			out[reason] = v
		}
	}
	return out
}
