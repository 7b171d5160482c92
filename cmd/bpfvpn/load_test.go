package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonProcessLoadSet: `bpfvpn load set -` changes one policy of the
// running daemon (real data plane in a namespace) from standard input;
// an invalid delta names its line and changes nothing; rollback 1 restores
// the configuration file.
func TestDaemonProcessLoadSet(t *testing.T) {
	p := startDaemonProcess(t, gatewayConfig)

	bad := filepath.Join(t.TempDir(), "bad.set")
	os.WriteFile(bad, []byte("set security policies from-zone trust to-zone trust policy intra then count\n"+
		"set security policies from-zone trust to-zone trust policy web match destination-address Nowhere\n"), 0o600)
	for _, args := range [][]string{{"load", "set", "--check", bad}, {"load", "set", bad}} {
		out, errOut, code := p.cli(t, args...)
		if code != 1 || !strings.Contains(errOut, bad+":2:") || strings.Contains(out, "commit complete") {
			t.Fatalf("%v: code %d\nstdout %s\nstderr %s", args, code, out, errOut)
		}
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = stdin })
	w.WriteString("set security policies from-zone trust to-zone trust policy ssh match source-address any\n" +
		"set security policies from-zone trust to-zone trust policy ssh match destination-address any\n" +
		"set security policies from-zone trust to-zone trust policy ssh match application junos-ssh\n" +
		"set security policies from-zone trust to-zone trust policy ssh then deny\n" +
		"insert security policies from-zone trust to-zone trust policy ssh before policy intra\n")
	w.Close()
	out, errOut, code := p.cli(t, "load", "set", "-", "-m", "deny ssh")
	if code != 0 || !strings.Contains(out, "+ security policies from-zone trust to-zone trust policy ssh") || !strings.Contains(out, "commit complete") {
		t.Fatalf("load set -: %d %s %s", code, out, errOut)
	}
	out, _, code = p.cli(t, "show", "security", "policies")
	if code != 0 || strings.Index(out, "ssh") < 0 || strings.Index(out, "ssh") > strings.Index(out, "intra") {
		t.Fatalf("show security policies after load set: %d\n%s", code, out)
	}
	out, _, code = p.cli(t, "rollback")
	if code != 0 || !strings.Contains(out, "(deny ssh)") {
		t.Fatalf("rollback list: %d %s", code, out)
	}
	if data, _ := os.ReadFile(p.conf); !strings.Contains(string(data), "policy ssh then deny") {
		t.Fatalf("configuration file after load set:\n%s", data)
	}
	out, errOut, code = p.cli(t, "rollback", "1")
	if code != 0 || !strings.Contains(out, "- security policies from-zone trust to-zone trust policy ssh") {
		t.Fatalf("rollback 1: %d %s %s", code, out, errOut)
	}
	if data, _ := os.ReadFile(p.conf); string(data) != gatewayConfig {
		t.Fatalf("configuration file after rollback:\n%s", data)
	}
}
