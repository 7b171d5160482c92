package vm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fakeKernel lays out a kernel cache directory with a modules.dep in which
// 9p needs netfs and 9pnet, 9pnet_virtio needs 9pnet, virtio_pci is built
// in and overlay is compressed with xz.
func fakeKernel(t *testing.T) *Kernel {
	t.Helper()
	k := &Kernel{Series: "6.1", Package: "linux-image-test", Release: "6.1.0-0-amd64", Dir: t.TempDir()}
	mods := k.ModulesDir()
	files := map[string]string{
		"kernel/fs/9p/9p.ko":             "elf-9p",
		"kernel/fs/netfs/netfs.ko":       "elf-netfs",
		"kernel/net/9p/9pnet.ko":         "elf-9pnet",
		"kernel/net/9p/9pnet_virtio.ko":  "elf-9pnet_virtio",
		"kernel/fs/overlayfs/overlay.ko": "elf-overlay",
		"kernel/net/xfrm/xfrm_algo.ko":   "elf-xfrm_algo",
		"kernel/net/ipv4/esp4.ko":        "elf-esp4",
		"kernel/drivers/net/veth.ko":     "elf-veth",
	}
	for p, data := range files {
		full := filepath.Join(mods, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("xz", filepath.Join(mods, "kernel/fs/overlayfs/overlay.ko")).CombinedOutput(); err != nil {
		t.Fatalf("xz: %v %s", err, out)
	}
	dep := `kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko
kernel/fs/overlayfs/overlay.ko.xz:
kernel/net/ipv4/esp4.ko: kernel/net/xfrm/xfrm_algo.ko
kernel/net/xfrm/xfrm_algo.ko:
kernel/drivers/net/veth.ko:
`
	if err := os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadOrderResolvesDependencies(t *testing.T) {
	idx, err := loadModuleIndex(fakeKernel(t).ModulesDir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.loadOrder(InitramfsModules, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"9pnet", "9pnet_virtio", "netfs", "9p", "overlay"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("load order %q, want %q", got, want)
	}
	if _, err := idx.loadOrder([]string{"esp6"}, false); !errors.Is(err, errNoModule) {
		t.Fatalf("missing module: %v", err)
	}
	got, err = idx.loadOrder([]string{"esp6", "esp4", "virtio_pci", "veth"}, true)
	if want := []string{"xfrm_algo", "esp4", "veth"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("optional load order %q %v, want %q (esp6 missing, virtio_pci built in)", got, err, want)
	}
}

func TestWriteInitramfs(t *testing.T) {
	k := fakeKernel(t)
	bb := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(bb, []byte("fake busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BPFVPN_BUSYBOX", bb)
	var buf bytes.Buffer
	script := CommandScript("/work/x", []string{"A=1"}, []string{"true"})
	if err := WriteInitramfs(&buf, k, script, []string{"/tmp/bin"}); err != nil {
		t.Fatal(err)
	}
	entries, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpioEntry{}
	var modules []string
	for _, e := range entries {
		byName[e.Name] = e
		if strings.HasPrefix(e.Name, "lib/modules/") && e.Mode&0o170000 == cpioFile {
			modules = append(modules, e.Name)
		}
	}
	check := func(name string, mode uint32, data string) {
		t.Helper()
		e, ok := byName[name]
		if !ok {
			t.Fatalf("initramfs lacks %s", name)
		}
		if e.Mode != mode {
			t.Errorf("%s mode %o, want %o", name, e.Mode, mode)
		}
		if data != "" && string(e.Data) != data {
			t.Errorf("%s = %q, want %q", name, e.Data, data)
		}
	}
	check("init", cpioFile|0o755, stage1)
	check("etc/stage2", cpioFile|0o644, stage2)
	check("etc/run.sh", cpioFile|0o644, script)
	check("etc/vmrun.binds", cpioFile|0o644, "/tmp/bin\n")
	check("bin/busybox", cpioFile|0o755, "fake busybox")
	check("bin/sh", cpioSymlink|0o777, "busybox")
	check("bin/switch_root", cpioSymlink|0o777, "busybox")
	check("lib/modules/overlay.ko", cpioFile|0o644, "elf-overlay") // decompressed from .ko.xz
	check("lib/modules/9p.ko", cpioFile|0o644, "elf-9p")
	for _, d := range []string{"dev", "proc", "sys", "etc", "bin"} {
		check(d, cpioDir|0o755, "")
	}
	want := []string{"lib/modules/9pnet.ko", "lib/modules/9pnet_virtio.ko", "lib/modules/netfs.ko", "lib/modules/9p.ko", "lib/modules/overlay.ko",
		"lib/modules/xfrm_algo.ko", "lib/modules/esp4.ko", "lib/modules/veth.ko"}
	if !reflect.DeepEqual(modules, want) {
		t.Errorf("modules %q, want %q", modules, want)
	}
	conf := string(byName["etc/vmrun.conf"].Data)
	for _, line := range []string{
		"VMRUN_RELEASE='6.1.0-0-amd64'",
		"VMRUN_MODULES_DIR='" + k.ModulesDir() + "'",
		"VMRUN_INITRD_MODULES='9pnet 9pnet_virtio netfs 9p overlay'",
		"VMRUN_GUEST_MODULES='xfrm_algo esp4 veth'",
	} {
		if !strings.Contains(conf, line+"\n") {
			t.Errorf("vmrun.conf lacks %q:\n%s", line, conf)
		}
	}
	for _, m := range []string{"esp4", "esp6", "xfrm_interface", "xfrm_user", "veth", "sch_ingress", "cls_bpf", "gcm", "chacha20poly1305", "hmac"} {
		if !slices.Contains(GuestModules, m) {
			t.Errorf("GuestModules lack %s", m)
		}
	}
}

func TestInitScriptsUseSwitchRootAndSysrq(t *testing.T) {
	for _, want := range []string{"exec switch_root /newroot", "lowerdir=/host", "/newroot/lib/modules/$VMRUN_RELEASE"} {
		if !strings.Contains(stage1, want) {
			t.Errorf("stage1 lacks %q", want)
		}
	}
	if !strings.Contains(stage1, `insmod "/lib/modules/$m.ko" || echo`) {
		t.Error("stage1 does not load the guest modules best effort")
	}
	for _, want := range []string{"mount -t bpf bpf /sys/fs/bpf", "ip link set lo up", "echo o >/proc/sysrq-trigger"} {
		if !strings.Contains(stage2, want) {
			t.Errorf("stage2 lacks %q", want)
		}
	}
	args := strings.Join(qemuArgs(Config{Kernel: &Kernel{Dir: "/k"}, Accel: "tcg", CPU: "max", CPUs: 2, Memory: "2G"}, "/i"), " ")
	for _, want := range []string{"-accel tcg -cpu max", "-smp 2", "-m 2G", "multidevs=remap", "readonly=on", "mount_tag=hostroot"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q: %s", want, args)
		}
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	if err := c.Dir("a"); err != nil {
		t.Fatal(err)
	}
	if err := c.File("a/f", 0o600, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := c.Symlink("a/l", "f"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", buf.Len())
	}
	got, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []cpioEntry{{"a", cpioDir | 0o755, []byte{}}, {"a/f", cpioFile | 0o600, []byte("12345")}, {"a/l", cpioSymlink | 0o777, []byte("f")}}
	if len(got) != len(want) {
		t.Fatalf("got %d entries", len(got))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Mode != want[i].Mode || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-it", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil || string(out) != "a\na/f\na/l\n" {
			t.Errorf("cpio -it: %q %v", out, err)
		}
	}
}

func TestBindsFor(t *testing.T) {
	got := BindsFor("/tmp/vmrun-tests-1", "/work/wt/vm", "/tmp", "/run/x/", "/tmpfoo")
	want := []string{"/tmp/vmrun-tests-1", "/run/x"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BindsFor = %q, want %q", got, want)
	}
}

// TestCommandScriptQuoting runs the command script with the host's busybox
// standing in for the guest's.
func TestCommandScriptQuoting(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	dir := t.TempDir()
	script := CommandScript(dir, []string{"X=it's", "PATH=/usr/bin:/bin"},
		[]string{"sh", "-c", `echo "$X|$1|$(pwd)|${HOME-unset}"; exit 3`, "-", "a b 'c'"})
	script = strings.ReplaceAll(script, guestBusybox, bb)
	out, err := exec.Command("sh", "-c", script).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v", err)
	}
	if want := "it's|a b 'c'|" + dir + "|unset\n"; string(out) != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}
