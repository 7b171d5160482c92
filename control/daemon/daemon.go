package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon/commitlog"
)

// DefaultReconcileInterval is how often the daemon re-applies the active
// configuration to repair drift (a deleted route, a failed earlier apply).
const DefaultReconcileInterval = 30 * time.Second

// Options configure a Daemon.
type Options struct {
	// ConfigPath is the configuration file loaded at start and on reload
	// (SIGHUP); commits write the committed configuration back to it.
	ConfigPath string
	// SocketPath is the control socket ("" = api.DefaultSocketPath).
	SocketPath string
	// MetricsAddr is host:port for Prometheus metrics ("" = off).
	MetricsAddr string
	// CommitDir holds the last committed configurations ("" =
	// commitlog.DefaultDir); CommitKeep how many (0 = commitlog.DefaultKeep).
	CommitDir  string
	CommitKeep int
	// Logger receives the daemon's logs (nil discards).
	Logger *slog.Logger
	// NoDataplane leaves the eBPF data plane out of DefaultComponents.
	NoDataplane bool
	// Instance names the data plane's pin directory under
	// /sys/fs/bpf/bpfvpn ("" = the network namespace's name).
	Instance string
	// Components apply the configuration, in order. Nil means
	// DefaultComponents.
	Components []Component
	// ReconcileInterval is the period of re-applying the active
	// configuration (0 = DefaultReconcileInterval, negative = never).
	ReconcileInterval time.Duration
	// Ready is called once the daemon serves its socket (after the first
	// apply); nil sends READY=1 to systemd via $NOTIFY_SOCKET.
	Ready func(status string)
}

// Daemon is a running gateway.
type Daemon struct {
	opts       Options
	log        *slog.Logger
	components []Component
	store      *commitlog.Store
	state      *State

	commitMu sync.Mutex // serialises commits, rollbacks and reloads

	mu         sync.Mutex
	active     *config.Config
	activeText []byte
	// activeTail are the delta lines appended to the configuration file
	// after activeText (the active text is both); activeSize is the
	// length of the two.
	activeTail [][]byte
	activeSize int
	// activeTree is the parsed form of active, edited in place by delta
	// commits (only under commitMu); nil until a delta needs it.
	activeTree *config.Tree
	// activeSetForm is true when the text of the active configuration (once
	// persisted) is in set form, so that a set delta can be appended to it.
	activeSetForm bool
	// appendedBytes are the delta lines appended to the active text since
	// it was last written whole.
	appendedBytes int
	// fileEndsNL is true when the configuration file ends with a newline
	// (or is empty) once the queued persists have run.
	fileEndsNL bool
	// persistDone is closed when the last queued persist (commit store
	// entry, configuration file) has finished; fileRewrite when the last
	// one that replaces the configuration file whole has.
	persistDone, fileRewrite <-chan struct{}
	// beforePersist, when set (tests), runs before each persist writes.
	beforePersist func()
	// rendering counts renderings of activeTree into a commit's text that
	// are under way; a delta edits the tree only when there is none.
	rendering sync.WaitGroup
	// activeObj are the fingerprints of active's objects (see Diff), nil
	// until first needed.
	activeObj *objects
	lastApply error
	started   time.Time
	nowFunc   func() time.Time
	// metricsAddr is the bound metrics address (for tests with port 0).
	metricsAddr string
}

// New prepares a daemon; Run starts it.
func New(opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ReconcileInterval == 0 {
		opts.ReconcileInterval = DefaultReconcileInterval
	}
	store, err := commitlog.Open(opts.CommitDir, opts.CommitKeep)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: log, store: store, nowFunc: time.Now}
	d.state = newState(d)
	d.components = opts.Components
	if d.components == nil {
		comps, err := DefaultComponents(d.state, log, opts.Instance, !opts.NoDataplane)
		if err != nil {
			return nil, err
		}
		d.components = comps
	}
	return d, nil
}

