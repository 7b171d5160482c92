package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/bpfvpn/bpfvpn/control/daemon"
)

// startDaemon runs a daemon on text with comps under dir until stop.
func startDaemon(dir, text string, comps []daemon.Component, instance string) (*daemon.Daemon, func(), error) {
	cfgPath := filepath.Join(dir, "bpfvpn.conf")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return nil, nil, err
	}
	ready := make(chan string, 1)
	d, err := daemon.New(daemon.Options{ConfigPath: cfgPath, SocketPath: filepath.Join(dir, "s.sock"),
		CommitDir: filepath.Join(dir, "commits"), Components: comps, ReconcileInterval: -1, Instance: instance,
		Ready: func(s string) { ready <- s }})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	stop := func() { cancel(); <-done }
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, nil, err
	}
	return d, stop, nil
}
