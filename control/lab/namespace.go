package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// NamespaceDir is where named network namespaces are bind-mounted (the
// location `ip netns` uses, so `ip netns exec` sees the lab's namespaces).
const NamespaceDir = "/run/netns"

// Do runs fn on an OS thread that has entered the network namespace ns, and
// returns fn's error. Only the calling thread of fn is in ns: goroutines that
// fn starts run elsewhere. Sockets fn opens stay in ns after Do returns; a
// process fn starts (exec.Cmd.Start) is born in ns. The mount namespace is
// not changed, so fn sees the host's /sys/fs/bpf pins (unlike `ip netns
// exec`, which remounts /sys).
//
// Invariant: the thread goes back to the pool only after it has been
// switched back to its original namespace; if that fails, the thread stays
// locked and the Go runtime discards it when the goroutine exits.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to original network namespace: %w", err))
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

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
