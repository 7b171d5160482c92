package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// cliHelperEnv makes the test binary act as the bpfvpn command (see
// TestMain), so tests can run the real CLI as another user.
const cliHelperEnv = "BPFVPN_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliHelperEnv) == "1" {
		os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// worldPath makes dir and its parents up to the temporary directory root
// searchable by everyone.
func worldPath(t *testing.T, dir string) {
	t.Helper()
	for ; dir != filepath.Clean(os.TempDir()) && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// cliAsNobody runs the CLI (this test binary in helper mode, copied where
// uid 65534 may execute it) as uid/gid 65534.
func cliAsNobody(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bpfvpn")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	worldPath(t, dir)

	var errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{cliHelperEnv + "=1", "PATH=/usr/bin:/bin"}
	cmd.Stderr = &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), errOut.String()
	}
	t.Fatalf("run CLI as nobody: %v", err)
	return 0, ""
}

func TestShowAsNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the CLI as another user")
	}
	path := fakeDaemon(t, opstest.Reference())

	// The socket's 0600 mode (and its 0700 directory) stop other users at
	// connect.
	worldPath(t, filepath.Dir(filepath.Dir(path)))
	code, stderr := cliAsNobody(t, "show", "security", "ike", "sa", "--socket", path)
	if want := "bpfvpn: permission denied: " + path + " (bpfvpn commands need root)\n"; code != exitPermission || stderr != want {
		t.Errorf("closed socket: exit %d, stderr %q, want %d %q", code, stderr, exitPermission, want)
	}

	// With the file modes opened, the daemon's peer check refuses them.
	worldPath(t, filepath.Dir(path))
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	code, stderr = cliAsNobody(t, "show", "security", "ike", "sa", "--socket", path)
	if want := "bpfvpn: permission denied: uid 65534 may not use the bpfvpn control socket (root only)\n"; code != exitPermission || stderr != want {
		t.Errorf("open socket: exit %d, stderr %q, want %d %q", code, stderr, exitPermission, want)
	}
}
