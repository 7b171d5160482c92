package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// xenElfnotePhys32Entry is the ELF note that marks a PVH entry point, which
// qemu uses to boot an uncompressed vmlinux directly.
const xenElfnotePhys32Entry = 18

// ExtractVmlinux returns the uncompressed ELF kernel inside bzImage data.
// Booting it through its PVH entry saves the in-guest decompression, which
// is slow under TCG (seconds for Debian 6.1's xz image).
func ExtractVmlinux(bzImage []byte) ([]byte, error) {
	if len(bzImage) < 0x250 || string(bzImage[0x202:0x206]) != "HdrS" {
		return nil, errors.New("vmlinux: not a bzImage")
	}
	setupSects := int(bzImage[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(bzImage[0x248:]))
	n := int(binary.LittleEndian.Uint32(bzImage[0x24c:]))
	if n < 8 || start+off+n > len(bzImage) {
		return nil, fmt.Errorf("vmlinux: payload %d+%d outside the image", off, n)
	}
	// The payload ends with the uncompressed size (le32); drop it.
	payload := bzImage[start+off : start+off+n-4]
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		out, err = decompressWith(payload, "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = decompressWith(payload, "zstd", "-dcq")
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			out, err = io.ReadAll(zr)
		}
	default:
		return nil, fmt.Errorf("vmlinux: unknown compression % x", payload[:min(6, len(payload))])
	}
	if err != nil {
		return nil, fmt.Errorf("vmlinux: %w", err)
	}
	if !hasPVHNote(out) {
		return nil, errors.New("vmlinux: no PVH entry note")
	}
	return out, nil
}

func decompressWith(data []byte, tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", tool, err, stderr.String())
	}
	return out, nil
}

// hasPVHNote reports whether ELF image b has a Xen PHYS32_ENTRY note.
func hasPVHNote(b []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			continue
		}
		for len(notes) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(notes[0:]))
			descsz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			nameEnd := 12 + (namesz+3)&^3
			end := nameEnd + (descsz+3)&^3
			if end > len(notes) || namesz < 1 {
				break
			}
			if string(notes[12:12+namesz-1]) == "Xen" && typ == xenElfnotePhys32Entry {
				return true
			}
			notes = notes[end:]
		}
	}
	return false
}

// writeVmlinux extracts dir/vmlinuz into dir/vmlinux (atomically); when the
// image has no usable PVH kernel it leaves dir/vmlinux.none so that the
// next run does not try again.
func writeVmlinux(dir string) error {
	bz, err := os.ReadFile(dir + "/vmlinuz")
	if err != nil {
		return err
	}
	out, err := ExtractVmlinux(bz)
	if err != nil {
		os.WriteFile(dir+"/vmlinux.none", []byte(err.Error()+"\n"), 0o644)
		return err
	}
	tmp := dir + "/vmlinux.tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir+"/vmlinux")
}
