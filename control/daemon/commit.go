package daemon

import (
	"context"
	"errors"
	"fmt"
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
}

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

// parse validates text. On errors it returns a *ValidationError.
func parse(name string, text []byte) (*config.Config, config.Diagnostics, error) {
	cfg, diags := config.ParseBytes(name, text)
	if diags.HasErrors() || cfg == nil {
		return nil, diags, &ValidationError{Diagnostics: diags}
	}
	return cfg, diags, nil
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
	var res CommitResult
	text := []byte(req.Text)
	cfg, diags, err := parse(req.Name, text)
	res.Diagnostics = diagStrings(diags)
	if err != nil {
		return res, err
	}
	prev, prevText := d.activeConfig()
	nextObjects := objects(cfg)
	res.Changes = diffObjects(d.activeObjects(), nextObjects)
	res.Unchanged = prev != nil && string(prevText) == string(text)
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
	d.setActive(cfg, text)
	d.setActiveObjects(nextObjects)
	if d.store != nil {
		e, err := d.store.Add(text, source, req.Comment, d.now())
		if err != nil {
			d.log.Warn("commit applied but not stored", "err", err)
		} else {
			res.Entry = &e
		}
	}
	if d.opts.ConfigPath != "" && !res.Unchanged {
		if err := commitlog.WriteFileAtomic(d.opts.ConfigPath, text); err != nil {
			d.log.Warn("commit applied but the configuration file was not updated", "path", d.opts.ConfigPath, "err", err)
		}
	}
	d.log.Info("commit complete", "source", source, "changes", len(res.Changes), "duration", res.Duration)
	return res, nil
}

// Rollback commits stored configuration n again (rollback 1 restores the
// configuration before the active one).
func (d *Daemon) Rollback(ctx context.Context, n int, comment string) (CommitResult, error) {
	if d.store == nil {
		return CommitResult{}, errors.New("rollback: no commit store")
	}
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	e, text, err := d.store.Get(n)
	if err != nil {
		return CommitResult{}, err
	}
	if comment == "" {
		comment = fmt.Sprintf("rollback %d (commit %d of %s)", n, e.Seq, e.Time.Format(time.RFC3339))
	}
	return d.commitLocked(ctx, CommitRequest{Name: fmt.Sprintf("rollback-%d", n), Text: string(text), Comment: comment}, false, fmt.Sprintf("rollback %d", n))
}
