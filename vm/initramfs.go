package vm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The guest reports on the status port (ttyS2) one line per event:
// "vmrun: start" when the command starts, "vmrun: exit N" when it ends,
// "vmrun: error MSG" when the init fails before the command runs.
const (
	statusStart = "vmrun: start"
	statusExit  = "vmrun: exit "
	statusError = "vmrun: error "
)

// stage1 is PID 1 in the initramfs (busybox sh). It loads the modules (the
// initramfs holds them decompressed, in dependency order), mounts the host
// root read-only over 9p under a tmpfs overlay, mounts the kernel's modules
// at /lib/modules/<release> in it and switch_roots into it, so that the
// kernel's module auto-loading finds the real modprobe and modules.
const stage1 = `#!/bin/sh
export PATH=/bin
. /etc/vmrun.conf
root=
fail() {
	echo "vmrun-init: $*" >$root/dev/kmsg
	echo "vmrun: error $*" >$root/dev/ttyS2
	echo o >$root/proc/sysrq-trigger
	sleep 60
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "<6>vmrun-init: loading $VMRUN_INITRD_MODULES" >/dev/kmsg
for m in $VMRUN_INITRD_MODULES; do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done
for m in $VMRUN_GUEST_MODULES; do
	echo "<6>vmrun-init: insmod $m" >/dev/kmsg
	insmod "/lib/modules/$m.ko" || echo "vmrun-init: insmod $m failed" >/dev/kmsg
done
mkdir -p /host /rw /newroot
echo "<6>vmrun-init: mounting host root" >/dev/kmsg
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /host || fail "mount 9p hostroot"
mount -t tmpfs -o mode=0755 rw /rw || fail "mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount overlay"
mkdir -p "/newroot/lib/modules/$VMRUN_RELEASE"
mount --bind "/host$VMRUN_MODULES_DIR" "/newroot/lib/modules/$VMRUN_RELEASE" || fail "bind modules"
mount -t tmpfs -o mode=1777 tmp /newroot/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755 run /newroot/run || fail "mount /run"
while IFS= read -r d; do
	[ -n "$d" ] || continue
	mkdir -p "/newroot$d" && mount --bind "/host$d" "/newroot$d" || fail "bind $d"
done </etc/vmrun.binds
mkdir -p /newroot/run/vmrun
cp /bin/busybox /etc/vmrun.conf /etc/stage2 /etc/run.sh /newroot/run/vmrun/ || fail "copy stage2"
echo "<6>vmrun-init: switch_root" >/dev/kmsg
for d in dev proc sys; do
	mount --move "/$d" "/newroot/$d" || fail "move /$d"
done
root=/newroot
exec switch_root /newroot /run/vmrun/busybox sh /run/vmrun/stage2
fail "switch_root"
`

// stage2 is PID 1 in the switched root. It finishes the mounts, runs
// run.sh with its output on ttyS1 (closing the tty waits until the UART
// has sent everything), reports the exit code on ttyS2 and powers off.
const stage2 = `bb=/run/vmrun/busybox
. /run/vmrun/vmrun.conf
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o ptmxmode=0666,mode=0620 devpts /dev/pts
$bb mount -t tmpfs -o mode=1777 shm /dev/shm
$bb mount -t bpf bpf /sys/fs/bpf
$bb mount -t cgroup2 cgroup2 /sys/fs/cgroup
$bb mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
$bb mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
$bb mkdir -p /root
$bb ip link set lo up
$bb hostname vmrun
$bb stty -F /dev/ttyS1 raw -echo clocal 115200
echo "<6>vmrun-init: start command" >/dev/kmsg
echo "vmrun: start" >/dev/ttyS2
$bb sh /run/vmrun/run.sh </dev/null >/dev/ttyS1 2>&1
rc=$?
echo "vmrun: exit $rc" >/dev/ttyS2
echo o >/proc/sysrq-trigger
$bb sleep 60
`

// busyboxApplets are linked in the initramfs /bin for stage1.
var busyboxApplets = []string{"sh", "mount", "mkdir", "insmod", "cp", "switch_root", "sleep", "cat", "ls", "echo"}

// BusyboxPath is the static busybox put into the initramfs.
func BusyboxPath() string {
	if p := os.Getenv("BPFVPN_BUSYBOX"); p != "" {
		return p
	}
	return "/bin/busybox"
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// guestTmpfs are the directories the guest covers with a fresh tmpfs.
var guestTmpfs = []string{"/tmp", "/run"}

// BindsFor returns the paths that lie under a directory the guest covers
// with its own tmpfs (/tmp, /run); the guest binds them read-only from the
// host root so that they stay visible.
func BindsFor(paths ...string) []string {
	var out []string
	for _, p := range paths {
		p = filepath.Clean(p)
		for _, t := range guestTmpfs {
			if strings.HasPrefix(p+"/", t+"/") && p != t {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// WriteInitramfs writes the initramfs that boots k and runs runScript
// (a sh script, run with stdout/stderr on the output port) to w. binds
// are host directories the guest mounts over its tmpfs (see BindsFor).
func WriteInitramfs(w io.Writer, k *Kernel, runScript string, binds []string) error {
	idx, err := loadModuleIndex(k.ModulesDir())
	if err != nil {
		return err
	}
	order, err := idx.loadOrder(InitramfsModules, false)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	guest, err := idx.loadOrder(append(append([]string(nil), InitramfsModules...), GuestModules...), true)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	guest = guest[len(order):]
	bb, err := os.ReadFile(BusyboxPath())
	if err != nil {
		return fmt.Errorf("initramfs: busybox: %w", err)
	}
	conf := fmt.Sprintf("VMRUN_RELEASE=%s\nVMRUN_MODULES_DIR=%s\nVMRUN_INITRD_MODULES=%s\nVMRUN_GUEST_MODULES=%s\n",
		shellQuote(k.Release), shellQuote(k.ModulesDir()),
		shellQuote(strings.Join(order, " ")), shellQuote(strings.Join(guest, " ")))

	c := newCPIOWriter(w)
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sys"} {
		if err := c.Dir(d); err != nil {
			return err
		}
	}
	if err := c.File("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, a := range busyboxApplets {
		if err := c.Symlink("bin/"+a, "busybox"); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name, data string
		perm       uint32
	}{
		{"init", stage1, 0o755},
		{"etc/stage2", stage2, 0o644},
		{"etc/vmrun.conf", conf, 0o644},
		{"etc/run.sh", runScript, 0o644},
		{"etc/vmrun.binds", strings.Join(binds, "\n") + "\n", 0o644},
	} {
		if err := c.File(f.name, f.perm, []byte(f.data)); err != nil {
			return err
		}
	}
	for _, m := range append(order, guest...) {
		data, err := idx.readModule(m)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		if err := c.File("lib/modules/"+m+".ko", 0o644, data); err != nil {
			return err
		}
	}
	return c.Close()
}
