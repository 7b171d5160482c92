package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bpfvpn/bpfvpn/vm"
)

// runTests builds the test binaries of the packages with TestVM… tests on
// the host, boots each kernel once and runs them all in it.
func runTests(ctx context.Context, base vm.Config, series []vm.Series, pattern, runRE string, env []string) int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 1
	}
	pkgs, err := vm.FindVMTestPackages(ctx, dir, pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 1
	}
	if len(pkgs) == 0 {
		fmt.Fprintf(os.Stderr, "vmrun: no package in %s declares a TestVM… test\n0 passed, 0 failed\n", pattern)
		return 1
	}
	bin, err := os.MkdirTemp("", "vmrun-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	fmt.Fprintf(os.Stderr, "vmrun: building %d test binaries\n", len(pkgs))
	if err := vm.BuildTestBinaries(ctx, dir, bin, pkgs); err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 1
	}
	testTimeout := base.Timeout - 30*time.Second
	if testTimeout < 30*time.Second {
		testTimeout = base.Timeout
	}
	script := vm.TestScript(pkgs, vm.GuestEnviron(env...), runRE, testTimeout)
	binds := []string{bin}
	for _, p := range pkgs {
		binds = append(binds, p.Dir)
	}
	binds = vm.BindsFor(binds...)

	var total vm.TestSummary
	for _, s := range series {
		prefix := "[" + s.Name + "] "
		sum := &vm.TestSummary{}
		k, err := vm.FetchKernel(ctx, s, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmrun:", err)
			sum.Abort(pkgs, err.Error())
		} else {
			out := vm.NewPrefixWriter(os.Stdout, prefix)
			cfg := base
			cfg.Kernel, cfg.RunScript, cfg.Binds = k, script, binds
			cfg.Output = io.MultiWriter(out, vm.NewLineWriter(sum.Line))
			res, err := vm.Run(ctx, cfg)
			out.Flush()
			if err != nil {
				var ge *vm.GuestError
				reason := err.Error()
				if errors.As(err, &ge) {
					reason = ge.Reason
				}
				fmt.Fprintf(os.Stderr, "vmrun: %s%v\n", prefix, err)
				sum.Abort(pkgs, reason)
			} else {
				fmt.Fprintf(os.Stderr, "vmrun: %s%s: tests started %.1fs after boot, %.1fs total\n",
					prefix, k.Release, res.BootToCommand.Seconds(), res.Total.Seconds())
			}
		}
		for _, f := range sum.Failures {
			fmt.Printf("%sFAIL %s\n", prefix, f)
		}
		fmt.Println(prefix + sum.String())
		total.Passed += sum.Passed
		total.Failed += sum.Failed
		total.Skipped += sum.Skipped
	}
	fmt.Println("vmrun: total: " + total.String())
	if total.Failed > 0 {
		return 1
	}
	if total.Passed == 0 {
		fmt.Fprintln(os.Stderr, "vmrun: no TestVM… test passed or failed: nothing ran")
		return 1
	}
	return 0
}