func (d *Daemon) now() time.Time { return d.nowFunc() }

func (d *Daemon) activeConfig() (*config.Config, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.activeTail) > 0 {
		// Joined only when needed (a whole-file commit compares with it).
		n := len(d.activeText)
		for _, l := range d.activeTail {
			n += len(l)
		}
		text := make([]byte, 0, n)
		text = append(text, d.activeText...)
		for _, l := range d.activeTail {
			text = append(text, l...)
		}
		d.activeText, d.activeTail = text, nil
	}
	return d.active, d.activeText
}

// setActive makes cfg (parsed as tree) the active configuration. A nil
// text is set later by the commit's persist (setActiveText).
func (d *Daemon) setActive(cfg *config.Config, tree *config.Tree, text []byte) {
	d.mu.Lock()
	d.active, d.activeTree, d.activeObj = cfg, tree, nil
	if text != nil {
		d.activeText, d.activeTail, d.activeSize = text, nil, len(text)
		d.activeSetForm = config.DetectFormat(text) == config.FormatSet
		d.appendedBytes = 0
		d.fileEndsNL = len(text) == 0 || text[len(text)-1] == '\n'
	}
	d.mu.Unlock()
	d.state.setConfig(cfg)
}

// setActiveDelta makes cfg active after a delta that changed only the named
// policies of prev: the cached object hashes are updated for those (and
// for the zone pairs they are in, which are hashed again when next needed).
func (d *Daemon) setActiveDelta(cfg *config.Config, tree *config.Tree, prev *config.Config, refs []config.PolicyRef) {
	d.mu.Lock()
	objs := d.activeObj
	d.active, d.activeTree = cfg, tree
	if objs != nil {
		objs.policiesChanged(cfg, refs)
	}
	d.mu.Unlock()
	d.state.setConfig(cfg)
}

func (d *Daemon) setActiveText(text []byte) {
	d.mu.Lock()
	d.activeText, d.activeTail, d.activeSize = text, nil, len(text)
	d.mu.Unlock()
}

// activeTreeFor returns the tree of the active configuration, parsing the
// active text again when there is none (the first delta after a start).
// The caller holds commitMu.
func (d *Daemon) activeTreeFor() (*config.Tree, error) {
	d.mu.Lock()
	tree := d.activeTree
	d.mu.Unlock()
	if tree != nil {
		return tree, nil
	}
	d.waitPersisted()
	d.mu.Lock()
	name := d.opts.ConfigPath
	d.mu.Unlock()
	_, text := d.activeConfig()
	if text == nil {
		return nil, errors.New("no active configuration to apply the delta to")
	}
	tree, _, _, err := parse(name, text)
	if err != nil {
		return nil, fmt.Errorf("active configuration: %w", err)
	}
	d.mu.Lock()
	d.activeTree = tree
	d.mu.Unlock()
	return tree, nil
}

func (d *Daemon) setActiveObjects(o *objects) {
	d.mu.Lock()
	d.activeObj = o
	d.mu.Unlock()
}

// activeObjects returns the fingerprints of the active configuration's
// objects, computing them once per configuration.
func (d *Daemon) activeObjects() *objects {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.activeObj == nil {
		d.activeObj = objectsOf(d.active)
	}
	return d.activeObj
}

// State returns the daemon's live state (the ops.Provider and metrics
// source).
func (d *Daemon) State() *State { return d.state }

// loadFile reads and validates the configuration file.
func (d *Daemon) loadFile() ([]byte, *config.Tree, *config.Config, config.Diagnostics, error) {
	text, err := os.ReadFile(d.opts.ConfigPath)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	tree, cfg, diags, err := parse(d.opts.ConfigPath, text)
	return text, tree, cfg, diags, err
}

