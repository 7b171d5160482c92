package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon/commitlog"
)

// Commit verbs served on the control socket.
const (
	VerbCommit      = "commit"       // Args: CommitRequest → Result: CommitResult
	VerbCommitCheck = "commit-check" // Args: CommitRequest → Result: CommitResult
	VerbRollback    = "rollback"     // Args: RollbackRequest → Result: CommitResult
	VerbCommits     = "commits"      // → Result: []commitlog.Entry
	VerbStatus      = "status"       // → Result: Status
	VerbRekey       = "rekey"        // Args: RekeyRequest: rekey a VPN's IPsec SAs now
)

// CommitRequest carries a configuration to check or commit. The CLI sends the
// file's text (not its path) so that the daemon never reads files on behalf
// of the caller; Name is used in diagnostics (FILE:LINE:COL).
type CommitRequest struct {
	Name    string `json:"name"`
	Text    string `json:"text"`
	Comment string `json:"comment,omitempty"`
	// Load says how Text relates to the active configuration, as the
	// vendor's `load` does: LoadOverride ("" too) replaces it whole,
	// LoadSet applies set-form lines (set, delete, deactivate, activate,
	// insert) to it, LoadMerge merges statements (either form) into it.
	Load string `json:"load,omitempty"`
}

// Load modes of a CommitRequest.
const (
	LoadOverride = "override"
	LoadSet      = "set"
	LoadMerge    = "merge"
)

// RollbackRequest asks to commit stored configuration N again.
type RollbackRequest struct {
	N       int    `json:"n"`
	Comment string `json:"comment,omitempty"`
}

// RekeyRequest names the VPN whose IPsec SAs to rekey ("" = all).
type RekeyRequest struct {
	VPN string `json:"vpn"`
}

// CommitResult reports a commit, commit check or rollback.
type CommitResult struct {
	// Committed is true when the configuration was applied and stored.
	Committed bool `json:"committed"`
	// Unchanged is true when the configuration equals the active one.
	Unchanged bool `json:"unchanged,omitempty"`
	// Diagnostics are the errors and warnings of validation, one per line
	// as FILE:LINE:COL: message.
	Diagnostics []string `json:"diagnostics,omitempty"`
	// Changes summarise the difference to the active configuration.
	Changes []string `json:"changes,omitempty"`
	// Entry is the stored commit (rollback 0) after a commit.
	Entry *commitlog.Entry `json:"entry,omitempty"`
	// Duration is how long applying took.
	Duration time.Duration `json:"duration-ns,omitempty"`
	// Incremental is true when only the statements a delta touched were
	// validated and applied again (a policy-only `load set` or `load
	// merge`).
	Incremental bool `json:"incremental,omitempty"`
	// Persisting is true when the delta lines were appended to the
	// configuration file (synced: the commit survives a restart) and the
	// commit store entry (and a compaction of the file) is written after
	// the answer; the next whole commit, rollback or history request waits
	// for it.
	Persisting bool `json:"persisting,omitempty"`
}

// ValidationError is a configuration that does not validate; nothing was
// changed.
type ValidationError struct {
	Diagnostics config.Diagnostics
}

func (e *ValidationError) Error() string {
	return "configuration check fails:\n" + e.Diagnostics.Errors().String()
}

// ApplyError is a commit that failed while applying; the previous
// configuration was restored (RollbackErr says if that failed too).
type ApplyError struct {
	Component string
	Err       error
	// RolledBack is set when the previous configuration was applied again.
	RolledBack  bool
	RollbackErr error
}

func (e *ApplyError) Error() string {
	if !e.RolledBack {
		return fmt.Sprintf("apply failed in %s: %v", e.Component, e.Err)
	}
	msg := fmt.Sprintf("commit failed in %s: %v; previous configuration restored", e.Component, e.Err)
	if e.RollbackErr != nil {
		msg = fmt.Sprintf("commit failed in %s: %v; restoring the previous configuration failed too: %v", e.Component, e.Err, e.RollbackErr)
	}
	return msg
}

