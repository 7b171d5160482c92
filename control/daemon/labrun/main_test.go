package labrun

import (
	"os"
	"testing"
)

// daemonEnv makes the test binary act as `bpfvpn daemon` (the lab starts its
// gateways from it), so the tests need no built bpfvpn binary.
const daemonEnv = "BPFVPN_LABRUN_TEST_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		os.Exit(RunDaemon(os.Args[1:]))
	}
	os.Exit(m.Run())
}