// Run applies the configuration file, serves the control socket (and
// metrics) and keeps the configuration applied until ctx ends. Each value
// received on reload re-reads the configuration file and commits it. On
// return the components are closed without tearing down what they applied.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	d.started = d.now()
	defer d.closeComponents()
	text, tree, cfg, diags, err := d.loadFile()
	for _, w := range diags.Warnings() {
		d.log.Warn("configuration", "diagnostic", w.String())
	}
	if err != nil {
		return err
	}

	ln, err := api.Listen(api.SocketPath(d.opts.SocketPath))
	if err != nil {
		return err
	}
	srv := api.NewServer(d.state, d.log)
	d.registerVerbs(srv)

	// The first apply: what fails is retried by the reconcile loop; the
	// socket is served regardless so that the operator can look and fix.
	d.commitMu.Lock()
	err = d.apply(ctx, cfg, nil)
	d.setActive(cfg, tree, text)
	d.setLastApply(err)
	if e, _, gerr := d.store.Get(0); gerr != nil || e.Size != len(text) || !d.storedEquals(text) {
		if _, serr := d.store.Add(text, d.opts.ConfigPath, "daemon start", d.now()); serr != nil {
			d.log.Warn("configuration not stored in the commit history", "err", serr)
		}
	}
	d.commitMu.Unlock()
	if err != nil {
		d.log.Error("initial apply incomplete; retrying", "err", err)
	} else {
		d.log.Info("configuration applied", "file", d.opts.ConfigPath)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			errc <- err
		}
	}()
	if err := d.serveMetrics(ctx, &wg, errc); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	status := "configuration applied"
	if err != nil {
		status = "configuration partly applied, retrying: " + err.Error()
	}
	if d.opts.Ready != nil {
		d.opts.Ready(status)
	} else if _, nerr := Notify("READY=1\nSTATUS=" + status); nerr != nil {
		d.log.Warn("readiness notification failed", "err", nerr)
	}
	d.log.Info("bpfvpn daemon ready", "socket", api.SocketPath(d.opts.SocketPath), "pid", os.Getpid())

	var tick <-chan time.Time
	if d.opts.ReconcileInterval > 0 {
		t := time.NewTicker(d.opts.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-reload:
			d.reload(ctx)
		case <-tick:
			d.reapply(ctx)
		}
	}
	if d.opts.Ready == nil {
		Notify("STOPPING=1")
	}
	d.log.Info("bpfvpn daemon stopping; tunnels and data plane stay in place")
	cancel()
	wg.Wait()
	d.waitPersisted()
	return runErr
}

func (d *Daemon) storedEquals(text []byte) bool {
	_, stored, err := d.store.Get(0)
	return err == nil && string(stored) == string(text)
}

func (d *Daemon) setLastApply(err error) {
	d.mu.Lock()
	d.lastApply = err
	d.mu.Unlock()
}

// reload commits the configuration file again (SIGHUP).
func (d *Daemon) reload(ctx context.Context) {
	text, err := os.ReadFile(d.opts.ConfigPath)
	if err != nil {
		d.log.Error("reload: read configuration", "err", err)
		return
	}
	res, err := d.Commit(ctx, CommitRequest{Name: d.opts.ConfigPath, Text: string(text), Comment: "reload (SIGHUP)"}, false)
	if err != nil {
		d.log.Error("reload failed; the active configuration is unchanged", "err", err)
		return
	}
	d.log.Info("reload complete", "changes", len(res.Changes))
}

// reapply applies the active configuration again, repairing drift.
func (d *Daemon) reapply(ctx context.Context) {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	cfg, _ := d.activeConfig()
	if cfg == nil {
		return
	}
	err := d.apply(ctx, cfg, nil)
	d.mu.Lock()
	prev := d.lastApply
	d.lastApply = err
	d.mu.Unlock()
	switch {
	case err != nil:
		d.log.Warn("reconcile incomplete", "err", err)
	case prev != nil:
		d.log.Info("reconcile complete: configuration fully applied")
	}
}

func (d *Daemon) closeComponents() {
	for i := len(d.components) - 1; i >= 0; i-- {
		if err := d.components[i].Close(); err != nil {
			d.log.Warn("close component", "component", d.components[i].Name(), "err", err)
		}
	}
}

