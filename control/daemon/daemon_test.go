package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/config"
)

// recorder is a Component that records what it was given and fails on
// request.
type recorder struct {
	name string
	mu   sync.Mutex
	// applied holds the VPN-OUT-free fingerprint of each applied config.
	applied []*config.Config
	checks  int
	failOn  func(*config.Config) error
	checkOn func(*config.Config) error
	closed  bool
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Check(ctx context.Context, cfg *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks++
	if r.checkOn != nil {
		return r.checkOn(cfg)
	}
	return nil
}

func (r *recorder) Apply(ctx context.Context, cfg *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOn != nil {
		if err := r.failOn(cfg); err != nil {
			return err
		}
	}
	r.applied = append(r.applied, cfg)
	return nil
}

func (r *recorder) Close() error { r.mu.Lock(); r.closed = true; r.mu.Unlock(); return nil }

func (r *recorder) last() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.applied) == 0 {
		return nil
	}
	return r.applied[len(r.applied)-1]
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.applied) }

func srx1(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("testdata/srx1.set")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// withPolicy adds a trust→vpn policy to text.
func withPolicy(text, name string) string {
	p := "set security policies from-zone trust to-zone vpn policy " + name
	return text + p + " match source-address any\n" + p + " match destination-address any\n" +
		p + " match application junos-ssh\n" + p + " then deny\n"
}

func hasPolicy(cfg *config.Config, name string) bool {
	for _, pc := range cfg.Policies.Contexts {
		for _, p := range pc.Policies {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

type harness struct {
	d       *Daemon
	comps   []*recorder
	cfgPath string
	sock    string
	client  *api.Client
	reload  chan struct{}
	done    chan error
	cancel  context.CancelFunc
}

// startDaemon runs a daemon with recorder components over a temporary
// socket, commit store and configuration file holding text.
func startDaemon(t *testing.T, text string) *harness {
	t.Helper()
	return startDaemonMetrics(t, text, "")
}

func startDaemonMetrics(t *testing.T, text, metricsAddr string) *harness {
	t.Helper()
	return startDaemonOpts(t, text, metricsAddr, nil)
}

// startDaemonWith runs the daemon with the given components; h.comps holds
// the recorders among them.
func startDaemonWith(t *testing.T, text string, comps []Component) *harness {
	t.Helper()
	return startDaemonOpts(t, text, "", comps)
}

func startDaemonOpts(t *testing.T, text, metricsAddr string, given []Component) *harness {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bpfvpn.conf"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemonIn(t, dir, "run", metricsAddr, given)
}

// startDaemonIn runs a daemon on the configuration file and commit store in
// dir (a restart when another daemon used them), its socket in dir/run.
func startDaemonIn(t *testing.T, dir, run, metricsAddr string, given []Component) *harness {
	t.Helper()
	h := &harness{cfgPath: filepath.Join(dir, "bpfvpn.conf"), sock: filepath.Join(dir, run, "bpfvpn.sock"),
		reload: make(chan struct{}), done: make(chan error, 1)}
	var comps []Component
	if given == nil {
		h.comps = []*recorder{{name: "kernel"}, {name: "dataplane"}, {name: "ike"}}
		for _, c := range h.comps {
			comps = append(comps, c)
		}
	} else {
		comps = given
		for _, c := range given {
			switch r := c.(type) {
			case *recorder:
				h.comps = append(h.comps, r)
			case *policyRecorder:
				h.comps = append(h.comps, r.recorder)
			}
		}
	}
	ready := make(chan string, 1)
	d, err := New(Options{ConfigPath: h.cfgPath, SocketPath: h.sock, CommitDir: filepath.Join(dir, "commits"),
		Components: comps, ReconcileInterval: -1, Ready: func(s string) { ready <- s }, MetricsAddr: metricsAddr})
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- d.Run(ctx, h.reload) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-h.done:
		t.Fatalf("daemon exited before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	h.client = api.NewClient(h.sock)
	return h
}

func (h *harness) do(t *testing.T, verb string, args any) (CommitResult, error) {
	t.Helper()
	data, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.client.Do(ctx, api.Request{Verb: verb, Args: data})
	var res CommitResult
	if len(resp.Result) > 0 {
		if jerr := json.Unmarshal(resp.Result, &res); jerr != nil {
			t.Fatalf("decode result: %v", jerr)
		}
	}
	return res, err
}

func TestDaemonAppliesConfigAndServesShow(t *testing.T) {
	h := startDaemon(t, srx1(t))
	for _, c := range h.comps {
		if c.count() != 1 || c.last() == nil {
			t.Fatalf("%s applied %d times", c.name, c.count())
		}
	}
	ctx := context.Background()
	out, err := h.client.Op(ctx, []string{"show", "security", "zones"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range []string{"trust", "untrust", "vpn", "ge-0/0/0.0", "st0.0"} {
		if !strings.Contains(out, z) {
			t.Errorf("show security zones lacks %q:\n%s", z, out)
		}
	}
	out, err = h.client.Op(ctx, []string{"show", "security", "policies"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"VPN-OUT", "VPN-IN", "default-permit"} {
		if !strings.Contains(out, p) {
			t.Errorf("show security policies lacks %q:\n%s", p, out)
		}
	}
	if _, err := h.client.Op(ctx, []string{"show", "security", "frobnicate"}, false); err == nil {
		t.Error("unknown command accepted")
	}
	// The start configuration is rollback 0.
	e, text, err := h.d.store.Get(0)
	if err != nil || string(text) != srx1(t) || e.Source != h.cfgPath {
		t.Fatalf("rollback 0: %+v %v", e, err)
	}
}

func TestCommitInvalidChangesNothing(t *testing.T) {
	h := startDaemon(t, srx1(t))
	bad := srx1(t) + "set security policies from-zone trust to-zone vpn policy BAD match source-address Nowhere-Net\n" +
		"set interfaces st0 unit 16001 family inet address 10.1.1.1/24\n"
	for _, verb := range []string{VerbCommit, VerbCommitCheck} {
		res, err := h.do(t, verb, CommitRequest{Name: "bad.conf", Text: bad})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != CodeInvalid {
			t.Fatalf("%s: error %v, want code %s", verb, err, CodeInvalid)
		}
		if res.Committed || len(res.Diagnostics) == 0 {
			t.Fatalf("%s: result %+v", verb, res)
		}
		for _, d := range res.Diagnostics {
			if !strings.HasPrefix(d, "bad.conf:") {
				t.Errorf("diagnostic without position: %q", d)
			}
		}
	}
	for _, c := range h.comps {
		if c.count() != 1 || c.checks != 0 {
			t.Errorf("%s: %d applies, %d checks after invalid commits", c.name, c.count(), c.checks)
		}
	}
	list, _ := h.d.store.List()
	if len(list) != 1 {
		t.Errorf("store holds %d entries", len(list))
	}
	if data, _ := os.ReadFile(h.cfgPath); string(data) != srx1(t) {
		t.Error("configuration file changed")
	}
}

func TestCommitOnePolicyChangesOnlyThat(t *testing.T) {
	h := startDaemon(t, srx1(t))
	next := withPolicy(srx1(t), "NO-SSH")
	res, err := h.do(t, VerbCommitCheck, CommitRequest{Name: "next.conf", Text: next})
	if err != nil || res.Committed {
		t.Fatalf("check: %+v %v", res, err)
	}
	if h.comps[0].count() != 1 {
		t.Fatal("commit check applied")
	}
	res, err = h.do(t, VerbCommit, CommitRequest{Name: "next.conf", Text: next})
	if err != nil || !res.Committed {
		t.Fatalf("commit: %+v %v", res, err)
	}
	want := []string{"+ security policies from-zone trust to-zone vpn policy NO-SSH"}
	if fmt.Sprint(res.Changes) != fmt.Sprint(want) {
		t.Fatalf("changes %q, want %q", res.Changes, want)
	}
	for _, c := range h.comps {
		if !hasPolicy(c.last(), "NO-SSH") {
			t.Errorf("%s did not get the new policy", c.name)
		}
	}
	if data, _ := os.ReadFile(h.cfgPath); string(data) != next {
		t.Error("configuration file not updated")
	}
	if res.Entry == nil || res.Entry.Index != 0 || res.Entry.Source != "next.conf" {
		t.Errorf("entry %+v", res.Entry)
	}
}

func TestCommitApplyFailureRollsBack(t *testing.T) {
	h := startDaemon(t, srx1(t))
	h.comps[1].failOn = func(cfg *config.Config) error {
		if hasPolicy(cfg, "BROKEN") {
			return errors.New("map update refused")
		}
		return nil
	}
	res, err := h.do(t, VerbCommit, CommitRequest{Name: "next.conf", Text: withPolicy(srx1(t), "BROKEN")})
	if err == nil || res.Committed || !strings.Contains(err.Error(), "dataplane") || !strings.Contains(err.Error(), "previous configuration restored") {
		t.Fatalf("commit: %+v %v", res, err)
	}
	// kernel applied next and then prev again; dataplane failed and got prev;
	// ike never saw next.
	if c := h.comps[0]; c.count() != 3 || hasPolicy(c.last(), "BROKEN") || !hasPolicy(c.applied[1], "BROKEN") {
		t.Errorf("kernel applies %d, last has BROKEN %v", c.count(), hasPolicy(c.last(), "BROKEN"))
	}
	if c := h.comps[1]; c.count() != 2 || hasPolicy(c.last(), "BROKEN") {
		t.Errorf("dataplane applies %d", c.count())
	}
	if c := h.comps[2]; c.count() != 1 {
		t.Errorf("ike applies %d", c.count())
	}
	if cfg, _ := h.d.activeConfig(); hasPolicy(cfg, "BROKEN") {
		t.Error("active configuration changed")
	}
	if list, _ := h.d.store.List(); len(list) != 1 {
		t.Errorf("store holds %d entries", len(list))
	}
}

func TestCommitCheckAgainstRunningState(t *testing.T) {
	h := startDaemon(t, srx1(t))
	h.comps[2].checkOn = func(cfg *config.Config) error {
		if hasPolicy(cfg, "CLASH") {
			return errors.New("clashes with running state")
		}
		return nil
	}
	_, err := h.do(t, VerbCommitCheck, CommitRequest{Name: "x", Text: withPolicy(srx1(t), "CLASH")})
	if err == nil || !strings.Contains(err.Error(), "clashes") {
		t.Fatalf("commit check: %v", err)
	}
	_, err = h.do(t, VerbCommit, CommitRequest{Name: "x", Text: withPolicy(srx1(t), "CLASH")})
	if err == nil || h.comps[0].count() != 1 {
		t.Fatalf("commit: %v, kernel applies %d", err, h.comps[0].count())
	}
}

func TestRollbackAndReload(t *testing.T) {
	h := startDaemon(t, srx1(t))
	for _, name := range []string{"P1", "P2"} {
		if _, err := h.do(t, VerbCommit, CommitRequest{Name: name, Text: withPolicy(srx1(t), name)}); err != nil {
			t.Fatal(err)
		}
	}
	// rollback 2 = the start configuration.
	res, err := h.do(t, VerbRollback, RollbackRequest{N: 2})
	if err != nil || !res.Committed {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if cfg, _ := h.d.activeConfig(); hasPolicy(cfg, "P1") || hasPolicy(cfg, "P2") {
		t.Fatal("rollback 2 kept a policy")
	}
	if _, err := h.do(t, VerbRollback, RollbackRequest{N: 9}); err == nil {
		t.Fatal("rollback 9 succeeded")
	}
	// SIGHUP: the edited file is committed.
	if err := os.WriteFile(h.cfgPath, []byte(withPolicy(srx1(t), "HUP")), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reload <- struct{}{}
	deadline := time.Now().Add(30 * time.Second)
	for !hasPolicy(h.comps[2].last(), "HUP") {
		if time.Now().After(deadline) {
			t.Fatal("reload not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The reload holds commitMu until it has written the file back.
	h.d.commitMu.Lock()
	h.d.commitMu.Unlock()
	// A broken file on reload changes nothing.
	n := h.comps[0].count()
	os.WriteFile(h.cfgPath, []byte(srx1(t)+"set interfaces st0 unit 16001 family inet address 10.1.1.1/24\n"), 0o600)
	h.reload <- struct{}{}
	h.reload <- struct{}{} // the second send returns once the first reload is done
	h.d.commitMu.Lock()
	h.d.commitMu.Unlock()
	if h.comps[0].count() != n {
		t.Fatal("broken reload applied")
	}
	if cfg, _ := h.d.activeConfig(); !hasPolicy(cfg, "HUP") {
		t.Fatal("broken reload changed the active configuration")
	}
}

func TestStopClosesComponentsWithoutUndo(t *testing.T) {
	h := startDaemon(t, srx1(t))
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
	h.done <- nil // for the cleanup
	for _, c := range h.comps {
		if !c.closed || c.count() != 1 {
			t.Errorf("%s: closed %v applies %d", c.name, c.closed, c.count())
		}
	}
}

func TestInvalidStartConfigFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.conf")
	os.WriteFile(p, []byte("set interfaces st0 unit 16001 family inet address 10.1.1.1/24\n"), 0o600)
	d, err := New(Options{ConfigPath: p, SocketPath: filepath.Join(dir, "s"), CommitDir: filepath.Join(dir, "c"), Components: []Component{}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background(), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "c.conf:1:") {
		t.Fatalf("Run: %v", err)
	}
}

func TestMetricsServed(t *testing.T) {
	h := startDaemonMetrics(t, srx1(t), "127.0.0.1:0")
	resp, err := http.Get("http://" + h.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"bpfvpn_up 1", "bpfvpn_tunnels 1", `bpfvpn_tunnel_up{interface="st0.0",vpn="VPN-to-Host2"} 0`,
		`bpfvpn_policy_hits_total{from_zone="trust",policy="VPN-OUT",to_zone="vpn"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
