package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/namespace"
)

// NamespaceDir is where named network namespaces are bind-mounted (the
// location `ip netns` uses, so `ip netns exec` sees the lab's namespaces).
const NamespaceDir = "/run/netns"

// Do runs fn on an OS thread that has entered the network namespace ns (see
// namespace.Do). The mount namespace is not changed, so fn sees the host's
// /sys/fs/bpf pins.
func Do(ns netns.NsHandle, fn func() error) error { return namespace.Do(ns, fn) }

// Start starts cmd inside the network namespace ns (see Do). The caller
// waits for it as usual.
func Start(ns netns.NsHandle, cmd *exec.Cmd) error {
	return Do(ns, cmd.Start)
}

// NewAnonymous creates an unnamed network namespace. It exists as long as
// the returned handle (or a process inside it) does: closing the handle is
// the whole cleanup. Tests use it so that nothing is left behind on failure.
func NewAnonymous() (netns.NsHandle, error) {
	var ns netns.NsHandle
	err := onFreshThread(func() error {
		var err error
		ns, err = netns.New()
		return err
	})
	if err != nil {
		return netns.None(), fmt.Errorf("create network namespace: %w", err)
	}
	return ns, nil
}

// OpenNamed returns a handle to the named network namespace, creating it if
// it does not exist yet. created tells which happened.
func OpenNamed(name string) (ns netns.NsHandle, created bool, err error) {
	if ns, err := netns.GetFromName(name); err == nil {
		return ns, false, nil
	}
	err = onFreshThread(func() error {
		var err error
		ns, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		// NewNamed may leave an empty mount point file behind.
		_ = os.Remove(filepath.Join(NamespaceDir, name))
		return netns.None(), false, fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return ns, true, nil
}

// DeleteNamed removes the named network namespace; a missing one is not an
// error. The namespace itself vanishes with its last user.
func DeleteNamed(name string) error {
	p := filepath.Join(NamespaceDir, name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A file that is not a mount point (a half-created namespace).
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("delete network namespace %s: %w", name, errors.Join(err, rerr))
		}
	}
	return nil
}

// NamedExists reports whether a named network namespace exists.
func NamedExists(name string) bool {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return false
	}
	ns.Close()
	return true
}

// onFreshThread runs fn on a locked thread that is thrown away afterwards:
// fn may leave the thread in another namespace (unshare, NewNamed).
func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime discards the thread
		errc <- fn()
	}()
	return <-errc
}