// Status is the answer to the "status" verb.
type Status struct {
	PID        int            `json:"pid"`
	Started    time.Time      `json:"started"`
	ConfigPath string         `json:"config-path"`
	CommitDir  string         `json:"commit-dir"`
	Applied    bool           `json:"applied"`
	ApplyError string         `json:"apply-error,omitempty"`
	Components []string       `json:"components"`
	Tunnels    []TunnelStatus `json:"tunnels"`
}

// Status reports the daemon's state.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	st := Status{PID: os.Getpid(), Started: d.started, ConfigPath: d.opts.ConfigPath, CommitDir: d.store.Dir(),
		Applied: d.lastApply == nil && d.active != nil}
	if d.lastApply != nil {
		st.ApplyError = d.lastApply.Error()
	}
	d.mu.Unlock()
	for _, c := range d.components {
		st.Components = append(st.Components, c.Name())
	}
	st.Tunnels = d.state.Tunnels()
	return st
}

func (d *Daemon) registerVerbs(srv *api.Server) {
	result := func(v any, out string) (api.Response, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return api.Response{}, err
		}
		return api.Response{OK: true, Result: data, Output: out}, nil
	}
	commit := func(checkOnly bool) api.HandlerFunc {
		return func(ctx context.Context, req api.Request) (api.Response, error) {
			var cr CommitRequest
			if err := json.Unmarshal(req.Args, &cr); err != nil {
				return api.Response{}, api.Errorf(api.CodeBadRequest, "commit: %v", err)
			}
			res, err := d.Commit(ctx, cr, checkOnly)
			return commitResponse(res, err)
		}
	}
	srv.Handle(VerbCommit, commit(false))
	srv.Handle(VerbCommitCheck, commit(true))
	srv.Handle(VerbRollback, api.HandlerFunc(func(ctx context.Context, req api.Request) (api.Response, error) {
		var rr RollbackRequest
		if err := json.Unmarshal(req.Args, &rr); err != nil {
			return api.Response{}, api.Errorf(api.CodeBadRequest, "rollback: %v", err)
		}
		res, err := d.Rollback(ctx, rr.N, rr.Comment)
		return commitResponse(res, err)
	}))
	srv.Handle(VerbCommits, api.HandlerFunc(func(ctx context.Context, req api.Request) (api.Response, error) {
		d.waitPersisted()
		list, err := d.store.List()
		if err != nil {
			return api.Response{}, err
		}
		return result(list, "")
	}))
	srv.Handle(VerbRekey, api.HandlerFunc(func(ctx context.Context, req api.Request) (api.Response, error) {
		var rr RekeyRequest
		if len(req.Args) > 0 {
			if err := json.Unmarshal(req.Args, &rr); err != nil {
				return api.Response{}, api.Errorf(api.CodeBadRequest, "rekey: %v", err)
			}
		}
		return api.Response{OK: true}, d.state.Rekey(ctx, rr.VPN)
	}))
	srv.Handle(VerbStatus, api.HandlerFunc(func(ctx context.Context, req api.Request) (api.Response, error) {
		return result(d.Status(), "")
	}))
}

// commitResponse carries a CommitResult in both outcomes: a failed commit
// answers with an error whose message says why, and the result (with the
// diagnostics) travels along.
func commitResponse(res CommitResult, err error) (api.Response, error) {
	data, merr := json.Marshal(res)
	if merr != nil {
		return api.Response{}, merr
	}
	if err != nil {
		code := api.CodeFailed
		var ve *ValidationError
		if errors.As(err, &ve) {
			code = CodeInvalid
		}
		return api.Response{Result: data, Error: &api.Error{Code: code, Message: err.Error()}}, nil
	}
	return api.Response{OK: true, Result: data}, nil
}

// CodeInvalid is the error code of a configuration that fails validation.
const CodeInvalid = "invalid-configuration"
