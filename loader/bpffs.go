package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// BPFFSRoot is where bpffs is mounted.
const BPFFSRoot = "/sys/fs/bpf"

// PinRoot holds one directory per instance.
const PinRoot = BPFFSRoot + "/bpfvpn"

// EnsureBPFFS mounts bpffs at /sys/fs/bpf when it is not mounted there.
func EnsureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(BPFFSRoot, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(BPFFSRoot, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", BPFFSRoot, err)
	}
	if err := unix.Mount("bpf", BPFFSRoot, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", BPFFSRoot, err)
	}
	return nil
}

// InstanceDir is the pin directory of an instance.
func InstanceDir(instance string) string { return filepath.Join(PinRoot, instance) }

// DefaultInstance names the instance after the network namespace this
// process runs in: "default" in the initial namespace, the name under
// /var/run/netns for named ones, "netns-<inode>" otherwise.
func DefaultInstance() (string, error) {
	self, err := nsInode("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	initNS, initErr := nsInode("/proc/1/ns/net")
	if initErr == nil && initNS == self {
		return "default", nil
	}
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		if ino, err := nsInode(filepath.Join("/var/run/netns", e.Name())); err == nil && ino == self {
			return e.Name(), nil
		}
	}
	if initErr != nil {
		// pid 1's namespace is hidden (a restricted container): an unnamed
		// namespace is taken as the initial one
		return "default", nil
	}
	return fmt.Sprintf("netns-%d", self), nil
}

func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// ValidInstance rejects names that would escape the pin root.
func ValidInstance(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return errors.New("instance name must be a non-empty path element")
	}
	return nil
}
