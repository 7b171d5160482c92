package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// fakeDaemon serves p on a temporary control socket for the test's life.
func fakeDaemon(t *testing.T, p ops.Provider) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bpfvpn.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(p, nil).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fake daemon: %v", err)
		}
	})
	return path
}

func TestShowAgainstFakeDaemon(t *testing.T) {
	path := fakeDaemon(t, opstest.Reference())
	cases := []struct {
		args   []string
		words  string
		asJSON bool
	}{
		{[]string{"show", "security", "ike", "security-associations"}, "show security ike security-associations", false},
		{[]string{"show", "sec", "ipsec", "sa", "index", "131073", "detail"}, "show security ipsec security-associations index 131073 detail", false},
		{[]string{"show", "security", "ipsec", "statistics", "--json"}, "show security ipsec statistics", true},
		{[]string{"show", "security", "zones", "|", "display", "json"}, "show security zones", true},
		{[]string{"show", "interfaces", "st0", "terse"}, "show interfaces st0 terse", false},
		{[]string{"show", "route", "|", "match", "st0"}, "show route | match st0", false},
	}
	for _, tc := range cases {
		code, stdout, stderr := run(t, append(tc.args, "--socket", path)...)
		if code != 0 {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
			continue
		}
		want, err := ops.Run(context.Background(), opstest.Reference(), strings.Fields(tc.words), tc.asJSON)
		if err != nil {
			t.Fatal(err)
		}
		if stdout != want {
			t.Errorf("%v: stdout\n%s\nwant\n%s", tc.args, stdout, want)
		}
		if tc.asJSON && !json.Valid([]byte(stdout)) {
			t.Errorf("%v: output is not JSON", tc.args)
		}
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	path := fakeDaemon(t, opstest.Reference())
	t.Setenv(api.SocketEnv, path)
	if code, stdout, stderr := run(t, "show", "security", "ike", "sa"); code != 0 || !strings.HasPrefix(stdout, "Index   State") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestClearAgainstFakeDaemon(t *testing.T) {
	p := opstest.Reference()
	path := fakeDaemon(t, p)
	if code, stdout, stderr := run(t, "clear", "security", "ipsec", "statistics", "--socket", path); code != 0 || stdout != "" {
		t.Fatalf("clear ipsec statistics: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "clear", "sec", "ike", "sa", "index", "1512635", "--socket", path); code != 0 {
		t.Fatalf("clear ike sa: exit %d, stderr %q", code, stderr)
	}
	want := []opstest.Clear{{What: "ipsec-statistics"}, {What: "ike-security-associations", Index: 1512635}}
	if got := p.Clears(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("clears %v, want %v", got, want)
	}
}

// TestClearFlowSessionAgainstFakeDaemon: the words reach the daemon's
// provider as a filter and its count comes back as text or JSON; without
// all or a filter, and with a bad value, the CLI answers a syntax error
// itself.
func TestClearFlowSessionAgainstFakeDaemon(t *testing.T) {
	p := opstest.Reference()
	path := fakeDaemon(t, p)
	code, stdout, stderr := run(t, "clear", "security", "flow", "session", "protocol", "tcp", "destination-port", "22", "--socket", path)
	if code != 0 || stdout != "1 active sessions cleared\n" {
		t.Fatalf("clear by filter: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "clear", "sec", "fl", "se", "all", "--json", "--socket", path)
	if code != 0 || stdout != "{\n  \"sessions-cleared\": 1\n}\n" {
		t.Fatalf("clear all --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	clears := p.Clears()
	if len(clears) != 2 || clears[0].What != "flow-sessions" || clears[0].Filter.Protocol == nil || *clears[0].Filter.Protocol != 6 ||
		clears[0].Filter.DestinationPort == nil || *clears[0].Filter.DestinationPort != 22 || clears[1].Filter != (ops.SessionFilter{}) {
		t.Fatalf("clears %+v", clears)
	}
	if got := p.State.Sessions.Sessions; len(got) != 0 {
		t.Errorf("sessions left %+v", got)
	}

	none := filepath.Join(t.TempDir(), "none.sock")
	code, stdout, stderr = run(t, "clear", "security", "flow", "session", "--socket", none)
	if code != exitSyntax || stdout != "" || !strings.HasPrefix(stderr, "clear security flow session\n                            ^\nsyntax error, expecting <command>.\n") ||
		!strings.Contains(stderr, "\n  all                  Clear all sessions\n") {
		t.Fatalf("bare clear security flow session: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = run(t, "clear", "security", "flow", "session", "source-prefix", "10.1.1.300/24", "--socket", none)
	if code != exitSyntax || !strings.Contains(stderr, "syntax error, expecting <prefix>: '10.1.1.300/24' is not an IP address or prefix.") {
		t.Fatalf("bad prefix: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = run(t, "clear", "security", "flow", "session", "destination-port", "http", "--socket", none)
	if code != exitSyntax || !strings.Contains(stderr, "'http' is not a port (0-65535).") {
		t.Fatalf("bad port: exit %d, stderr %q", code, stderr)
	}
}

func TestShowSyntaxErrorNeedsNoDaemon(t *testing.T) {
	code, stdout, stderr := run(t, "show", "security", "frob", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitSyntax || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	want := "show security frob\n              ^\nsyntax error, expecting <command>.\n"
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "Possible completions:\n  flow ") {
		t.Fatalf("stderr %q", stderr)
	}
	if code, _, stderr := run(t, "show"); code != exitSyntax || !strings.Contains(stderr, "  security             Show security information") {
		t.Fatalf("bare show: exit %d, stderr %q", code, stderr)
	}
}

func TestShowDaemonNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bpfvpn.sock")
	code, stdout, stderr := run(t, "show", "security", "ike", "sa", "--socket", path)
	if code != exitNotRunning || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if want := "bpfvpn: bpfvpn daemon is not running (no socket at " + path + ")\n"; stderr != want {
		t.Fatalf("stderr %q, want %q", stderr, want)
	}
}

func TestShowPermissionDenied(t *testing.T) {
	// A server that refuses the peer the way the daemon refuses non-root
	// callers.
	path := filepath.Join(t.TempDir(), "bpfvpn.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		json.NewEncoder(c).Encode(api.Response{Version: api.Version, Error: &api.Error{
			Code: api.CodePermissionDenied, Message: "permission denied: uid 1000 may not use the bpfvpn control socket (root only)"}})
	}()
	code, _, stderr := run(t, "show", "route", "--socket", path)
	if code != exitPermission || stderr != "bpfvpn: permission denied: uid 1000 may not use the bpfvpn control socket (root only)\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestShowDaemonError(t *testing.T) {
	p := opstest.Reference()
	p.Err = errPlain("no tunnel configured")
	path := fakeDaemon(t, p)
	code, _, stderr := run(t, "show", "security", "ipsec", "sa", "--socket", path)
	if code != exitFailed || stderr != "bpfvpn: ipsec security-associations: no tunnel configured\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }

func TestShowCompletion(t *testing.T) {
	code, stdout, _ := run(t, "__complete", "show", "security", "i")
	if code != 0 || !strings.Contains(stdout, "ike\tShow Internet Key Exchange information") || !strings.Contains(stdout, "ipsec\t") {
		t.Fatalf("exit %d, completions %q", code, stdout)
	}
}
