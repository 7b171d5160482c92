package loader

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// GeneratedDigest is the digest of the BPF sources, headers and bpf2go
// command line from which the committed objects were generated.
//
//go:embed sources.sha256
var GeneratedDigest string

// SourcesDigest hashes every bpf/*.c and bpf/*.h file under bpfDir (by name
// and content, in name order) and the go:generate bpf2go line of genFile.
func SourcesDigest(bpfDir, genFile string) (string, error) {
	var names []string
	for _, pat := range []string{"*.c", "*.h"} {
		m, err := filepath.Glob(filepath.Join(bpfDir, pat))
		if err != nil {
			return "", fmt.Errorf("list %s: %w", bpfDir, err)
		}
		names = append(names, m...)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", n, err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(n), len(b))
		h.Write(b)
	}
	gen, err := os.ReadFile(genFile)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", genFile, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(gen))
	found := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "//go:generate") && strings.Contains(line, "bpf2go") {
			fmt.Fprintf(h, "generate %s\n", line)
			found = true
		}
	}
	if !found {
		return "", fmt.Errorf("%s has no bpf2go go:generate line", genFile)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
