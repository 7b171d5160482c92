package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsCommandGroups(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help exit code %d, stderr %q", code, errOut.String())
	}
	for _, group := range []string{"daemon", "attach", "detach", "config", "show", "clear", "lab", "version", "completion"} {
		if !strings.Contains(out.String(), "\n  "+group+" ") {
			t.Errorf("--help does not list %q:\n%s", group, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("version exit code %d, stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "bpfvpn ") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestCompletionScript(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"completion", "bash"}, &out, &errOut); code != 0 {
		t.Fatalf("completion exit code %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "__start_bpfvpn") {
		t.Fatalf("bash completion script lacks the bpfvpn entry point")
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"frobnicate"}, &out, &errOut); code == 0 {
		t.Fatalf("unknown command exited 0")
	}
	if !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("stderr %q lacks 'unknown command'", errOut.String())
	}
}
