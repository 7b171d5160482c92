package vm

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFetch stands in for apt: it lays out a package like extractPackage
// does (vmlinuz, release, modules.dep) and counts its calls.
func fakeFetch(t *testing.T, calls *atomic.Int32, fail bool) {
	search, fetch := aptSearch, fetchPackage
	t.Cleanup(func() { aptSearch, fetchPackage = search, fetch })
	aptSearch = func(context.Context, string) ([]byte, error) {
		return []byte("linux-image-6.1.0-7-amd64-unsigned - x\nlinux-image-6.1.0-8-amd64-unsigned - x\n"), nil
	}
	fetchPackage = func(_ context.Context, pkg, tmp string) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond) // widen the window for a second fetcher
		if fail {
			return errors.New("404 Not Found")
		}
		root := filepath.Join(tmp, "root")
		mods := filepath.Join(root, "lib", "modules", "6.1.0-8-amd64")
		if err := os.MkdirAll(mods, 0o755); err != nil {
			return err
		}
		for name, data := range map[string]string{
			filepath.Join(root, "vmlinuz"):      "not a bzImage",
			filepath.Join(root, "release"):      "6.1.0-8-amd64\n",
			filepath.Join(mods, "modules.dep"):  "",
			filepath.Join(root, "vmlinux.none"): "test\n",
		} {
			if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestFetchKernelConcurrentRunsFetchOnce(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("BPFVPN_KERNEL_CACHE", cache)
	var calls atomic.Int32
	fakeFetch(t, &calls, false)
	var wg sync.WaitGroup
	kernels := make([]*Kernel, 4)
	errs := make([]error, 4)
	for i := range kernels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kernels[i], errs[i] = FetchKernel(context.Background(), SeriesList[0], io.Discard)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if k := kernels[i]; k.Package != "linux-image-6.1.0-8-amd64-unsigned" || k.Release != "6.1.0-8-amd64" ||
			k.Dir != filepath.Join(cache, k.Package) || k.Image() != filepath.Join(k.Dir, "vmlinuz") {
			t.Errorf("fetch %d: %+v", i, k)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("package fetched %d times, want once", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, ".fetch-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary fetch directories left: %q", leftovers)
	}
}

func TestFetchKernelFallsBackToCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("BPFVPN_KERNEL_CACHE", cache)
	var calls atomic.Int32
	fakeFetch(t, &calls, false)
	// Cache 6.1.0-8, then let apt offer a newer package that fails to download.
	if _, err := FetchKernel(context.Background(), SeriesList[0], io.Discard); err != nil {
		t.Fatal(err)
	}
	fakeFetch(t, &calls, true)
	aptSearch = func(context.Context, string) ([]byte, error) {
		return []byte("linux-image-6.1.0-9-amd64-unsigned - x\n"), nil
	}
	k, err := FetchKernel(context.Background(), SeriesList[0], io.Discard)
	if err != nil {
		t.Fatalf("no fallback to the cached kernel: %v", err)
	}
	if k.Package != "linux-image-6.1.0-8-amd64-unsigned" {
		t.Fatalf("fell back to %s", k.Package)
	}
	if _, err := os.Stat(filepath.Join(cache, "linux-image-6.1.0-9-amd64-unsigned")); !os.IsNotExist(err) {
		t.Fatalf("failed fetch left a package directory: %v", err)
	}
}
