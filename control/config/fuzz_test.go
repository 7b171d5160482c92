package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser and checks that it never
// panics, that compiling and displaying never panic, and that an input
// without syntax errors displays as hierarchical and set text that parse
// back without errors to fixed points. Seeds: every testdata file and the
// invalid-input table. `go test` runs the seeds; `go test -fuzz=FuzzParse`
// explores.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, tc := range invalidCases {
		f.Add([]byte(tc.add))
	}
	f.Add([]byte("set \"inactive:\" x\nset a \"{\" \"\"\n"))
	f.Add([]byte("a { b { c { d; } } }\ninactive: e [ f g ];\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		tr := NewTree()
		diags := tr.Parse("f", data)
		_, _ = tr.Compile()
		var h, s bytes.Buffer
		_ = tr.WriteHierarchical(&h)
		_ = tr.WriteSet(&s)
		if diags.HasErrors() {
			return
		}
		t2 := NewTree()
		if d := t2.Parse("h", h.Bytes()); d.HasErrors() {
			t.Fatalf("hierarchical display does not parse back:\n%s\n%s", d, h.String())
		}
		if !treeEqual(tr.root, t2.root) {
			t.Fatalf("hierarchical display gives another tree:\n%s", h.String())
		}
		var h2 bytes.Buffer
		_ = t2.WriteHierarchical(&h2)
		if !bytes.Equal(h.Bytes(), h2.Bytes()) {
			t.Fatalf("hierarchical display is not a fixed point:\n%s\n---\n%s", h.String(), h2.String())
		}
		if s.Len() == 0 {
			return
		}
		t3 := NewTree()
		if d := t3.Parse("s", s.Bytes()); d.HasErrors() {
			t.Fatalf("set display does not parse back:\n%s\n%s", d, s.String())
		}
		if !treeEqual(t2.root, t3.root) {
			t.Fatalf("set display gives another tree:\n%s", s.String())
		}
		var s2 bytes.Buffer
		_ = t3.WriteSet(&s2)
		if !bytes.Equal(s.Bytes(), s2.Bytes()) {
			t.Fatalf("set display is not a fixed point:\n%s\n---\n%s", s.String(), s2.String())
		}
	})
}
