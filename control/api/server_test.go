package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/ops"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// startServer runs a server with p on a fresh socket path whose directory
// does not exist yet, and stops it when the test ends.
func startServer(t *testing.T, p ops.Provider) (string, *api.Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "bpfvpn", "bpfvpn.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, srv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpRoundTrip(t *testing.T) {
	p := opstest.Reference()
	path, _ := startServer(t, p)
	c := api.NewClient(path)
	ctx := testCtx(t)
	for _, cmd := range []string{
		"show security ike security-associations",
		"show security ipsec sa index 131073 detail",
		"show security ipsec statistics",
		"show route | match st0",
	} {
		for _, asJSON := range []bool{false, true} {
			want, err := ops.Run(ctx, opstest.Reference(), strings.Fields(cmd), asJSON)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Op(ctx, strings.Fields(cmd), asJSON)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if got != want {
				t.Errorf("%s (json %v): got\n%s\nwant\n%s", cmd, asJSON, got, want)
			}
		}
	}
	if _, err := c.Op(ctx, strings.Fields("clear security ipsec statistics index 131073"), false); err != nil {
		t.Fatal(err)
	}
	if got := p.Clears(); len(got) != 1 || got[0] != (opstest.Clear{What: "ipsec-statistics", Index: 131073}) {
		t.Errorf("clears %v", got)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestErrorsTravelBack(t *testing.T) {
	p := opstest.Reference()
	path, _ := startServer(t, p)
	c := api.NewClient(path)
	ctx := testCtx(t)

	_, err := c.Op(ctx, strings.Fields("show security frob"), false)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeSyntax {
		t.Fatalf("syntax error came back as %#v", err)
	}
	_, perr := ops.Parse(strings.Fields("show security frob"))
	if ae.Message != perr.Error() {
		t.Errorf("syntax message %q, want %q", ae.Message, perr.Error())
	}

	p.Update(func(_ *opstest.State, e *error) { *e = errors.New("no tunnel configured") })
	_, err = c.Op(ctx, strings.Fields("show security ipsec sa"), false)
	if !errors.As(err, &ae) || ae.Code != api.CodeFailed || ae.Message != "ipsec security-associations: no tunnel configured" {
		t.Fatalf("provider error came back as %#v", err)
	}

	_, err = c.Do(ctx, api.Request{Verb: "commit"})
	if !errors.As(err, &ae) || ae.Code != api.CodeUnknownVerb {
		t.Fatalf("unknown verb came back as %#v", err)
	}
}

func TestCustomVerb(t *testing.T) {
	path, srv := startServer(t, nil)
	srv.Handle("status", api.HandlerFunc(func(_ context.Context, req api.Request) (api.Response, error) {
		var args struct{ Verbose bool }
		if err := json.Unmarshal(req.Args, &args); err != nil {
			return api.Response{}, api.Errorf(api.CodeBadRequest, "status args: %v", err)
		}
		return api.Response{Output: "running\n", Result: json.RawMessage(`{"tunnels":1}`)}, nil
	}))
	c := api.NewClient(path)
	resp, err := c.Do(testCtx(t), api.Request{Verb: "status", Args: json.RawMessage(`{"Verbose":true}`)})
	if err != nil || !resp.OK || resp.Output != "running\n" || string(resp.Result) != `{"tunnels":1}` {
		t.Fatalf("status: %+v, %v", resp, err)
	}
	// Without a provider the server has no "op" verb.
	if _, err := c.Op(testCtx(t), []string{"show", "route"}, false); err == nil {
		t.Fatal("op served without a provider")
	}
}

// rawExchange sends lines on one connection and returns the response lines.
func rawExchange(t *testing.T, path string, lines ...string) []api.Response {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	var out []api.Response
	for _, l := range lines {
		if _, err := conn.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
		b, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read response to %.40q: %v", l, err)
		}
		var resp api.Response
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("response %q: %v", b, err)
		}
		out = append(out, resp)
	}
	return out
}

