package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bpfvpn/bpfvpn/vm"
)

func runTests(ctx context.Context, base vm.Config, series []vm.Series, pattern string) int {
	fmt.Fprintln(os.Stderr, "vmrun: -tests not implemented yet")
	return 2
}
