// Command gensum records the digest of the BPF sources next to the objects
// bpf2go generated from them (run by go generate in loader/).
package main

import (
	"fmt"
	"os"

	"github.com/bpfvpn/bpfvpn/loader"
)

func main() {
	d, err := loader.SourcesDigest("../bpf", "gen.go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensum:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("sources.sha256", []byte(d+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gensum:", err)
		os.Exit(1)
	}
}
