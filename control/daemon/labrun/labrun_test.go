package labrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/lab"
)

// newTestRun returns a lab with a unique namespace prefix and a temporary
// directory, removed when the test ends.
func newTestRun(t *testing.T, cfg lab.ConfigOptions, dataplane bool) *Run {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	b := make([]byte, 3)
	rand.Read(b)
	var out strings.Builder
	r := New(Options{Prefix: "gwl" + hex.EncodeToString(b) + "-", Dir: t.TempDir(), Env: []string{daemonEnv + "=1"},
		Config: cfg, TunnelTimeout: 90 * time.Second, Out: &logWriter{t: t}, NoDataplane: !dataplane})
	_ = out
	t.Cleanup(func() {
		if t.Failed() {
			for _, gw := range Gateways {
				t.Logf("%s log tail:\n%s", gw, tail(r.LogPath(gw), 40))
			}
			if r.Charon() != nil {
				t.Logf("%s charon log tail:\n%s", lab.SRX2, tail(filepath.Join(r.CharonDir(), "charon.log"), 60))
			}
		}
		if err := r.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return r
}

type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// On the build machine's kernel the gateways start and answer, but st0
// cannot be created (no xfrm interfaces): Up reports the tunnel missing with
// the reason, and Down removes everything.
func TestLabDaemonsStartAndStopOnHost(t *testing.T) {
	r := newTestRun(t, lab.ConfigOptions{}, false)
	ctx := context.Background()
	r.opts.TunnelTimeout = 3 * time.Second
	err := r.Up(ctx, false)
	if err == nil {
		t.Skip("the tunnel came up: this kernel has xfrm interfaces (the VM tests cover it)")
	}
	if !strings.Contains(err.Error(), "tunnel not up") {
		t.Fatalf("Up: %v", err)
	}
	running := r.Running()
	if len(running) != 2 {
		t.Fatalf("daemons running: %v", running)
	}
	for _, gw := range Gateways {
		st, err := r.Status(ctx, gw)
		if err != nil {
			t.Fatalf("%s status: %v", gw, err)
		}
		if len(st.Tunnels) != 1 || st.Tunnels[0].Up || st.ApplyError == "" {
			t.Errorf("%s status %+v", gw, st)
		}
	}
	// The daemons applied the WAN addresses: the namespaces are addressed.
	status, err := r.Lab().Status()
	if err != nil {
		t.Fatal(err)
	}
	if !lab.Complete(status) {
		t.Errorf("lab incomplete: %+v", status)
	}
	// Up again is idempotent: the daemons keep their pids.
	r.opts.TunnelTimeout = time.Second
	r.Up(ctx, false)
	if again := r.Running(); again[lab.SRX1] != running[lab.SRX1] || again[lab.SRX2] != running[lab.SRX2] {
		t.Errorf("daemons restarted: %v → %v", running, again)
	}
	if err := r.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for gw, pid := range running {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("%s daemon %d still running", gw, pid)
		}
	}
	for _, n := range lab.Nodes {
		if lab.NamedExists(r.Lab().Namespace(n)) {
			t.Errorf("namespace of %s left", n)
		}
	}
}
