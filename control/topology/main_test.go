package topology

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/daemon/labrun"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// daemonEnv makes the test binary act as `bpfvpn daemon` (labrun starts the
// gateways from it), so the tests need no built bpfvpn binary.
const daemonEnv = "BPFVPN_TOPOLOGY_TEST_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		go dumpGoroutinesOnSignal()
		go profileCPUOnSignal()
		go heapProfileOnSignal()
		os.Exit(labrun.RunDaemon(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runDaemon parses the arguments labrun passes and runs the daemon.

// newLab returns a two-site lab (labrun) with a unique namespace prefix and
// a temporary directory, torn down when the test ends.
func newLab(t *testing.T, cfg lab.ConfigOptions, dataplane bool) *labrun.Run {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	b := make([]byte, 3)
	rand.Read(b)
	r := labrun.New(labrun.Options{Prefix: "tpo" + hex.EncodeToString(b) + "-", Dir: t.TempDir(),
		Env: []string{daemonEnv + "=1"}, Config: cfg, TunnelTimeout: 120 * time.Second,
		Out: &logWriter{t: t}, NoDataplane: !dataplane})
	t.Cleanup(func() {
		if t.Failed() {
			for _, gw := range labrun.Gateways {
				data, _ := os.ReadFile(r.LogPath(gw))
				lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("%s log tail:\n%s", gw, strings.Join(lines, "\n"))
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

// commit commits text on gw's daemon and fails the test unless it applied.
func commit(t *testing.T, r *labrun.Run, gw, text string) daemon.CommitResult {
	t.Helper()
	args, _ := json.Marshal(daemon.CommitRequest{Name: gw + "-topo.conf", Text: text})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := api.NewClient(r.Socket(gw)).Do(ctx, api.Request{Verb: daemon.VerbCommit, Args: args})
	var res daemon.CommitResult
	if len(resp.Result) > 0 {
		json.Unmarshal(resp.Result, &res)
	}
	if err != nil || !res.Committed {
		t.Fatalf("%s: commit: %+v %v", gw, res, err)
	}
	return res
}

// op runs an operational command on gw.
func op(t *testing.T, r *labrun.Run, gw string, words ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := api.NewClient(r.Socket(gw)).Op(ctx, words, false)
	if err != nil {
		t.Fatalf("%s> %s: %v", gw, strings.Join(words, " "), err)
	}
	return out
}
