package metrics_test

import (
	"maps"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/metrics"
)

func TestDropReasons(t *testing.T) {
	got := metrics.DropReasons(map[string]uint64{"packets": 100, "drop-policy": 3, "drop-host-inbound": 2, "session-new": 5, "drop-": 9})
	want := map[string]uint64{"policy": 3, "host-inbound": 2}
	if !maps.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}