func (e *ApplyError) Unwrap() error { return e.Err }

func diagStrings(ds config.Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// parse validates text and returns the compiled configuration with its
// tree (kept for later deltas). On errors it returns a *ValidationError.
func parse(name string, text []byte) (*config.Tree, *config.Config, config.Diagnostics, error) {
	t := config.NewTree()
	diags := t.Parse(name, text)
	cfg, more := t.Compile()
	diags = append(diags, more...)
	diags.Sort(t.Files())
	if diags.HasErrors() || cfg == nil {
		return nil, nil, diags, &ValidationError{Diagnostics: diags}
	}
	return t, cfg, diags, nil
}

// check runs every component's Check on cfg.
func (d *Daemon) check(ctx context.Context, cfg *config.Config) error {
	var errs []error
	for _, c := range d.components {
		if err := c.Check(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// apply applies cfg with every component in order. When one fails, the
// components that applied cfg (and the failed one) get prev again, in
// reverse order. With prev nil (the first apply, or re-applying the active
// configuration) nothing is rolled back: every component applies what it
// can and the reconcile loop retries the rest.
func (d *Daemon) apply(ctx context.Context, cfg, prev *config.Config) error {
	if prev == nil {
		var errs []error
		for _, c := range d.components {
			if err := c.Apply(ctx, cfg); err != nil {
				errs = append(errs, &ApplyError{Component: c.Name(), Err: err})
			}
		}
		return errors.Join(errs...)
	}
	for i, c := range d.components {
		err := c.Apply(ctx, cfg)
		if err == nil {
			continue
		}
		ae := &ApplyError{Component: c.Name(), Err: err}
		var rerrs []error
		for j := i; j >= 0; j-- {
			if rerr := d.components[j].Apply(ctx, prev); rerr != nil {
				rerrs = append(rerrs, fmt.Errorf("%s: %w", d.components[j].Name(), rerr))
			}
		}
		ae.RolledBack = true
		ae.RollbackErr = errors.Join(rerrs...)
		return ae
	}
	return nil
}

// Commit validates text, checks it against the running state and, unless
// checkOnly, applies it all or not at all, stores it as rollback 0 and
// writes it to the configuration file. A configuration that fails
// validation or a check changes nothing.
func (d *Daemon) Commit(ctx context.Context, req CommitRequest, checkOnly bool) (CommitResult, error) {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	return d.commitLocked(ctx, req, checkOnly, req.Name)
}

func (d *Daemon) commitLocked(ctx context.Context, req CommitRequest, checkOnly bool, source string) (CommitResult, error) {
	switch req.Load {
	case "", LoadOverride:
		return d.commitWhole(ctx, req, checkOnly, source)
	case LoadSet, LoadMerge:
		return d.commitDelta(ctx, req, checkOnly, source)
	}
	return CommitResult{}, fmt.Errorf("commit: unknown load mode %q (want override, merge or set)", req.Load)
}

// commitWhole commits req.Text as the whole configuration.
func (d *Daemon) commitWhole(ctx context.Context, req CommitRequest, checkOnly bool, source string) (CommitResult, error) {
	var res CommitResult
	d.waitPersisted()
	text := []byte(req.Text)
	tree, cfg, diags, err := parse(req.Name, text)
	res.Diagnostics = diagStrings(diags)
	if err != nil {
		return res, err
	}
	prev, prevText := d.activeConfig()
	res.Unchanged = prev != nil && string(prevText) == string(text)
	var nextObjects *objects
	if !res.Unchanged {
		nextObjects = objectsOf(cfg)
		res.Changes = diffObjects(d.activeObjects(), nextObjects)
	}
	if err := d.check(ctx, cfg); err != nil {
		return res, fmt.Errorf("configuration check fails against the running state: %w", err)
	}
	if checkOnly {
		return res, nil
	}
	start := time.Now()
	if err := d.apply(ctx, cfg, prev); err != nil {
		d.log.Error("commit failed", "source", source, "err", err)
		return res, err
	}
	res.Duration = time.Since(start)
	res.Committed = true
	d.setActive(cfg, tree, text)
	if nextObjects != nil {
		d.setActiveObjects(nextObjects)
	}
	d.persist(func() []byte { return text }, source, req.Comment, !res.Unchanged, false, &res)
	d.log.Info("commit complete", "source", source, "changes", len(res.Changes), "duration", res.Duration)
	return res, nil
}

// commitDelta applies req.Text (set lines or statements to merge) to the
// active configuration's tree, validates what it touched, applies the
// result all or nothing and stores the resulting whole configuration. On
// any failure the tree is restored and nothing changes.
func (d *Daemon) commitDelta(ctx context.Context, req CommitRequest, checkOnly bool, source string) (CommitResult, error) {
	var res CommitResult
	text := []byte(req.Text)
	if req.Load == LoadSet && config.DetectFormat(text) != config.FormatSet && len(bytes.TrimSpace(text)) > 0 {
		ds := config.Diagnostics{{Pos: config.Pos{File: req.Name, Line: 1, Col: 1}, Severity: config.SeverityError,
			Message: "load set: not set-form lines (set, delete, deactivate, activate, insert); use load merge for statements in braces"}}
		res.Diagnostics = diagStrings(ds)
		return res, &ValidationError{Diagnostics: ds}
	}
	prev, _ := d.activeConfig()
	tree, err := d.activeTreeFor()
	if err != nil {
		return res, err
	}
	// A previous commit's text may still be rendered from the tree.
	d.rendering.Wait()
	e, diags := tree.Edit(req.Name, text)
	if e == nil {
		res.Diagnostics = diagStrings(diags)
		return res, &ValidationError{Diagnostics: diags}
	}
	cfg, more := tree.CompileDelta(prev, e)
	diags = append(diags, more...)
	res.Diagnostics = diagStrings(diags)
	if cfg == nil {
		e.Undo()
		return res, &ValidationError{Diagnostics: diags}
	}
	res.Incremental = !e.Wide
	var nextObjects *objects
	if e.Wide {
		nextObjects = objectsOf(cfg)
		res.Changes = diffObjects(d.activeObjects(), nextObjects)
	} else {
		res.Changes = diffPolicies(prev, cfg, e.Policies)
	}
	if err := d.checkDelta(ctx, cfg, e); err != nil {
		e.Undo()
		return res, fmt.Errorf("configuration check fails against the running state: %w", err)
	}
	if checkOnly {
		e.Undo()
		return res, nil
	}
	start := time.Now()
	if err := d.applyDelta(ctx, cfg, prev, e); err != nil {
		e.Undo()
		d.log.Error("commit failed", "source", source, "err", err)
		return res, err
	}
	res.Duration = time.Since(start)
	res.Committed = true
	e.Keep()
	res.Unchanged = len(res.Changes) == 0
	if e.Wide {
		d.setActive(cfg, tree, nil)
		d.setActiveObjects(nextObjects)
	} else {
		d.setActiveDelta(cfg, tree, prev, e.Policies)
	}
	d.persistDelta(tree, text, source, req.Comment, &res)
	d.log.Info("commit complete", "source", source, "load", req.Load, "edit", e.String(), "changes", len(res.Changes), "duration", res.Duration)
	return res, nil
}

// Appended deltas are folded into a rendering of the whole tree once they
// exceed compactMin bytes and 1/compactRatio of the text.
const (
	compactMin   = 64 << 10
	compactRatio = 8
)

// persistDelta makes a delta commit durable before the answer and stores it.
// When the configuration file is in set form and the delta is set lines,
// the lines are appended to the file and synced (parsing the file gives the
// same tree, and no 100,000-policy rendering is needed); the commit store
// entry (the previous text with the lines) is written in the background,
// and so is a compaction of the file once the appended lines have grown:
// the tree rendered in set form replaces the file, and the next delta edits
// the tree only after the rendering (d.rendering) and appends only after
// the rewrite. Otherwise — no configuration file, a hierarchical one, a
// merge of statements — the tree is rendered and stored before the answer.
// The caller holds commitMu and has finished editing the tree.
func (d *Daemon) persistDelta(tree *config.Tree, delta []byte, source, comment string, res *CommitResult) {
	if len(delta) > 0 && delta[len(delta)-1] != '\n' {
		delta = append(delta[:len(delta):len(delta)], '\n')
	}
	path := d.opts.ConfigPath
	d.mu.Lock()
	setForm, appended, endsNL, rewrite := d.activeSetForm, d.appendedBytes, d.fileEndsNL, d.fileRewrite
	d.mu.Unlock()
	// writeWhole stores the whole configuration in set form instead of
	// appending the delta.
	writeWhole := func() {
		var b bytes.Buffer
		_ = tree.WriteSet(&b)
		d.mu.Lock()
		d.activeSetForm, d.appendedBytes, d.fileEndsNL = true, 0, true
		d.mu.Unlock()
		d.persist(func() []byte { return b.Bytes() }, source, comment, true, false, res)
	}
	if !setForm || path == "" || config.DetectFormat(delta) != config.FormatSet {
		writeWhole()
		return
	}
	if rewrite != nil {
		<-rewrite // a compaction replaces the file: append after it
	}
	lines := delta
	if !endsNL {
		lines = append([]byte{'\n'}, delta...)
	}
	if err := appendDurable(path, lines); err != nil {
		d.log.Warn("delta not appended to the configuration file; writing it whole", "path", path, "err", err)
		writeWhole()
		return
	}
	d.mu.Lock()
	// The queued persists that replace the text have finished (rewrite),
	// so the text is the file before the append.
	baseSize := d.activeSize
	d.activeTail = append(d.activeTail, lines)
	d.activeSize += len(lines)
	grown := appended+len(delta) > compactMin && (appended+len(delta))*compactRatio > baseSize
	d.fileEndsNL = true
	d.appendedBytes += len(delta)
	if grown {
		d.appendedBytes = 0
	}
	d.mu.Unlock()
	if !grown {
		d.persistAppended(baseSize, lines, source, comment, res)
		return
	}
	var b bytes.Buffer
	rendered := make(chan struct{})
	d.rendering.Add(1)
	go func() {
		defer d.rendering.Done()
		defer close(rendered)
		_ = tree.WriteSet(&b)
		if n := b.Len(); n > 0 && b.Bytes()[n-1] != '\n' {
			b.WriteByte('\n')
		}
	}()
	done := d.persist(func() []byte { <-rendered; return b.Bytes() }, source, comment, true, true, res)
	d.mu.Lock()
	d.fileRewrite = done
	d.mu.Unlock()
}

// persistAppended stores rollback 0 (of baseSize bytes) with lines appended
// as the new rollback 0, after the answer, in order with the other
// persists.
func (d *Daemon) persistAppended(baseSize int, lines []byte, source, comment string, res *CommitResult) {
	done := make(chan struct{})
	d.mu.Lock()
	prev := d.persistDone
	d.persistDone = done
	hook := d.beforePersist
	d.mu.Unlock()
	res.Persisting = true
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		if hook != nil {
			hook()
		}
		if d.store == nil {
			return
		}
		if _, err := d.store.AddAppended(baseSize, lines, source, comment, d.now()); err != nil {
			d.log.Warn("commit applied and in the configuration file but not stored in the commit history", "err", err)
		}
	}()
}

// appendDurable appends data to the file at path and syncs it.
func appendDurable(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}

// PolicyApplier is a component whose applied state depends on security
// policies and that can apply a configuration which differs from the
// applied one only in the named policies without redoing the rest. On such
// a commit the components that do not implement it are left alone: nothing
// they apply changed.
type PolicyApplier interface {
	ApplyPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error
}

// PolicyChecker is the Check of a PolicyApplier for a policy-only delta.
type PolicyChecker interface {
	CheckPolicies(ctx context.Context, cfg *config.Config, changed []config.PolicyRef) error
}

func (d *Daemon) checkDelta(ctx context.Context, cfg *config.Config, e *config.Edit) error {
	if e.Wide {
		return d.check(ctx, cfg)
	}
	var errs []error
	for _, c := range d.components {
		pc, ok := c.(PolicyChecker)
		if !ok {
			continue
		}
		if err := pc.CheckPolicies(ctx, cfg, e.Policies); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// applyDelta applies a delta's configuration: a wide one with every
// component (apply), a policy-only one with the PolicyAppliers only, rolled
// back the same way when one fails.
func (d *Daemon) applyDelta(ctx context.Context, cfg, prev *config.Config, e *config.Edit) error {
	if e.Wide {
		return d.apply(ctx, cfg, prev)
	}
	var done []PolicyApplier
	var names []string
	for _, c := range d.components {
		pa, ok := c.(PolicyApplier)
		if !ok {
			continue
		}
		done = append(done, pa)
		names = append(names, c.Name())
		if err := pa.ApplyPolicies(ctx, cfg, e.Policies); err != nil {
			ae := &ApplyError{Component: c.Name(), Err: err, RolledBack: true}
			var rerrs []error
			for j := len(done) - 1; j >= 0; j-- {
				if rerr := done[j].ApplyPolicies(ctx, prev, e.Policies); rerr != nil {
					rerrs = append(rerrs, fmt.Errorf("%s: %w", names[j], rerr))
				}
			}
			ae.RollbackErr = errors.Join(rerrs...)
			return ae
		}
	}
	return nil
}

// persist stores the committed configuration (rollback 0) and, when
// writeFile, writes it to the configuration file. Persists run one after
// the other in commit order; text is called once, when every earlier
// persist has finished. A whole-file commit waits for it (its result names
// the stored entry); with async the commit answers first (res.Persisting)
// and the next whole commit, rollback or history request waits. It returns
// a channel closed when this persist has finished. The caller holds
// commitMu.
func (d *Daemon) persist(text func() []byte, source, comment string, writeFile, async bool, res *CommitResult) <-chan struct{} {
	done := make(chan struct{})
	d.mu.Lock()
	prev := d.persistDone
	d.persistDone = done
	hook := d.beforePersist
	d.mu.Unlock()
	var entry *commitlog.Entry
	work := func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		if hook != nil {
			hook()
		}
		t := text()
		d.setActiveText(t)
		if d.store != nil {
			e, err := d.store.Add(t, source, comment, d.now())
			if err != nil {
				d.log.Warn("commit applied but not stored", "err", err)
			} else {
				entry = &e
			}
		}
		if d.opts.ConfigPath != "" && writeFile {
			if err := commitlog.WriteFileAtomic(d.opts.ConfigPath, t); err != nil {
				d.log.Warn("commit applied but the configuration file was not updated", "path", d.opts.ConfigPath, "err", err)
			}
		}
	}
	if async {
		res.Persisting = true
		go work()
		return done
	}
	work()
	res.Entry = entry
	return done
}

// waitPersisted waits until every committed configuration is stored.
func (d *Daemon) waitPersisted() {
	d.mu.Lock()
	done := d.persistDone
	d.mu.Unlock()
	if done != nil {
		<-done
	}
}

// WaitPersisted waits until the configurations of finished commits are in
// the commit store and the configuration file.
func (d *Daemon) WaitPersisted() { d.waitPersisted() }

// Rollback commits stored configuration n again (rollback 1 restores the
// configuration before the active one).
func (d *Daemon) Rollback(ctx context.Context, n int, comment string) (CommitResult, error) {
	if d.store == nil {
		return CommitResult{}, errors.New("rollback: no commit store")
	}
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	d.waitPersisted()
	e, text, err := d.store.Get(n)
	if err != nil {
		return CommitResult{}, err
	}
	if comment == "" {
		comment = fmt.Sprintf("rollback %d (commit %d of %s)", n, e.Seq, e.Time.Format(time.RFC3339))
	}
	return d.commitLocked(ctx, CommitRequest{Name: fmt.Sprintf("rollback-%d", n), Text: string(text), Comment: comment}, false, fmt.Sprintf("rollback %d", n))
}
