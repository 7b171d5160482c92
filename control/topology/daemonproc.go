package topology

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// Daemon is a `bpfvpn daemon` for an extra site, started in the site's
// namespace with its configuration, socket, commit store and log in Dir.
// (The lab's own two gateways are started by control/daemon/labrun.)
type Daemon struct {
	Dir    string
	cmd    *exec.Cmd
	exited chan error
}

func (d *Daemon) ConfigPath() string { return filepath.Join(d.Dir, "daemon.conf") }
func (d *Daemon) Socket() string     { return filepath.Join(d.Dir, "daemon.sock") }
func (d *Daemon) LogPath() string    { return filepath.Join(d.Dir, "daemon.log") }

// StartDaemon writes conf and starts exe ("" = this executable) as
// `daemon` inside ns without the data plane, with env added; it returns
// once the control socket answers.
func StartDaemon(ctx context.Context, ns netns.NsHandle, dir, exe string, env []string, conf string) (*Daemon, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, exited: make(chan error, 1)}
	if err := os.WriteFile(d.ConfigPath(), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(exe, "daemon", "--config", d.ConfigPath(), "--socket", d.Socket(),
		"--commit-dir", filepath.Join(dir, "commits"), "--dataplane=false")
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := lab.Start(ns, d.cmd); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := api.NewClient(d.Socket()).Ping(pctx)
		cancel()
		if err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("daemon not answering on %s: %w", d.Socket(), err)
		}
		select {
		case err := <-d.exited:
			log, _ := os.ReadFile(d.LogPath())
			return nil, fmt.Errorf("daemon exited: %v\n%s", err, log)
		case <-ctx.Done():
			d.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, then SIGKILL after 10 s, and waits for the daemon.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(10 * time.Second):
	}
	d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
	}
}
