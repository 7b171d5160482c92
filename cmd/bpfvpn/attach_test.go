package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runAttachCLI(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String() + errb.String()
}

// TestAttachExitCodes: every refusal happens before anything is loaded.
func TestAttachExitCodes(t *testing.T) {
	if code, msg := runAttachCLI("attach", "eth0"); code != exitUsage || !strings.Contains(msg, "--config") {
		t.Errorf("attach without --config: %d %q", code, msg)
	}
	if os.Geteuid() != 0 {
		if code, msg := runAttachCLI("attach", "eth0", "--config", "x.set"); code != exitNotRoot || !strings.Contains(msg, "root") {
			t.Errorf("attach as non-root: %d %q", code, msg)
		}
		t.Skip("the remaining cases run as root")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.set")
	os.WriteFile(bad, []byte("set security zones security-zone\n"), 0o600)
	if code, msg := runAttachCLI("attach", "lo", "--config", bad, "--instance", "dpclitest"); code != exitBadConfig || !strings.Contains(msg, "nothing attached") {
		t.Errorf("invalid config: %d %q", code, msg)
	}
	good := filepath.Join(dir, "good.set")
	os.WriteFile(good, []byte("set interfaces nosuch9 unit 0 family inet address 10.0.0.1/24\nset security zones security-zone a interfaces nosuch9.0\n"), 0o600)
	if code, msg := runAttachCLI("attach", "nosuch9", "--config", good, "--instance", "dpclitest"); code != exitNoIface || !strings.Contains(msg, "nosuch9") {
		t.Errorf("missing interface: %d %q", code, msg)
	}
	if _, err := os.Stat("/sys/fs/bpf/bpfvpn/dpclitest"); err == nil {
		t.Error("a refused attach left pins behind")
	}
	if code, msg := runAttachCLI("status", "--instance", "dpclitest"); code != exitFailure || !strings.Contains(msg, "not attached") {
		t.Errorf("status of an absent instance: %d %q", code, msg)
	}
}
