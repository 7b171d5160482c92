package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBootOnHost boots the 6.1 kernel under qemu from the host: the
// command's exit code and output come back, and an init failure, a panic
// and a hang become GuestErrors with the kernel log. Slow (three boots in
// parallel); skipped with -short and inside the VM.
func TestBootOnHost(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu (-short)")
	}
	if InGuest() {
		t.Skip("no nested VMs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel) // the parallel sub-tests run after this function returns
	series, err := LookupSeries("6.1")
	if err != nil {
		t.Fatal(err)
	}
	k, err := FetchKernel(ctx, series[0], os.Stderr)
	if err != nil {
		t.Fatalf("fetch kernel: %v", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// A checkout under the guest's tmpfs (/tmp, /run) is bound in from the host.
	cfg := Config{Kernel: k, Timeout: 3 * time.Minute, Binds: BindsFor(dir)}

	t.Run("ExitCodeAndOutput", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		c := cfg
		c.Output = &out
		c.RunScript = CommandScript(dir, GuestEnviron(),
			[]string{"sh", "-c", `echo "vm=$BPFVPN_VM $(pwd)"; echo to-stderr >&2; test -w "$HOME" || exit 9; exit 3`})
		res, err := Run(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", res.ExitCode)
		}
		if want := "vm=1 " + dir + "\nto-stderr\n"; out.String() != want {
			t.Errorf("output %q, want %q", out.String(), want)
		}
	})
	t.Run("PanicIsGuestError", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.RunScript = "echo c >/proc/sysrq-trigger\nsleep 60\n"
		_, err := Run(ctx, c)
		var ge *GuestError
		if !errors.As(err, &ge) || !strings.Contains(ge.Reason, "panicked") || !strings.Contains(ge.Log, "sysrq") {
			t.Fatalf("got %v, want a panic GuestError with the kernel log", err)
		}
	})
	t.Run("InitFailureIsGuestError", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.RunScript = "exit 0\n"
		c.Binds = []string{"/tmp/vmrun-test-does-not-exist"}
		_, err := Run(ctx, c)
		var ge *GuestError
		if !errors.As(err, &ge) || !strings.Contains(ge.Reason, "init failed: bind /tmp/vmrun-test-does-not-exist") {
			t.Fatalf("got %v, want an init failure GuestError", err)
		}
	})
	t.Run("HangIsGuestError", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.Timeout = time.Second
		c.RunScript = "sleep 600\n"
		_, err := Run(ctx, c)
		var ge *GuestError
		if !errors.As(err, &ge) || !strings.Contains(ge.Reason, "timed out") {
			t.Fatalf("got %v, want a timeout GuestError", err)
		}
	})
}
