package vm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExtractVmlinuxRejectsNonBzImage(t *testing.T) {
	if _, err := ExtractVmlinux(make([]byte, 4096)); err == nil {
		t.Fatal("zeros accepted as a bzImage")
	}
}

// TestExtractVmlinuxFromCachedKernels checks the PVH extraction on the
// kernels already in the cache (it downloads nothing).
func TestExtractVmlinuxFromCachedKernels(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses kernels (-short)")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Skip(err)
	}
	images, _ := filepath.Glob(filepath.Join(cache, "linux-image-*", "vmlinuz"))
	if len(images) == 0 {
		t.Skip("no kernel in the cache yet")
	}
	for _, img := range images {
		bz, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		elf, err := ExtractVmlinux(bz)
		if err != nil {
			t.Errorf("%s: %v", img, err)
			continue
		}
		if string(elf[:4]) != "\x7fELF" || !hasPVHNote(elf) {
			t.Errorf("%s: extracted kernel is not an ELF with a PVH note", img)
		}
	}
}
