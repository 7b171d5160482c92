package opstest

import (
	"context"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

// Run runs the command line cmd against p as text and fails the test on
// an error.
func Run(t testing.TB, p ops.Provider, cmd string) string {
	t.Helper()
	out, err := ops.Run(context.Background(), p, strings.Fields(cmd), false)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}
