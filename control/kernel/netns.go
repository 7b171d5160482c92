package kernel

import (
	"os"

	"github.com/vishvananda/netns"

	"github.com/bpfvpn/bpfvpn/control/namespace"
)

// inNetns runs fn inside ns (netns.None(): the current namespace), on a
// locked OS thread when it has to switch (see namespace.Do).
func inNetns(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	return namespace.Do(ns, fn)
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
