// Package vm boots Debian kernels under qemu to run the tests that need
// kernel IPsec (ESP, XFRM interfaces), and tells tests where they run.
package vm

import (
	"os"
	"testing"
)

// GuestEnv is set to "1" by the VM's init for every command it runs.
const GuestEnv = "BPFVPN_VM"

// InGuest reports whether this process runs inside the bpfvpn test VM.
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

// RequireKernelIPsec skips tb unless it runs inside the test VM, whose kernel
// has ESP and XFRM interfaces. Tests that need kernel IPsec are named
// TestVM… so that the VM runner selects them with -test.run '^TestVM'.
func RequireKernelIPsec(tb testing.TB) {
	tb.Helper()
	if !InGuest() {
		tb.Skip("kernel lacks ESP / xfrm interfaces: runs in the VM tier (make vmtest)")
	}
}