func TestProtocolOnOneConnection(t *testing.T) {
	path, _ := startServer(t, opstest.Reference())
	resps := rawExchange(t, path,
		`{"version":1,"verb":"op","words":["show","security","ike","sa"]}`,
		`{"version":2,"verb":"op","words":["show","route"]}`,
		`not json`,
		`{"version":1}`,
		`{"version":1,"verb":"op","words":["show","security","zones"],"json":true}`,
	)
	if !resps[0].OK || !strings.HasPrefix(resps[0].Output, "Index   State") || resps[0].Version != api.Version {
		t.Errorf("first: %+v", resps[0])
	}
	wantCodes := []string{"", api.CodeVersion, api.CodeBadRequest, api.CodeBadRequest, ""}
	for i, code := range wantCodes {
		got := ""
		if resps[i].Error != nil {
			got = resps[i].Error.Code
		}
		if got != code {
			t.Errorf("response %d: code %q, want %q (%+v)", i, got, code, resps[i])
		}
	}
	if !strings.Contains(resps[4].Output, `"name": "vpn"`) {
		t.Errorf("json zones: %q", resps[4].Output)
	}
}

func TestOversizedRequest(t *testing.T) {
	path, _ := startServer(t, opstest.Reference())
	big := `{"version":1,"verb":"op","words":["` + strings.Repeat("a", api.MaxRequestBytes) + `"]}`
	resps := rawExchange(t, path, big)
	if resps[0].Error == nil || resps[0].Error.Code != api.CodeBadRequest {
		t.Fatalf("oversized request: %+v", resps[0])
	}
}

// A request the size of a 100,000-policy configuration (~36 MB in set
// form) is read and answered, not refused as oversized.
func TestLargeRequestAccepted(t *testing.T) {
	path, _ := startServer(t, opstest.Reference())
	large := `{"version":1,"verb":"op","words":["` + strings.Repeat("a", 40<<20) + `"]}`
	resps := rawExchange(t, path, large)
	if e := resps[0].Error; e != nil && e.Code == api.CodeBadRequest {
		t.Fatalf("40 MiB request refused: %+v", e)
	}
}

func TestSocketModes(t *testing.T) {
	path, _ := startServer(t, opstest.Reference())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", di.Mode().Perm())
	}
}

func TestListenStaleAndBusy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")

	// A socket left behind by a dead daemon: connecting is refused.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	_, err = api.NewClient(path).Op(testCtx(t), []string{"show", "route"}, false)
	if err == nil || err.Error() != "bpfvpn daemon is not running (stale socket at "+path+")" {
		t.Errorf("stale socket: %v", err)
	}
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	if _, err := api.Listen(path); err == nil || !strings.Contains(err.Error(), "another bpfvpn daemon is listening") {
		t.Errorf("second Listen: %v", err)
	}

	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a plain file: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	_, err := api.NewClient(path).Op(testCtx(t), []string{"show", "route"}, false)
	var nr *api.NotRunningError
	if !errors.As(err, &nr) || err.Error() != "bpfvpn daemon is not running (no socket at "+path+")" {
		t.Fatalf("missing socket: %v", err)
	}
}

func TestServeRemovesSocketOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(opstest.Reference(), nil).Serve(ctx, ln) }()
	// An idle open connection must not keep Serve from returning.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := api.NewClient(path).Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after stop: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv(api.SocketEnv, "")
	if got := api.SocketPath(""); got != api.DefaultSocketPath {
		t.Errorf("default %q", got)
	}
	t.Setenv(api.SocketEnv, "/tmp/env.sock")
	if got := api.SocketPath(""); got != "/tmp/env.sock" {
		t.Errorf("env %q", got)
	}
	if got := api.SocketPath("/tmp/flag.sock"); got != "/tmp/flag.sock" {
		t.Errorf("flag %q", got)
	}
}
