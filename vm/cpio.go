package vm

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes an archive in the "newc" format the kernel unpacks
// into its initramfs. Entries are written in call order; parents first.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	n   int64
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: bufio.NewWriter(w), ino: 1} }

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

func (c *cpioWriter) header(name string, mode uint32, size int) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := c.w.WriteString(hdr + name + "\x00"); err != nil {
		return err
	}
	c.n += int64(len(hdr) + len(name) + 1)
	return c.pad()
}

func (c *cpioWriter) pad() error {
	for c.n%4 != 0 {
		if err := c.w.WriteByte(0); err != nil {
			return err
		}
		c.n++
	}
	return nil
}

func (c *cpioWriter) body(b []byte) error {
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	c.n += int64(len(b))
	return c.pad()
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string) error {
	return c.header(strings.TrimPrefix(name, "/"), cpioDir|0o755, 0)
}

// File adds a regular file with permission bits perm.
func (c *cpioWriter) File(name string, perm uint32, data []byte) error {
	if err := c.header(strings.TrimPrefix(name, "/"), cpioFile|perm, len(data)); err != nil {
		return err
	}
	return c.body(data)
}

// Symlink adds a symbolic link name -> target.
func (c *cpioWriter) Symlink(name, target string) error {
	if err := c.header(strings.TrimPrefix(name, "/"), cpioSymlink|0o777, len(target)); err != nil {
		return err
	}
	return c.body([]byte(target))
}

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.ino = 0
	if err := c.header("TRAILER!!!", 0, 0); err != nil {
		return err
	}
	return c.w.Flush()
}

// cpioEntry is one member of a parsed newc archive (used by tests).
type cpioEntry struct {
	Name string
	Mode uint32
	Data []byte
}

// readCPIO parses a newc archive up to its trailer.
func readCPIO(b []byte) ([]cpioEntry, error) {
	var out []cpioEntry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			return nil, fmt.Errorf("cpio: bad header at %d", off)
		}
		var f [13]uint32
		for i := range f {
			if _, err := fmt.Sscanf(string(b[off+6+8*i:off+14+8*i]), "%08X", &f[i]); err != nil {
				return nil, fmt.Errorf("cpio: header field %d at %d: %w", i, off, err)
			}
		}
		mode, size, namesize := f[1], int(f[6]), int(f[11])
		nameStart := off + 110
		if nameStart+namesize > len(b) {
			return nil, fmt.Errorf("cpio: truncated name at %d", off)
		}
		name := string(b[nameStart : nameStart+namesize-1])
		dataStart := align(nameStart + namesize)
		if dataStart+size > len(b) {
			return nil, fmt.Errorf("cpio: truncated data of %s", name)
		}
		if name == "TRAILER!!!" {
			return out, nil
		}
		out = append(out, cpioEntry{Name: name, Mode: mode, Data: b[dataStart : dataStart+size]})
		off = align(dataStart + size)
	}
}
