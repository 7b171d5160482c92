package ops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// FuzzRun runs arbitrary command lines: the grammar either rejects them with
// a *SyntaxError whose caret lies inside or just past the line, or they run
// against the fake provider. Nothing panics.
func FuzzRun(f *testing.F) {
	for _, seed := range []string{
		"show security ike security-associations index 1512635 detail",
		"sh sec ipsec sa | display json | match spi",
		"show interfaces st0.0 terse | last 1",
		"clear security ipsec statistics index 0",
		"show security flow session summary | count",
		"show route |no-more",
		"clear security flow session source-prefix 10.100/16 protocol tcp destination-port 22",
		"clear sec fl se all", "clear security flow session session-identifier 1021 | display json",
		"show security flow session summary interface st0 protocol tcp", "clear security flow session interface ge-0/0/0.0",
		"| |", "show security i", "show interfaces a b c",
	} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, line string, asJSON bool) {
		words := strings.Fields(line)
		_, err := ops.Run(context.Background(), opstest.Reference(), words, asJSON)
		var se *ops.SyntaxError
		if errors.As(err, &se) {
			if se.Pos < 0 || se.Pos > len(se.Line)+1 {
				t.Fatalf("caret %d outside %q", se.Pos, se.Line)
			}
		} else if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	})
}
