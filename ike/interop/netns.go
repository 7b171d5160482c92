// Package interop runs strongSwan's charon next to the bpfvpn IKE engines
// inside a private network namespace, for interoperability tests and the
// responder benchmark. charon runs with a generated strongswan.conf and
// swanctl.conf in a private directory, its own VICI socket, a private /run
// (so it never meets another charon's pid file) and kernel-libipsec, so
// CHILD SAs are installed in userspace on kernels without ESP.
package interop

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace created for one test or benchmark.
type Netns struct {
	Name string
}

// NewNetns creates a namespace named prefix-<random> with loopback up.
func NewNetns(prefix string) (*Netns, error) {
	b := make([]byte, 4)
	rand.Read(b)
	n := &Netns{Name: prefix + "-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create netns %s: %v: %s", n.Name, err, out)
	}
	if out, err := exec.Command("ip", "-n", n.Name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		n.Close()
		return nil, fmt.Errorf("netns %s: lo up: %v: %s", n.Name, err, out)
	}
	return n, nil
}

// Close kills what still runs in the namespace and deletes it.
func (n *Netns) Close() error {
	if out, err := exec.Command("ip", "netns", "pids", n.Name).Output(); err == nil && len(out) > 0 {
		exec.Command("sh", "-c", "ip netns pids "+n.Name+" | xargs -r kill -9").Run()
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("delete netns %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// Do runs fn on an OS thread switched into the namespace; sockets created
// by fn belong to the namespace for their whole life.
func (n *Netns) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := setns(int(target.Fd())); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	ferr := fn()
	if err := setns(int(orig.Fd())); err != nil {
		// The thread is unusable: let the runtime discard it.
		runtime.Goexit()
	}
	return ferr
}

func setns(fd int) error { return unix.Setns(fd, unix.CLONE_NEWNET) }
