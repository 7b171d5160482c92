package loader

import (
	"strings"
	"testing"
)

// TestGeneratedObjectsFresh fails when bpf/ or the bpf2go flags changed
// since the committed objects were generated: run `make generate`.
func TestGeneratedObjectsFresh(t *testing.T) {
	d, err := SourcesDigest("../bpf", "gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(GeneratedDigest); got != d {
		t.Fatalf("loader/bpfvpn_bpfel.o is stale: sources digest %s, generated from %s; run `make generate`", d, got)
	}
}
