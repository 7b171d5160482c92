// Command vmrun boots Debian's 6.1 and 6.12 kernels under qemu with the host
// root as a read-only, tmpfs-backed overlay and runs a command or the
// TestVM… tests in them.
//
//	go run ./vm/cmd/vmrun -kernel 6.1 -- ip -d link
//	go run ./vm/cmd/vmrun -kernel all -tests ./...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bpfvpn/bpfvpn/vm"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("vmrun", flag.ContinueOnError)
	kernel := fs.String("kernel", "all", "kernel to boot: 6.1, 6.12 or all")
	timeout := fs.Duration("timeout", 0, "limit for one boot, command or all test binaries included (default 10m, with -tests 30m)")
	mem := fs.String("mem", "2G", "guest memory (qemu -m)")
	cpus := fs.Int("smp", 2, "guest CPUs")
	accel := fs.String("accel", vm.DefaultAccel, "qemu -accel (KVM fails on the build machine)")
	cpu := fs.String("cpu", "max", "qemu -cpu")
	tests := fs.String("tests", "", "run the TestVM… tests of these packages (go list pattern) instead of a command")
	verbose := fs.Bool("v", false, "stream the kernel console to stderr")
	parallel := fs.Int("parallel", 1, "with -tests: boot up to this many kernels at once")
	runRE := fs.String("run", vm.DefaultTestRun, "with -tests: the -test.run pattern")
	var env envList
	fs.Var(&env, "env", "add K=V to the guest command's environment (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vmrun [flags] -- command [args…]\n       vmrun [flags] -tests ./...\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	argv := fs.Args()
	if (*tests == "") == (len(argv) == 0) {
		fs.Usage()
		return 2
	}
	series, err := vm.LookupSeries(*kernel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout == 0 {
		*timeout = 10 * time.Minute
		if *tests != "" {
			*timeout = 30 * time.Minute
		}
	}
	base := vm.Config{Memory: *mem, CPUs: *cpus, Accel: *accel, CPU: *cpu, Timeout: *timeout}
	if *verbose {
		base.Console = os.Stderr
	}
	if *tests != "" {
		return runTests(ctx, base, series, *tests, *runRE, env, *parallel)
	}
	return runCommand(ctx, base, series, argv, env)
}

func runCommand(ctx context.Context, base vm.Config, series []vm.Series, argv, env []string) int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		return 1
	}
	worst := 0
	for _, s := range series {
		k, err := vm.FetchKernel(ctx, s, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmrun:", err)
			return 1
		}
		cfg := base
		cfg.Kernel = k
		cfg.RunScript = vm.CommandScript(dir, vm.GuestEnviron(env...), argv)
		cfg.Binds = vm.BindsFor(dir)
		cfg.Output = os.Stdout
		if len(series) > 1 {
			cfg.Output = vm.NewPrefixWriter(os.Stdout, "["+s.Name+"] ")
		}
		res, err := vm.Run(ctx, cfg)
		if f, ok := cfg.Output.(interface{ Flush() error }); ok {
			f.Flush()
		}
		if err != nil {
			var ge *vm.GuestError
			if errors.As(err, &ge) {
				fmt.Fprintln(os.Stderr, "vmrun:", ge.Error())
			} else {
				fmt.Fprintln(os.Stderr, "vmrun:", err)
			}
			return 1
		}
		fmt.Fprintf(os.Stderr, "vmrun: %s (%s): exit %d, command started %.1fs after boot, %.1fs total\n",
			s.Name, k.Release, res.ExitCode, res.BootToCommand.Seconds(), res.Total.Seconds())
		if res.ExitCode != 0 && worst == 0 {
			worst = res.ExitCode
		}
	}
	return worst
}

// envList collects repeated -env K=V flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want K=V, got %q", v)
	}
	*e = append(*e, v)
	return nil
}
