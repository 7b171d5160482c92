package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

func TestLabConfigCommand(t *testing.T) {
	code, out, errOut := run(t, "lab", "config", "srx2", "--ike-version", "v2-only")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"set system interface-map ge-0/0/1 eth1\n", "set security ike gateway IKE-GW address 172.16.13.1\n",
		"set security ike gateway IKE-GW version v2-only\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if code, _, _ := run(t, "lab", "config", "host1"); code != 2 {
		t.Errorf("lab config host1: exit %d, want 2", code)
	}
}

func TestLabUpStatusPingDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	prefix := "ktcli" + hex.EncodeToString(b[:]) + "-"
	dir := t.TempDir()
	t.Cleanup(func() { run(t, "lab", "down", "--prefix", prefix, "--dir", dir) })
	if code, out, errOut := run(t, "lab", "up", "--topology-only", "--prefix", prefix, "--config-dir", dir); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	if fi, err := os.Stat(dir + "/srx1.conf"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("srx1.conf: %v, %v", fi, err)
	}
	code, out, _ := run(t, "lab", "status", "--prefix", prefix)
	if code != 0 || !strings.Contains(out, prefix+"srx1") || !strings.Contains(out, "eth1 up 172.16.13.1/24") {
		t.Errorf("lab status: exit %d\n%s", code, out)
	}
	if code, out, errOut := run(t, "lab", "ping", "--prefix", prefix, "-c", "2", "host1", "10.100.11.1"); code != 0 {
		t.Errorf("lab ping host1 -> srx1: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := run(t, "lab", "down", "--prefix", prefix, "--dir", dir); code != 0 {
		t.Errorf("lab down: exit %d", code)
	}
	if code, _, _ := run(t, "lab", "status", "--prefix", prefix); code != 1 {
		t.Errorf("lab status after down: exit %d, want 1", code)
	}
}
