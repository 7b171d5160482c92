package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bpfvpn/bpfvpn/vm"
)

// runTests builds the test binaries of the packages with TestVM… tests on
// the host, boots each kernel once and runs them all in it.
func runTests(ctx context.Context, base vm.Config, series []vm.Series, pattern, runRE string, env []string, parallel int) int {
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
	var built []vm.TestPackage
	for _, p := range pkgs {
		if p.BuildErr != "" {
			fmt.Fprintf(os.Stderr, "vmrun: %s: %s\n", p.ImportPath, p.BuildErr)
			continue
		}
		built = append(built, p)
	}
	// Each binary gets 20 minutes (twice go test's default: under TCG a package
	// of multi-daemon topology tests needs more), but it must end (and print
	// its goroutines) before the boot's own limit.
	testTimeout := min(20*time.Minute, base.Timeout-30*time.Second)
	if testTimeout < 30*time.Second {
		testTimeout = base.Timeout
	}
	script := vm.TestScript(built, vm.GuestEnviron(env...), runRE, testTimeout)
	binds := []string{bin}
	for _, p := range built {
		binds = append(binds, p.Dir)
	}
	binds = vm.BindsFor(binds...)

	sums := make([]*vm.TestSummary, len(series))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i, s := range series {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sums[i] = &vm.TestSummary{}
			if len(built) > 0 {
				sums[i] = runTestsOn(ctx, base, s, built, script, binds)
			}
			sums[i].BuildFailed(pkgs)
		}()
	}
	wg.Wait()
	var total vm.TestSummary
	for i, s := range series {
		prefix := "[" + s.Name + "] "
		for _, f := range sums[i].Failures {
			fmt.Printf("%sFAIL %s\n", prefix, f)
		}
		fmt.Println(prefix + sums[i].String())
		total.Passed += sums[i].Passed
		total.Failed += sums[i].Failed
		total.Skipped += sums[i].Skipped
	}
	fmt.Println("vmrun: total: " + total.String())
	code, why := testsExitCode(total.Passed, total.Failed)
	if why != "" {
		fmt.Fprintln(os.Stderr, "vmrun:", why)
	}
	return code
}

// runTestsOn boots kernel series s once and runs the test script in it.
func runTestsOn(ctx context.Context, base vm.Config, s vm.Series, pkgs []vm.TestPackage, script string, binds []string) *vm.TestSummary {
	prefix := "[" + s.Name + "] "
	sum := &vm.TestSummary{}
	k, err := vm.FetchKernel(ctx, s, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		sum.Abort(pkgs, err.Error())
		return sum
	}
	out := vm.NewPrefixWriter(os.Stdout, prefix)
	cfg := base
	cfg.Kernel, cfg.RunScript, cfg.Binds = k, script, binds
	if cfg.Console != nil {
		cfg.Console = vm.NewPrefixWriter(cfg.Console, prefix)
	}
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
		return sum
	}
	fmt.Fprintf(os.Stderr, "vmrun: %s%s: tests started %.1fs after boot, %.1fs total\n",
		prefix, k.Release, res.BootToCommand.Seconds(), res.Total.Seconds())
	return sum
}

// testsExitCode fails a run with a failure or with nothing that ran (all
// skipped counts as nothing: the VM tier exists to run them).
func testsExitCode(passed, failed int) (int, string) {
	switch {
	case failed > 0:
		return 1, fmt.Sprintf("%d failed", failed)
	case passed == 0:
		return 1, "no TestVM… test passed or failed: nothing ran"
	}
	return 0, ""
}
