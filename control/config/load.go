package config

import (
	"fmt"
	"os"
	"unsafe"
)

// ParseBytes parses one configuration text (either form) and compiles it.
// The Config is nil when the diagnostics hold an error.
func ParseBytes(name string, data []byte) (*Config, Diagnostics) {
	t := NewTree()
	diags := t.Parse(name, data)
	cfg, more := t.Compile()
	diags = append(diags, more...)
	diags.Sort(t.files)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// Load reads the files in order into one tree (later files add to and
// override earlier ones, as `load merge` would), validates it and returns
// the typed model. The error is about reading files; configuration problems
// are in the Diagnostics (and the Config is nil if any is an error).
func Load(paths ...string) (*Config, Diagnostics, error) {
	t, diags, err := LoadTree(paths...)
	if err != nil {
		return nil, nil, err
	}
	cfg, more := t.Compile()
	diags = append(diags, more...)
	diags.Sort(t.files)
	if diags.HasErrors() {
		return nil, diags, nil
	}
	return cfg, diags, nil
}

// LoadTree reads the files in order into one tree without compiling it.
func LoadTree(paths ...string) (*Tree, Diagnostics, error) {
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("load configuration: no file given")
	}
	t := NewTree()
	var diags Diagnostics
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("load configuration: %w", err)
		}
		// The buffer is ours: the tree may keep substrings of it without a copy.
		diags = append(diags, t.parseText(p, unsafe.String(unsafe.SliceData(data), len(data)))...)
	}
	return t, diags, nil
}

// Files returns the names of the files parsed into the tree, in order.
func (t *Tree) Files() []string { return append([]string(nil), t.files...) }
