package vm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Series is a Debian kernel line the runner can boot.
type Series struct {
	Name string // "6.1", "6.12"
	// Package matches the names of the generic, unsigned image packages of
	// the series; the newest match by version is used.
	Package *regexp.Regexp
}

// SeriesList holds the supported kernels in the order "all" boots them.
var SeriesList = []Series{
	{Name: "6.1", Package: regexp.MustCompile(`^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$`)},
	// bookworm-security ships 6.12 as +deb12, bookworm-backports as +bpo.
	{Name: "6.12", Package: regexp.MustCompile(`^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-amd64-unsigned$`)},
}

// LookupSeries resolves a -kernel argument ("6.1", "6.12" or "all").
func LookupSeries(arg string) ([]Series, error) {
	if arg == "all" {
		return SeriesList, nil
	}
	var out []Series
	for _, name := range strings.Split(arg, ",") {
		found := false
		for _, s := range SeriesList {
			if s.Name == strings.TrimSpace(name) {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown kernel %q (want 6.1, 6.12 or all)", name)
		}
	}
	return out, nil
}

// Kernel is an extracted kernel package in the cache.
type Kernel struct {
	Series  string
	Package string // Debian package name
	Release string // uname -r, the directory under lib/modules
	Dir     string // cache directory of the package
}

// Image is the path of the kernel qemu boots: the uncompressed vmlinux
// (PVH entry) when it could be extracted, else the bzImage.
func (k *Kernel) Image() string {
	if p := filepath.Join(k.Dir, "vmlinux"); fileExists(p) {
		return p
	}
	return filepath.Join(k.Dir, "vmlinuz")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// ModulesDir is the path of lib/modules/<release> of the kernel.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// CacheDir is where kernels are kept: $BPFVPN_KERNEL_CACHE, else
// $XDG_CACHE_HOME/bpfvpn/kernels, else ~/.cache/bpfvpn/kernels.
func CacheDir() (string, error) {
	if d := os.Getenv("BPFVPN_KERNEL_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache: %w", err)
	}
	return filepath.Join(base, "bpfvpn", "kernels"), nil
}

// ParseAptSearch returns the package names of `apt-cache search` output
// ("name - description" lines) that match re, newest version first.
func ParseAptSearch(out []byte, re *regexp.Regexp) []string {
	var names []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		if re.MatchString(name) && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return versionLess(names[j], names[i]) })
	return names
}

var digitRun = regexp.MustCompile(`[0-9]+|[^0-9]+`)

// versionLess orders strings by comparing runs of digits numerically and
// other runs lexically, so that 6.1.0-10 sorts after 6.1.0-9.
func versionLess(a, b string) bool {
	as, bs := digitRun.FindAllString(a, -1), digitRun.FindAllString(b, -1)
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		an, aerr := strconv.ParseUint(as[i], 10, 64)
		bn, berr := strconv.ParseUint(bs[i], 10, 64)
		if aerr == nil && berr == nil {
			return an < bn
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

// newestPackage asks apt for the newest package of the series; when apt
// has nothing (offline, no lists), it falls back to the newest cached one.
func newestPackage(ctx context.Context, s Series, cache string) (string, error) {
	out, aptErr := aptSearch(ctx, s.Package.String())
	if names := ParseAptSearch(out, s.Package); len(names) > 0 {
		return names[0], nil
	}
	if cached := cachedPackages(s, cache); len(cached) > 0 {
		return cached[0], nil
	}
	return "", fmt.Errorf("kernel %s: no package matching %s in apt (%v) or in %s", s.Name, s.Package, aptErr, cache)
}

// cachedPackages lists the complete cached packages of s, newest first.
func cachedPackages(s Series, cache string) []string {
	entries, _ := os.ReadDir(cache)
	var cached []string
	for _, e := range entries {
		if !e.IsDir() || !s.Package.MatchString(e.Name()) {
			continue
		}
		if _, err := loadKernel(s.Name, e.Name(), filepath.Join(cache, e.Name())); err == nil {
			cached = append(cached, e.Name())
		}
	}
	sort.Slice(cached, func(i, j int) bool { return versionLess(cached[j], cached[i]) })
	return cached
}

// FetchKernel returns the newest kernel of series s, downloading and
// extracting it into the cache on first use. Concurrent callers serialize
// on a lock file; a package directory appears only complete (rename).
func FetchKernel(ctx context.Context, s Series, log io.Writer) (*Kernel, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	pkg, err := newestPackage(ctx, s, cache)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, pkg)
	if k, err := loadKernel(s.Name, pkg, dir); err == nil && k.complete() {
		return k, nil
	}

	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if k, err := loadKernel(s.Name, pkg, dir); err == nil {
		if !k.complete() {
			// Cached by a runner that did not extract vmlinux yet.
			if err := writeVmlinux(dir); err != nil {
				fmt.Fprintf(log, "vmrun: %s: booting the bzImage: %v\n", pkg, err)
			}
		}
		return k, nil // complete, or fetched by another run while we waited
	}
	fmt.Fprintf(log, "vmrun: fetching %s into %s\n", pkg, cache)
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := fetchPackage(ctx, pkg, tmp); err != nil {
		err = fmt.Errorf("fetch %s: %w", pkg, err)
		if cached := cachedPackages(s, cache); len(cached) > 0 {
			fmt.Fprintf(log, "vmrun: %v\nvmrun: using the cached %s\n", err, cached[0])
			return loadKernel(s.Name, cached[0], filepath.Join(cache, cached[0]))
		}
		return nil, err
	}
	os.RemoveAll(dir) // an incomplete leftover; complete ones were returned above
	if err := os.Rename(filepath.Join(tmp, "root"), dir); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pkg, err)
	}
	return loadKernel(s.Name, pkg, dir)
}

// aptSearch and fetchPackage are replaced by tests.
var (
	aptSearch = func(ctx context.Context, re string) ([]byte, error) {
		return exec.CommandContext(ctx, "apt-cache", "search", "--names-only", re).Output()
	}
	fetchPackage = extractPackage
)

// extractPackage downloads pkg into tmp, unpacks it into tmp/root with
// vmlinuz at its top and runs depmod on its modules.
func extractPackage(ctx context.Context, pkg, tmp string) error {
	dl := exec.CommandContext(ctx, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w: %s", err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download left %d .deb files", len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x: %w: %s", err, lastLines(out, 5))
	}
	os.Remove(debs[0])
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return fmt.Errorf("package has %d boot/vmlinuz-* files", len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	if err := os.Rename(images[0], filepath.Join(root, "vmlinuz")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "release"), []byte(release+"\n"), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "depmod", "-b", root, release).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b: %w: %s", err, lastLines(out, 5))
	}
	writeVmlinux(root) // optional: without it qemu boots the bzImage
	return nil
}

// complete reports whether the vmlinux extraction was done or found
// impossible.
func (k *Kernel) complete() bool {
	return fileExists(filepath.Join(k.Dir, "vmlinux")) || fileExists(filepath.Join(k.Dir, "vmlinux.none"))
}

func loadKernel(series, pkg, dir string) (*Kernel, error) {
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		return nil, err
	}
	k := &Kernel{Series: series, Package: pkg, Release: strings.TrimSpace(string(rel)), Dir: dir}
	for _, p := range []string{k.Image(), filepath.Join(k.ModulesDir(), "modules.dep")} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
