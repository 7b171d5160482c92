package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// InitramfsModules are loaded by the initramfs before it mounts the host
// root; they must exist as modules or be built into the kernel.
var InitramfsModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// GuestModules are loaded by the initramfs too, but best effort: one the
// kernel lacks is skipped. XFRM/ESP, the devices the tests build, and the
// crypto that ESP SAs use. Anything else the kernel auto-loads with the
// real modprobe after switch_root.
var GuestModules = []string{
	"xfrm_user", "xfrm_algo", "xfrm_interface", "esp4", "esp6", "xfrm4_tunnel", "xfrm6_tunnel",
	"veth", "dummy", "tun", "sch_ingress", "cls_bpf", "act_bpf",
	"aesni_intel", "aes_generic", "gcm", "ghash_generic", "ghash_clmulni_intel", "ctr", "cbc",
	"seqiv", "echainiv", "authenc", "authencesn",
	"chacha20poly1305", "chacha_generic", "chacha_x86_64", "poly1305_generic", "poly1305_x86_64",
	"hmac", "sha1_generic", "sha256_generic", "sha512_generic", "sha1_ssse3", "sha256_ssse3", "sha512_ssse3",
}

var errNoModule = errors.New("module not found")

// moduleIndex is a kernel's modules.dep and modules.builtin by module name.
type moduleIndex struct {
	dir     string              // lib/modules/<release>
	path    map[string]string   // name -> path relative to dir
	deps    map[string][]string // name -> names it needs
	builtin map[string]bool
}

// moduleName turns "kernel/fs/9p/9p.ko.xz" into "9p" (dashes become
// underscores, as the kernel does).
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("module index: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(dep))
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := moduleName(mod)
		idx.path[name] = mod
		for _, d := range strings.Fields(rest) {
			idx.deps[name] = append(idx.deps[name], moduleName(d))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[moduleName(l)] = true
		}
	}
	return idx, nil
}

// loadOrder returns the modules (not built in) needed for names, each after
// its dependencies. With optional, names missing from the kernel are
// skipped; otherwise they are an error.
func (idx *moduleIndex) loadOrder(names []string, optional bool) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		switch {
		case state[n] == 2:
			return nil
		case state[n] == 1:
			return fmt.Errorf("module %s: dependency cycle", n)
		case idx.builtin[n]:
			state[n] = 2
			return nil
		}
		if _, ok := idx.path[n]; !ok {
			return fmt.Errorf("module %s: %w in %s", n, errNoModule, idx.dir)
		}
		state[n] = 1
		for _, d := range idx.deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		if _, ok := idx.path[n]; optional && !ok {
			continue
		}
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns the module's ELF, decompressing .ko.xz/.ko.zst/.ko.gz
// (busybox insmod loads only plain modules).
func (idx *moduleIndex) readModule(name string) ([]byte, error) {
	p := filepath.Join(idx.dir, idx.path[name])
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(p, ".gz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		return io.ReadAll(zr)
	default:
		return nil, fmt.Errorf("module %s: unknown compression of %s", name, p)
	}
	out, err := exec.Command(tool, "-dc", p).Output()
	if err != nil {
		return nil, fmt.Errorf("module %s: %s -dc %s: %w", name, tool, p, err)
	}
	return out, nil
}
