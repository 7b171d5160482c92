// Package namespace runs code inside a Linux network namespace without
// changing the mount namespace, so the code still sees the host's bpffs pins
// (unlike `ip netns exec`, which remounts /sys).
package namespace

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread that has entered the network namespace ns, and
// returns fn's error. Only the calling thread of fn is in ns: goroutines that
// fn starts run elsewhere. Sockets fn opens stay in ns after Do returns; a
// process fn starts (exec.Cmd.Start) is born in ns.
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
